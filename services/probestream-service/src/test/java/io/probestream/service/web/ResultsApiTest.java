package io.probestream.service.web;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.StoredResult;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The results API and the event stream on a real HTTP verticle, fed a view filled by hand. */
class ResultsApiTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ProbeResult A_FC1 = result("mnist", "seed-1", 100, "fc1", 0.5);
  private static final ProbeResult A_FC2 = result("mnist", "seed-1", 100, "fc2", 0.25);
  private static final ProbeResult B_FC1 = result("mnist", "seed-2", 50, "fc1", 0.75);
  private static final ProbeResult CIFAR = result("cifar", "r", 7, "fc1", 1.5);

  private final HttpClient http = HttpClient.newHttpClient();
  private Vertx vertx;
  private int port;

  private static ProbeResult result(
      String experiment, String run, long step, String layer, double nc1) {
    return ProbeResult.of(
        experiment,
        run,
        step,
        "ab".repeat(32),
        "cd".repeat(32),
        "neural_collapse",
        layer,
        "reference",
        Map.of("nc1", nc1),
        Map.of("reduction", "none"),
        null,
        "cpu",
        Instant.parse("2026-01-02T03:04:05Z"),
        9);
  }

  @BeforeEach
  void start() throws Exception {
    ResultView view = new ResultView(10, 10);
    for (ProbeResult r : List.of(A_FC1, A_FC2, CIFAR, B_FC1)) {
      view.add(StoredResult.of(r));
    }
    vertx = Vertx.vertx();
    HttpVerticle verticle =
        new HttpVerticle(
            "127.0.0.1",
            0,
            new ServiceMetrics(),
            view,
            e -> e.equals("mnist") ? "complete" : "none",
            new Readiness());
    vertx
        .deployVerticle(verticle)
        .toCompletionStage()
        .toCompletableFuture()
        .get(10, TimeUnit.SECONDS);
    port = verticle.actualPort();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private HttpResponse<String> get(String path) throws Exception {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** Asserts status, JSON content type and the whole body as a parsed tree. */
  private void assertJson(String path, int status, String expected) throws Exception {
    HttpResponse<String> res = get(path);
    assertThat(res.statusCode()).as(path).isEqualTo(status);
    assertThat(res.headers().firstValue("content-type")).as(path).hasValue("application/json");
    assertThat(JSON.readTree(res.body())).as(path).isEqualTo(JSON.readTree(expected));
  }

  private static String page(int total, int offset, int limit, ProbeResult... results) {
    StringBuilder sb =
        new StringBuilder(
            "{\"total\":"
                + total
                + ",\"offset\":"
                + offset
                + ",\"limit\":"
                + limit
                + ",\"results\":[");
    for (int i = 0; i < results.length; i++) {
      sb.append(i == 0 ? "" : ",").append(results[i].toJson());
    }
    return sb.append("]}").toString();
  }

  @Test
  void experimentsListTheirRunsLatestStepsCountsAndReferenceSets() throws Exception {
    assertJson(
        "/api/v1/experiments",
        200,
        """
        [{"experiment": "cifar", "runs": [{"run": "r", "latest_step": 7, "results": 1}],
          "latest_step": 7, "results": 1, "reference_set": "none"},
         {"experiment": "mnist",
          "runs": [{"run": "seed-1", "latest_step": 100, "results": 2},
                   {"run": "seed-2", "latest_step": 50, "results": 1}],
          "latest_step": 100, "results": 3, "reference_set": "complete"}]
        """);
  }

  @Test
  void resultsAreTheDocumentsAsPublishedOldestFirst() throws Exception {
    assertJson("/api/v1/experiments/mnist/results", 200, page(3, 0, 100, A_FC1, A_FC2, B_FC1));
    assertJson("/api/v1/experiments/cifar/results", 200, page(1, 0, 100, CIFAR));
  }

  @Test
  void filtersAndPagingSelectTheResults() throws Exception {
    String base = "/api/v1/experiments/mnist/results";
    assertJson(base + "?run=seed-1", 200, page(2, 0, 100, A_FC1, A_FC2));
    assertJson(base + "?layer=fc1", 200, page(2, 0, 100, A_FC1, B_FC1));
    assertJson(
        base + "?probe=neural_collapse&split=reference", 200, page(3, 0, 100, A_FC1, A_FC2, B_FC1));
    assertJson(base + "?split=eval", 200, page(0, 0, 100));
    assertJson(base + "?step_min=60", 200, page(2, 0, 100, A_FC1, A_FC2));
    assertJson(base + "?step_max=99", 200, page(1, 0, 100, B_FC1));
    assertJson(base + "?step_min=50&step_max=50", 200, page(1, 0, 100, B_FC1));
    assertJson(base + "?limit=1&offset=1", 200, page(3, 1, 1, A_FC2));
    assertJson(base + "?limit=2&offset=5", 200, page(3, 5, 2));
    assertJson(base + "?run=&limit=1000&layer=fc2", 200, page(1, 0, 1000, A_FC2));
  }

  @Test
  void anUnknownExperimentIs404() throws Exception {
    assertJson(
        "/api/v1/experiments/nope/results",
        404,
        "{\"error\": \"unknown experiment 'nope'\", \"status\": 404}");
    assertJson(
        "/api/v1/experiments/no%20such/results?limit=5",
        404, "{\"error\": \"unknown experiment 'no such'\", \"status\": 404}");
  }

  @Test
  void aBadParameterIs400NamingItAndItsRange() throws Exception {
    String base = "/api/v1/experiments/mnist/results?";
    Map<String, String> cases =
        Map.of(
            "step_min=abc",
            "query parameter step_min = 'abc': must be an integer from 0 to 9223372036854775807",
            "step_max=-1",
            "query parameter step_max = '-1': must be an integer from 0 to 9223372036854775807",
            "limit=1001",
            "query parameter limit = '1001': must be an integer from 1 to 1000",
            "limit=0",
            "query parameter limit = '0': must be an integer from 1 to 1000",
            "offset=-1",
            "query parameter offset = '-1': must be an integer from 0 to 2147483647",
            "step_min=9&step_max=5",
            "query parameter step_min = 9 is above step_max = 5; give step_min <= step_max",
            "stepmin=3",
            "unknown query parameter 'stepmin'; allowed: run, probe, layer, split, step_min,"
                + " step_max, limit, offset",
            "run=a&run=b",
            "query parameter run is given 2 times; give it once");
    for (Map.Entry<String, String> c : cases.entrySet()) {
      assertJson(
          base + c.getKey(),
          400,
          JSON.createObjectNode().put("error", c.getValue()).put("status", 400).toString());
    }
  }

  @Test
  void anUnknownPathIsAJson404() throws Exception {
    assertJson(
        "/api/v1/nothing",
        404,
        "{\"error\": \"no such path: GET /api/v1/nothing\", \"status\": 404}");
  }

  @Test
  @Timeout(20)
  void theStreamSendsEachResultPublishedOnTheEventBus() throws Exception {
    HttpResponse<InputStream> res =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/stream"))
                .build(),
            HttpResponse.BodyHandlers.ofInputStream());
    assertThat(res.headers().firstValue("content-type")).hasValue("text/event-stream");
    try (BufferedReader lines =
        new BufferedReader(new InputStreamReader(res.body(), StandardCharsets.UTF_8))) {
      assertThat(lines.readLine()).isEqualTo(": probestream result stream");
      assertThat(lines.readLine()).isEmpty();
      vertx.eventBus().publish(HttpVerticle.RESULTS_ADDRESS, CIFAR.toJson());
      assertThat(lines.readLine()).isEqualTo("event: result");
      assertThat(lines.readLine()).isEqualTo("data: " + CIFAR.toJson());
      assertThat(lines.readLine()).isEmpty();
    }
  }

  @Test
  void healthRoutesStillAnswer() throws Exception {
    assertJson("/health/live", 200, "{\"status\": \"UP\"}");
    assertJson(
        "/health/ready",
        503,
        "{\"status\": \"DOWN\", \"broker\": false, \"assigned\": false, \"device\": \"none yet\"}");
  }
}
