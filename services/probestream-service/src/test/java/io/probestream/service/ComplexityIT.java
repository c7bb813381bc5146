package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.service.schema.Schemas;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * {@code feature_complexity} through Kafka with the service's default probes: the bundled MLP's
 * values on {@code results} match the independent numpy reference (examples/mlp/
 * expected-complexity.json), and reach the Prometheus gauges and the results API; IFM weights named
 * in the manifest give the same values, and a wrong name gives a null with a note, not a DLQ
 * record.
 */
@ProbestreamIT
class ComplexityIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LAYERS = "{\"h1\":\"h1\",\"h2\":\"h2\"}";
  private static final String CLASSIFIER =
      ",\"classifier_weight\":\"classifier.weight\",\"classes\":5";

  @Test
  void bundledMlpMatchesTheReferenceOnEveryChannel(KafkaTestCluster kafka) throws Exception {
    byte[] model = Fixtures.example("model.onnx");
    JsonNode expected =
        JSON.readTree(Fixtures.EXAMPLE.resolve("expected-complexity.json").toFile());
    // The default probes (the harness narrows them for the other tests).
    try (ServiceHarness h =
        ServiceHarness.start(
            kafka, Map.of("probes.enabled", "neural_collapse,feature_complexity"))) {
      h.sendReference(
          "cx",
          Fixtures.example("reference-0.safetensors"),
          Fixtures.example("reference-1.safetensors"));
      String sha = h.sendBlob("cx", model);
      h.sendCheckpoint(
          "cx",
          Fixtures.manifest("cx", "r", 1, sha, model.length, 1, LAYERS, CLASSIFIER)
              .getBytes(StandardCharsets.UTF_8));
      Map<String, JsonNode> got = complexity(h.read(h.topics.results(), 4, Duration.ofSeconds(60)));
      assertThat(got).containsOnlyKeys("h1", "h2");
      for (String layer : List.of("h1", "h2")) {
        assertMatches(expected.get("layers").get(layer), got.get(layer).get("metrics"), layer);
        assertThat(got.get(layer).get("params").get("beta").asDouble()).isEqualTo(0.1);
      }

      String metrics = h.get("/metrics").body();
      double ifm = expected.get("layers").get("h2").get("ifm_units").asDouble();
      assertThat(metrics)
          .contains(
              "probestream_feature_complexity_ifm_units{experiment=\"cx\",layer=\"h2\","
                  + "run=\"r\",split=\"reference\"} "
                  + ifm);
      HttpResponse<String> api = h.get("/api/v1/experiments/cx/results?probe=feature_complexity");
      assertThat(api.statusCode()).isEqualTo(200);
      assertThat(JSON.readTree(api.body()).get("total").asInt()).isEqualTo(2);

      // The same layer with its IFM weights named in the manifest, and one with a wrong name.
      String named =
          ",\"complexity\":{\"h1\":{\"in\":\"fc1.weight\",\"bias\":\"fc1.bias\","
              + "\"out\":\"fc2.weight\"},\"h2\":{\"in\":\"fc2.weight\",\"out\":\"nope\"}}";
      byte[] manifest =
          Fixtures.manifest("cx", "r", 2, sha, model.length, 1, LAYERS, CLASSIFIER + named)
              .getBytes(StandardCharsets.UTF_8);
      assertThat(Schemas.get().validateManifest(manifest)).isEmpty();
      h.sendCheckpoint("cx", manifest);
      List<ConsumerRecord<byte[], byte[]>> all =
          h.read(h.topics.results(), 8, Duration.ofSeconds(60));
      Map<String, JsonNode> second = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> r : all) {
        String text = new String(r.value(), StandardCharsets.UTF_8);
        assertThat(Schemas.get().validateResult(text)).as(text).isEmpty();
        JsonNode o = JSON.readTree(r.value());
        if (o.get("step").asLong() == 2 && o.get("probe").asText().equals("feature_complexity")) {
          second.put(o.get("layer").asText(), o);
        }
      }
      assertMatches(expected.get("layers").get("h1"), second.get("h1").get("metrics"), "h1");
      JsonNode h2 = second.get("h2");
      assertThat(h2.get("metrics").get("ifm_units").isNull()).isTrue();
      assertThat(h2.get("notes").asText()).contains("ifm: unsupported pattern", "nope");
      assertThat(h2.get("metrics").get("effective_rank").asDouble())
          .isCloseTo(
              expected.get("layers").get("h2").get("effective_rank").asDouble(),
              within(1e-4 * expected.get("layers").get("h2").get("effective_rank").asDouble()));
      assertThat(h.read(h.topics.dlq(), 0, Duration.ofMillis(200))).isEmpty();
    }
  }

  private static Map<String, JsonNode> complexity(List<ConsumerRecord<byte[], byte[]>> records)
      throws Exception {
    Map<String, JsonNode> byLayer = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> r : records) {
      JsonNode o = JSON.readTree(r.value());
      if (o.get("probe").asText().equals("feature_complexity")) {
        byLayer.put(o.get("layer").asText(), o);
      }
    }
    return byLayer;
  }

  /** Unit counts exactly; the rest within 1e-4 relative (ORT float32 features vs numpy). */
  static void assertMatches(JsonNode expected, JsonNode got, String layer) {
    for (Iterator<String> k = expected.fieldNames(); k.hasNext(); ) {
      String key = k.next();
      JsonNode e = expected.get(key);
      assertThat(got.has(key)).as(layer + "." + key + " present").isTrue();
      if (e.isNull()) {
        assertThat(got.get(key).isNull()).as(layer + "." + key).isTrue();
      } else if (e.isIntegralNumber()) {
        assertThat(got.get(key).asDouble()).as(layer + "." + key).isEqualTo(e.asDouble());
      } else {
        assertThat(got.get(key).asDouble())
            .as(layer + "." + key)
            .isCloseTo(e.asDouble(), within(1e-4 * Math.max(1e-3, Math.abs(e.asDouble()))));
      }
    }
  }
}
