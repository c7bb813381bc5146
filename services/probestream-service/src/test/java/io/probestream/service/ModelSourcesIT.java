package io.probestream.service;

import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.OnnxModelBuilder;
import io.probestream.testkit.ProbestreamIT;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoints whose model comes by URI: over http from an allowed host (a server on 127.0.0.1), and
 * from a file:// model with ONNX external data; a host not allowed and a 404 go to the DLQ, and the
 * checkpoints around them are evaluated.
 */
@ProbestreamIT
class ModelSourcesIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private static byte[] manifest(long step, String uri) {
    return ("{\"experiment\":\"web\",\"run\":\"r\",\"step\":"
            + step
            + ",\"model\":{\"uri\":\""
            + uri
            + "\"},\"input\":\"input\",\"layers\":{\"h\":\"h\"},\"logits\":\"logits\","
            + "\"classifier_weight\":\"classifier.weight\",\"classes\":3}")
        .getBytes(StandardCharsets.UTF_8);
  }

  private static void checkpoint(ServiceHarness h, String id, long step, String uri)
      throws Exception {
    Map<String, String> headers = cloudEvent(Headers.TYPE_CHECKPOINT);
    headers.put(Headers.ID, id);
    h.send(h.topics.checkpoints(), "web", manifest(step, uri), headers);
  }

  @Test
  void httpAndExternalDataModelsAreEvaluatedAndRefusalsDeadLettered(KafkaTestCluster kafka)
      throws Exception {
    byte[] ncb = Fixtures.ncbModel();
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext(
        "/ncb.onnx",
        x -> {
          x.sendResponseHeaders(200, ncb.length);
          try (OutputStream out = x.getResponseBody()) {
            out.write(ncb);
          }
        });
    server.createContext("/", x -> x.sendResponseHeaders(404, -1));
    server.start();
    String base = "http://127.0.0.1:" + server.getAddress().getPort();

    // NC-B with its classifier weight and bias in a side file next to the model.
    Path root = Files.createDirectories(tmp.resolve("models"));
    Path external =
        new OnnxModelBuilder()
            .input("input", 2)
            .externalMatrix(
                "classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}}, "ncb.data")
            .externalVector("classifier.bias", "ncb.data", 0, -2.5, 0)
            .identity("input", "h")
            .linear("h", "classifier.weight", "classifier.bias", "logits")
            .output("h", 2)
            .output("logits", 3)
            .writeTo(root, "ncb-external.onnx");

    ServiceHarness h =
        ServiceHarness.start(
            kafka,
            Map.of(
                "model.allowed-hosts",
                "127.0.0.1:" + server.getAddress().getPort(),
                "model.file-roots",
                root.toString()));
    try {
      h.sendReference("web", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      checkpoint(h, "http", 1, base + "/ncb.onnx");
      checkpoint(h, "other-host", 2, "http://models.invalid/ncb.onnx");
      checkpoint(h, "not-found", 3, base + "/gone.onnx");
      checkpoint(h, "external", 4, external.toUri().toString());

      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 2, Duration.ofSeconds(60));
      Map<Long, JsonNode> byStep = new TreeMap<>();
      for (ConsumerRecord<byte[], byte[]> r : results) {
        JsonNode o = JSON.readTree(r.value());
        byStep.put(o.get("step").asLong(), o);
      }
      assertThat(byStep.keySet()).containsExactly(1L, 4L);
      for (JsonNode o : byStep.values()) {
        // PROBES.md NC-B, as in BadInputsIT; nc3 needs W, read here from the side file for step 4.
        assertThat(o.get("metrics").get("nc1").asDouble()).isCloseTo(352.0 / 3969, within(1e-12));
        assertThat(o.get("metrics").get("nc3_self_duality").asDouble())
            .isCloseTo(0.0132015, within(5e-8));
      }
      assertThat(byStep.get(1L).get("model_sha256").asText()).isEqualTo(ProbeResult.sha256Hex(ncb));

      List<ConsumerRecord<byte[], byte[]>> dlq = h.read(h.topics.dlq(), 2, Duration.ofSeconds(60));
      Map<String, ConsumerRecord<byte[], byte[]>> got = new TreeMap<>();
      for (ConsumerRecord<byte[], byte[]> r : dlq) {
        got.put(header(r, Headers.ID), r);
      }
      assertThat(got.keySet()).containsExactly("not-found", "other-host");
      ConsumerRecord<byte[], byte[]> refused = got.get("other-host");
      assertThat(header(refused, Headers.DLQ_REASON)).isEqualTo("uri_not_allowed");
      assertThat(header(refused, Headers.DLQ_MESSAGE))
          .isEqualTo(
              "model.uri = 'http://models.invalid/ncb.onnx': host 'models.invalid:80' is not in"
                  + " probestream.model.allowed-hosts = [127.0.0.1:"
                  + server.getAddress().getPort()
                  + "]");
      assertThat(header(refused, Headers.DLQ_SOURCE_TOPIC)).isEqualTo(h.topics.checkpoints());
      assertThat(refused.value()).isEqualTo(manifest(2, "http://models.invalid/ncb.onnx"));
      ConsumerRecord<byte[], byte[]> missing = got.get("not-found");
      assertThat(header(missing, Headers.DLQ_REASON)).isEqualTo("model_unloadable");
      assertThat(header(missing, Headers.DLQ_MESSAGE))
          .isEqualTo(
              "model.uri = '" + base + "/gone.onnx': HTTP status 404 from " + base + "/gone.onnx");
      assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);
    } finally {
      h.close();
      server.stop(0);
    }
  }
}
