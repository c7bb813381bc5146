package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.publish.Publisher;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.kafka.clients.admin.Admin;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 5 item 4: stop and start `serve --embedded-kafka` on the same data dir. The broker keeps
 * its log and cluster id, reference sets and blobs are rebuilt, a new checkpoint is evaluated
 * without resending the reference set, and nothing published before is recomputed.
 */
class RestartIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path EXAMPLE = Path.of("../../examples/mlp");

  @TempDir Path dataDir;

  private ProbestreamConfig config() {
    return CliTest.embeddedConfig(dataDir);
  }

  private static CheckpointManifest manifest(CheckpointManifest.Blob blob, long step) {
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("h2", "h2");
    return new CheckpointManifest(
        "restart",
        "seed-1",
        step,
        null,
        Map.of(),
        blob,
        "input",
        layers,
        "logits",
        "classifier.weight",
        5);
  }

  private static String clusterId(String bootstrap) throws Exception {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
      return admin.describeCluster().clusterId().get();
    }
  }

  private static List<Long> stepsOnTheApi(int port) throws Exception {
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create(
                            "http://127.0.0.1:" + port + "/api/v1/experiments/restart/results"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    JsonNode body = JSON.readTree(r.body());
    JsonNode items = body.isArray() ? body : body.get("results");
    List<Long> steps = new ArrayList<>();
    items.forEach(o -> steps.add(o.get("step").asLong()));
    return steps;
  }

  @Test
  void aRestartKeepsTheBrokerTheReferenceSetAndTheResults() throws Exception {
    PrintWriter err = new PrintWriter(new StringWriter());
    byte[] model = Files.readAllBytes(EXAMPLE.resolve("model.onnx"));
    List<ProbeResult> seen = new CopyOnWriteArrayList<>();
    String firstCluster;
    CheckpointManifest.Blob blob;
    try (ServiceRuntime rt = ServiceRuntime.start(config(), err)) {
      rt.service.results().addListener(seen::add);
      firstCluster = clusterId(rt.bootstrap);
      try (Publisher p =
          new Publisher(rt.bootstrap, config().topicNames(), 16 << 20, "restart-it")) {
        p.reference(
            "restart",
            List.of(
                Files.readAllBytes(EXAMPLE.resolve("reference-0.safetensors")),
                Files.readAllBytes(EXAMPLE.resolve("reference-1.safetensors"))));
        blob = p.blob("restart", model, 4096);
        p.checkpoint(manifest(blob, 1));
      }
      // One layer, the default probes: neural_collapse and feature_complexity on the layer, and
      // predictive_multiplicity for the experiment.
      await().atMost(Duration.ofSeconds(60)).until(() -> seen.size() == 3);
    }
    seen.clear();
    try (ServiceRuntime rt = ServiceRuntime.start(config(), err)) {
      rt.service.results().addListener(seen::add);
      assertThat(clusterId(rt.bootstrap)).isEqualTo(firstCluster);
      try (Publisher p =
          new Publisher(rt.bootstrap, config().topicNames(), 16 << 20, "restart-it")) {
        p.checkpoint(manifest(blob, 2)); // no reference set, no blob: both come from the data dir
      }
      await().atMost(Duration.ofSeconds(60)).until(() -> seen.size() == 3);
      for (ProbeResult r : seen) {
        assertThat(r.step()).isEqualTo(2); // step 1 was not evaluated again
        assertThat(r.metrics().get("samples")).isEqualTo(1000);
      }
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(
              () ->
                  assertThat(stepsOnTheApi(rt.service.httpPort()))
                      .containsExactly(1L, 1L, 1L, 2L, 2L, 2L));
    }
  }
}
