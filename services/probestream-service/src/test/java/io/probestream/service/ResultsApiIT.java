package io.probestream.service;

import static io.probestream.service.ServiceHarness.cloudEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.schema.Schemas;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.io.ByteArrayOutputStream;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The results API on the whole service: NC-B (PROBES.md §1.6) evaluated for two checkpoints, listed
 * by the API, and listed again by a new instance that rebuilt its view from the results topic.
 */
@ProbestreamIT
class ResultsApiIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EXPERIMENT = "ncb";

  /**
   * PROBES.md §1.6 gives the irrational NC-B values to 7 significant digits, so they are off by at
   * most 5e-8; the service computes in double, which adds nothing near that.
   */
  private static final double HAND_TOLERANCE = 1e-7;

  @Test
  void theApiListsResultsAndStillListsThemAfterARestart(KafkaTestCluster kafka) throws Exception {
    byte[] model = Fixtures.ncbModel();
    String modelSha = ProbeResult.sha256Hex(model);
    ByteArrayOutputStream reference = new ByteArrayOutputStream();
    reference.write(Fixtures.ncbBatch(0));
    reference.write(Fixtures.ncbBatch(1));
    String referenceSha = ProbeResult.sha256Hex(reference.toByteArray());
    String a = expectedResult("a", 5, modelSha, referenceSha);
    String b = expectedResult("b", 7, modelSha, referenceSha);
    String experiments =
        """
        [{"experiment": "ncb",
          "runs": [{"run": "a", "latest_step": 5, "results": 1},
                   {"run": "b", "latest_step": 7, "results": 1}],
          "latest_step": 7, "results": 2, "reference_set": "complete"}]
        """;
    Path dataDir = Files.createTempDirectory("probestream-results-api-");

    try (ServiceHarness h = ServiceHarness.start(kafka, dataDir, Map.of())) {
      h.sendBlob(EXPERIMENT, model);
      h.sendReference(EXPERIMENT, Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      // One checkpoint at a time, so the publication order (the API's order) is a, then b.
      sendCheckpoint(h, "a", 5, modelSha, model.length);
      assertThat(h.read(h.topics.results(), 1, Duration.ofSeconds(60))).hasSize(1);
      sendCheckpoint(h, "b", 7, modelSha, model.length);
      assertThat(h.read(h.topics.results(), 2, Duration.ofSeconds(60))).hasSize(2);

      // The view is fed when the producer's acknowledgement reaches the service, which can be a
      // moment after the result is readable.
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(() -> assertDocument(h, "/api/v1/experiments", 200, experiments));
      assertDocument(h, "/api/v1/experiments/ncb/results", 200, page(2, 0, 100, a, b));

      // A record on the results topic that is not a result: the rebuild leaves it out.
      h.send(
          h.topics.results(),
          EXPERIMENT,
          "not a result".getBytes(StandardCharsets.UTF_8),
          cloudEvent(Headers.TYPE_RESULT));
    }

    try (ServiceHarness h = ServiceHarness.start(kafka, dataDir, Map.of())) {
      String results = "/api/v1/experiments/ncb/results";
      // No await: the view is rebuilt before the service's start completes.
      assertDocument(h, "/api/v1/experiments", 200, experiments);
      assertDocument(h, results, 200, page(2, 0, 100, a, b));
      assertDocument(h, results + "?run=b", 200, page(1, 0, 100, b));
      assertDocument(h, results + "?step_max=6", 200, page(1, 0, 100, a));
      assertDocument(h, results + "?step_min=6&step_max=7", 200, page(1, 0, 100, b));
      assertDocument(
          h,
          results + "?probe=neural_collapse&layer=h&split=reference",
          200,
          page(2, 0, 100, a, b));
      assertDocument(h, results + "?layer=fc1", 200, page(0, 0, 100));
      assertDocument(h, results + "?limit=1&offset=1", 200, page(2, 1, 1, b));
      assertDocument(
          h,
          "/api/v1/experiments/mnist/results",
          404,
          "{\"error\": \"unknown experiment 'mnist'\", \"status\": 404}");
      assertDocument(
          h,
          results + "?step_min=five",
          400,
          "{\"error\": \"query parameter step_min = 'five': must be an integer from 0 to"
              + " 9223372036854775807\", \"status\": 400}");
      assertDocument(
          h,
          results + "?limit=1001",
          400,
          "{\"error\": \"query parameter limit = '1001': must be an integer from 1 to 1000\","
              + " \"status\": 400}");
    }
  }

  /**
   * NC-B's result for one checkpoint, by hand: ids from their definition (DESIGN.md §3), metrics
   * from PROBES.md §1.6 (samples 7, classes 3, Σ_B of rank 2), without the time-dependent
   * computed_at and latency_ms.
   */
  private static String expectedResult(
      String run, long step, String modelSha, String referenceSha) {
    String id =
        ProbeResult.id(
            EXPERIMENT,
            run,
            step,
            modelSha,
            "neural_collapse",
            "h",
            "reference",
            referenceSha,
            Map.of("reduction", "none"));
    return """
        {"id": "%s", "experiment": "ncb", "run": "%s", "step": %d,
         "model_sha256": "%s", "reference_sha256": "%s",
         "probe": "neural_collapse", "layer": "h", "split": "reference", "samples": 7,
         "metrics": {"samples": 7, "classes_seen": 3, "nonfinite": 0,
                     "nc1": %s, "nc1_trace": %s, "nc2_equinorm": 0.1222789,
                     "nc2_equiangular": 0.1605758, "nc2_etf_distance": 0.2808407, "cdnv": %s,
                     "nc3_self_duality": 0.0132015, "nc4_ncc_mismatch": %s, "sb_rank": 2},
         "params": {"reduction": "none"}, "device": "cpu"}
        """
        .formatted(
            id,
            run,
            step,
            modelSha,
            referenceSha,
            352.0 / 3969,
            11.0 / 76,
            (5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3,
            1.0 / 7);
  }

  private static String page(int total, int offset, int limit, String... results) {
    return "{\"total\": %d, \"offset\": %d, \"limit\": %d, \"results\": [%s]}"
        .formatted(total, offset, limit, String.join(",", results));
  }

  /**
   * The whole body equals {@code expected} as a tree: same fields in the same order, same array
   * lengths, equal values; a fractional number in {@code expected} matches within {@link
   * #HAND_TOLERANCE}. Each result must pass its schema; computed_at and latency_ms are then removed
   * from it.
   */
  private static void assertDocument(ServiceHarness h, String path, int status, String expected)
      throws Exception {
    HttpResponse<String> res = h.get(path);
    assertThat(res.statusCode()).as(path + ": " + res.body()).isEqualTo(status);
    assertThat(res.headers().firstValue("content-type")).as(path).hasValue("application/json");
    JsonNode actual = JSON.readTree(res.body());
    if (actual.has("results")) {
      for (JsonNode r : (ArrayNode) actual.get("results")) {
        assertThat(Schemas.get().validateResult(r.toString())).as(path + " " + r).isEmpty();
        assertThat(r.has("computed_at") && r.has("latency_ms")).as(path + " " + r).isTrue();
        ((ObjectNode) r).remove(List.of("computed_at", "latency_ms"));
      }
    }
    assertSameTree(path, actual, JSON.readTree(expected));
  }

  private static void assertSameTree(String where, JsonNode actual, JsonNode expected) {
    if (expected.isFloatingPointNumber()) {
      assertThat(actual.isNumber()).as(where + " = " + actual).isTrue();
      assertThat(actual.doubleValue())
          .as(where)
          .isCloseTo(expected.doubleValue(), within(HAND_TOLERANCE));
    } else if (expected.isObject()) {
      assertThat(names(actual)).as(where + " fields").containsExactlyElementsOf(names(expected));
      for (String name : names(expected)) {
        assertSameTree(where + "." + name, actual.get(name), expected.get(name));
      }
    } else if (expected.isArray()) {
      assertThat(actual.size()).as(where + " length: " + actual).isEqualTo(expected.size());
      for (int i = 0; i < expected.size(); i++) {
        assertSameTree(where + "[" + i + "]", actual.get(i), expected.get(i));
      }
    } else {
      assertThat(actual).as(where).isEqualTo(expected);
    }
  }

  private static List<String> names(JsonNode node) {
    List<String> out = new ArrayList<>();
    node.fieldNames().forEachRemaining(out::add);
    return out;
  }

  private static void sendCheckpoint(ServiceHarness h, String run, long step, String sha, int size)
      throws Exception {
    h.sendCheckpoint(
        EXPERIMENT,
        Fixtures.manifest(
                EXPERIMENT,
                run,
                step,
                sha,
                size,
                1,
                "{\"h\":\"h\"}",
                ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
            .getBytes(StandardCharsets.UTF_8));
  }
}
