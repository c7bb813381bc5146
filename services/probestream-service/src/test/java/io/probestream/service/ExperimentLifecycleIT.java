package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * Issue 10 item 7: experiments are removed on request ({@code DELETE}), when idle past the TTL and
 * past {@code experiments.max}; {@code POST …/reprocess} evaluates an experiment's checkpoints
 * again from the topics. Removal takes the experiment out of the API and the metrics, deletes its
 * stored reference batches and tombstones its snapshot; commands need a bearer token.
 */
@ProbestreamIT
class ExperimentLifecycleIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String TOKEN = "lifecycle-test-token-0123456789";
  private static final Duration WAIT = Duration.ofSeconds(60);
  private final HttpClient http = HttpClient.newHttpClient();

  private static void publish(ServiceHarness h, String experiment, long step) throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = h.sendBlob(experiment, model);
    h.sendReference(experiment, Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
    h.sendCheckpoint(
        experiment,
        Fixtures.manifest(
                experiment,
                "r",
                step,
                sha,
                model.length,
                1,
                "{\"h\":\"h\"}",
                ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
            .getBytes(StandardCharsets.UTF_8));
  }

  private HttpResponse<String> call(ServiceHarness h, String method, String path, String token)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + h.service.httpPort() + path))
            .timeout(Duration.ofSeconds(10))
            .method(method, HttpRequest.BodyPublishers.noBody());
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private Set<String> listed(ServiceHarness h) throws Exception {
    HttpResponse<String> r = call(h, "GET", "/api/v1/experiments", TOKEN);
    assertThat(r.statusCode()).isEqualTo(200);
    Set<String> out = new TreeSet<>();
    JsonNode body = JSON.readTree(r.body());
    JsonNode list = body.has("experiments") ? body.get("experiments") : body;
    list.forEach(e -> out.add(e.get("experiment").asText()));
    return out;
  }

  private static List<JsonNode> results(ServiceHarness h, String experiment) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : RebalanceIT.readToEnd(h.kafka, h.topics.results())) {
      JsonNode o = JSON.readTree(r.value());
      if (o.get("experiment").asText().equals(experiment)) {
        out.add(o);
      }
    }
    return out;
  }

  private static Path tokenFile() throws Exception {
    Path f = Files.createTempFile("probestream-token-", ".txt");
    Files.writeString(f, TOKEN);
    return f;
  }

  @Test
  void deleteAndReprocessOnRequest(KafkaTestCluster kafka) throws Exception {
    try (ServiceHarness h =
        ServiceHarness.start(kafka, Map.of("http.auth-token-file", tokenFile().toString()))) {
      publish(h, "lc-a", 5);
      await().atMost(WAIT).until(() -> results(h, "lc-a").size() == 1);
      await().atMost(WAIT).until(() -> listed(h).contains("lc-a"));
      assertThat(call(h, "GET", "/metrics", null).body()).contains("experiment=\"lc-a\"");

      // Reprocess: evaluated again from the topics, same id and values.
      HttpResponse<String> re = call(h, "POST", "/api/v1/experiments/lc-a/reprocess", TOKEN);
      assertThat(re.statusCode()).as(re.body()).isEqualTo(202);
      assertThat(JSON.readTree(re.body()).get("command").asText()).isEqualTo("reprocess");
      await().atMost(WAIT).until(() -> results(h, "lc-a").size() == 2);
      List<JsonNode> both = results(h, "lc-a");
      assertThat(both.get(1).get("id")).isEqualTo(both.get(0).get("id"));
      assertThat(both.get(1).get("metrics")).isEqualTo(both.get(0).get("metrics"));

      // Without the token the API refuses; with it the experiment goes.
      assertThat(call(h, "DELETE", "/api/v1/experiments/lc-a", null).statusCode()).isEqualTo(401);
      Path stored =
          h.dataDir
              .resolve("reference")
              .resolve(HexFormat.of().formatHex("lc-a".getBytes(StandardCharsets.UTF_8)));
      HttpResponse<String> del = call(h, "DELETE", "/api/v1/experiments/lc-a", TOKEN);
      assertThat(del.statusCode()).as(del.body()).isEqualTo(202);
      await().atMost(WAIT).until(() -> !listed(h).contains("lc-a"));
      assertThat(call(h, "GET", "/metrics", null).body()).doesNotContain("experiment=\"lc-a\"");
      assertThat(Files.exists(stored)).as(stored.toString()).isFalse();
      await()
          .atMost(WAIT)
          .untilAsserted(
              () -> {
                ConsumerRecord<byte[], byte[]> last = null;
                for (ConsumerRecord<byte[], byte[]> r :
                    RebalanceIT.readToEnd(h.kafka, h.topics.state())) {
                  if ("lc-a".equals(new String(r.key(), StandardCharsets.UTF_8))) {
                    last = r;
                  }
                }
                assertThat(last).isNotNull();
                assertThat(last.value()).as("a tombstone").isNull();
              });
    }
  }

  @Test
  void commandsNeedAToken(KafkaTestCluster kafka) throws Exception {
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of())) {
      HttpResponse<String> r = call(h, "DELETE", "/api/v1/experiments/x", null);
      assertThat(r.statusCode()).isEqualTo(403);
      assertThat(r.body()).contains("probestream.http.auth-token-file");
    }
  }

  @Test
  void idleAndSurplusExperimentsAreRemoved(KafkaTestCluster kafka) throws Exception {
    try (ServiceHarness h =
        ServiceHarness.start(
            kafka,
            Map.of(
                "http.auth-token-file",
                tokenFile().toString(),
                "experiments.max",
                "2",
                "experiments.idle-ttl-ms",
                "6000"))) {
      for (String e : List.of("lc-b", "lc-c", "lc-d")) {
        publish(h, e, 1);
        await().atMost(WAIT).until(() -> results(h, e).size() == 1);
      }
      // Three were active, two may be kept: the least recent (lc-b) goes first.
      await().atMost(WAIT).until(() -> listed(h).equals(Set.of("lc-c", "lc-d")));
      long quiet = System.nanoTime();
      // Then all go once idle past the TTL.
      await().atMost(WAIT).until(() -> listed(h).isEmpty());
      assertThat(Duration.ofNanos(System.nanoTime() - quiet)).isGreaterThan(Duration.ofSeconds(2));
      assertThat(call(h, "GET", "/metrics", null).body()).doesNotContain("experiment=\"lc-");
    }
  }
}
