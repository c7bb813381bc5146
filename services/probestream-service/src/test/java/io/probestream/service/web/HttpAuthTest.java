package io.probestream.service.web;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.StoredResult;
import io.vertx.core.Vertx;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The optional bearer token on a real HTTP verticle: which paths need it and how it is given. */
class HttpAuthTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String TOKEN = "s3cret-token-0123456789";
  private static final String UNAUTHORIZED =
      "{\"error\": \"unauthorized\", \"message\": \"this path needs Authorization: Bearer <token>"
          + " or ?access_token=<token>\", \"status\": 401}";
  private static final List<String> PROTECTED =
      List.of(
          "/",
          "/api/v1/experiments",
          "/api/v1/experiments/mnist/results",
          "/api/v1/stream",
          "/api/v1/nothing",
          "/webjars/uplot/" + LivePage.UPLOT + "/dist/uPlot.iife.min.js",
          "/health/../api/v1/experiments");

  private final HttpClient http = HttpClient.newHttpClient();
  private final ServiceMetrics metrics = new ServiceMetrics();
  private Vertx vertx;
  private int port;

  private void start(String token, List<String> openPaths) throws Exception {
    ResultView view = new ResultView(10, 10);
    view.add(
        StoredResult.of(
            ProbeResult.of(
                "mnist",
                "seed-1",
                100,
                "ab".repeat(32),
                "cd".repeat(32),
                "neural_collapse",
                "fc1",
                "reference",
                Map.of("nc1", 0.5),
                Map.of("reduction", "none"),
                null,
                "cpu",
                Instant.parse("2026-01-02T03:04:05Z"),
                9)));
    vertx = Vertx.vertx();
    HttpVerticle verticle =
        new HttpVerticle(
            "127.0.0.1", 0, token, openPaths, metrics, view, e -> "none", new Readiness());
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

  /** Status of GET path; a stream's body is not read (the server keeps it open). */
  private Response get(String path, String authorization) throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .timeout(Duration.ofSeconds(10));
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    if (path.contains("/api/v1/stream")) {
      // The stream stays open: read its head, then either the body of a refusal or nothing.
      HttpResponse<InputStream> res =
          http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
      try (InputStream body = res.body()) {
        String text =
            res.statusCode() == 200 ? "" : new String(body.readAllBytes(), StandardCharsets.UTF_8);
        return new Response(res.statusCode(), res.headers(), text);
      }
    }
    HttpResponse<String> res = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    return new Response(res.statusCode(), res.headers(), res.body());
  }

  private int status(String path, String authorization) throws Exception {
    return get(path, authorization).statusCode();
  }

  @Test
  void withoutATokenEveryPathIsOpenAsBefore() throws Exception {
    start("", List.of("/health/", "/metrics"));
    assertThat(status("/api/v1/experiments", null)).isEqualTo(200);
    assertThat(status("/", null)).isEqualTo(200);
    assertThat(status("/metrics", null)).isEqualTo(200);
    assertThat(status("/health/live", null)).isEqualTo(200);
    assertThat(status("/webjars/uplot/" + LivePage.UPLOT + "/dist/uPlot.iife.min.js", null))
        .isEqualTo(200);
  }

  @Test
  void withATokenTheApiRefusesAMissingOrWrongTokenWith401AndAChallenge() throws Exception {
    start(TOKEN, List.of("/health/", "/metrics"));
    for (String path : PROTECTED) {
      for (String auth :
          new String[] {
            null, "Bearer wrong-token-0123456789", "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN
          }) {
        Response res = get(path, auth);
        assertThat(res.statusCode()).as(path + " " + auth).isEqualTo(401);
        assertThat(res.headers().firstValue("WWW-Authenticate"))
            .as(path)
            .hasValue("Bearer realm=\"probestream\"");
        assertThat(res.headers().firstValue("content-type")).hasValue("application/json");
        assertThat(JSON.readTree(res.body())).isEqualTo(JSON.readTree(UNAUTHORIZED));
        assertThat(res.body()).doesNotContain(TOKEN);
      }
    }
    assertThat(status("/api/v1/experiments?access_token=nope", null)).isEqualTo(401);
    assertThat(status("/api/v1/experiments?access_token=", null)).isEqualTo(401);
    // A wrong header is not rescued by a right query parameter.
    assertThat(status("/api/v1/experiments?access_token=" + TOKEN, "Bearer nope")).isEqualTo(401);
  }

  @Test
  void withATokenTheHeaderOrTheQueryParameterOpensEveryPath() throws Exception {
    start(TOKEN, List.of("/health/", "/metrics"));
    for (String path : PROTECTED) {
      int expected = path.equals("/api/v1/nothing") ? 404 : 200;
      assertThat(status(path, "Bearer " + TOKEN)).as(path).isEqualTo(expected);
      assertThat(status(path, "bearer  " + TOKEN)).as(path).isEqualTo(expected);
      assertThat(status(path + "?access_token=" + TOKEN, null)).as(path).isEqualTo(expected);
    }
    // The results route rejects unknown parameters; access_token is taken away before it runs.
    Response res = get("/api/v1/experiments/mnist/results?limit=5&access_token=" + TOKEN, null);
    assertThat(res.statusCode()).isEqualTo(200);
    assertThat(JSON.readTree(res.body()).get("total").asInt()).isEqualTo(1);
    assertThat(status("/api/v1/experiments/mnist/results?access_token=" + TOKEN + "&bogus=1", null))
        .isEqualTo(400);
  }

  @Test
  void withATokenTheOpenPathsNeedNone() throws Exception {
    start(TOKEN, List.of("/health/", "/metrics", "/webjars/"));
    assertThat(status("/health/live", null)).isEqualTo(200);
    assertThat(status("/health/ready", null)).isEqualTo(503);
    assertThat(status("/metrics", null)).isEqualTo(200);
    assertThat(status("/webjars/uplot/" + LivePage.UPLOT + "/dist/uPlot.iife.min.js", null))
        .isEqualTo(200);
    assertThat(status("/api/v1/experiments", null)).isEqualTo(401);
  }

  @Test
  void theDashboardCarriesTheTokenFromItsUrl() throws Exception {
    start(TOKEN, List.of("/health/", "/metrics"));
    String page = get("/?access_token=" + TOKEN, null).body();
    assertThat(page)
        .doesNotContain(TOKEN)
        .contains("new URLSearchParams(location.search).get('access_token')")
        .contains("new EventSource(withToken('/api/v1/stream'))")
        .contains("withToken('/webjars/uplot/")
        .contains("fetch('/api/v1/experiments', AUTH)");
  }

  private record Response(int statusCode, HttpHeaders headers, String body) {}
}
