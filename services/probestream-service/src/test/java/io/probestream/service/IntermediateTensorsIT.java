package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * A PyTorch CNN (examples/cnn) whose probed layers are intermediate tensors, not graph outputs,
 * through Kafka: the service exposes them itself and the values match the numpy reference computed
 * from PyTorch's own features.
 */
@ProbestreamIT
class IntermediateTensorsIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path CNN = Path.of("../../examples/cnn");

  @Test
  void cnnIntermediatesThroughKafkaMatchTheReference(KafkaTestCluster kafka) throws Exception {
    JsonNode names = JSON.readTree(CNN.resolve("layers.json").toFile());
    byte[] model = Files.readAllBytes(CNN.resolve("model.onnx"));
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of())) {
      h.sendReference(
          "cnn",
          Files.readAllBytes(CNN.resolve("reference-0.safetensors")),
          Files.readAllBytes(CNN.resolve("reference-1.safetensors")));
      h.sendBlob("cnn", model);
      String layers =
          "{\"stem\":\""
              + names.get("stem").asText()
              + "\",\"block1\":\""
              + names.get("block1").asText()
              + "\",\"block2\":\""
              + names.get("block2").asText()
              + "\",\"pooled\":\""
              + names.get("pooled").asText()
              + "\"}";
      h.sendCheckpoint(
          "cnn",
          Fixtures.manifest(
                  "cnn",
                  "r",
                  1,
                  sha,
                  model.length,
                  1,
                  layers,
                  ",\"classifier_weight\":\"classifier.weight\",\"classes\":4")
              .getBytes(StandardCharsets.UTF_8));
      List<ConsumerRecord<byte[], byte[]>> out =
          h.read(h.topics.results(), 4, Duration.ofSeconds(60));
      assertThat(out).hasSize(4);
      Map<String, JsonNode> byLayer = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> r : out) {
        JsonNode o = JSON.readTree(r.value());
        byLayer.put(o.get("layer").asText(), o);
      }
      JsonNode expected = JSON.readTree(CNN.resolve("expected.json").toFile()).get("layers");
      for (Iterator<String> it = expected.fieldNames(); it.hasNext(); ) {
        String layer = it.next();
        JsonNode got = byLayer.get(layer).get("metrics");
        assertThat(byLayer.get(layer).get("params").get("reduction").asText())
            .isEqualTo(layer.equals("pooled") ? "none" : "gap");
        for (Iterator<String> k = expected.get(layer).fieldNames(); k.hasNext(); ) {
          String key = k.next();
          double v = expected.get(layer).get(key).asDouble();
          // Reference: numpy float64 from PyTorch's features; ORT's differ by ≤ 3.3e-6.
          assertThat(got.get(key).asDouble())
              .as(layer + "." + key)
              .isCloseTo(v, within(1e-4 * Math.max(1e-3, Math.abs(v))));
        }
      }
    }
  }
}
