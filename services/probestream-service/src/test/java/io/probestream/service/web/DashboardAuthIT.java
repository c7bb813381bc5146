package io.probestream.service.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.StoredResult;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;

/**
 * The dashboard in a real headless browser (Debian's chromium) behind a bearer token: opened as
 * {@code /?access_token=TOKEN}, it loads the chart library, the results and the live stream.
 */
class DashboardAuthIT {
  private static final String TOKEN = "s3cret-token-0123456789";

  private static ProbeResult result(long step) {
    return ProbeResult.of(
        "mnist",
        "seed-1",
        step,
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
        9);
  }

  private static WebDriver browser() {
    return io.probestream.service.web.HeadlessChromium.start();
  }

  private static Object js(WebDriver d, String script) {
    return ((JavascriptExecutor) d).executeScript("return " + script);
  }

  @Test
  void thePageOpenedWithTheTokenLoadsEverythingAndFollowsTheStream() throws Exception {
    ResultView view = new ResultView(10, 10);
    view.add(StoredResult.of(result(100)));
    ServiceMetrics metrics = new ServiceMetrics();
    Vertx vertx = Vertx.vertx();
    WebDriver d = browser();
    try {
      HttpVerticle verticle =
          new HttpVerticle(
              "127.0.0.1",
              0,
              TOKEN,
              List.of("/health/", "/metrics"),
              metrics,
              view,
              e -> "complete",
              new Readiness());
      vertx
          .deployVerticle(verticle)
          .toCompletionStage()
          .toCompletableFuture()
          .get(10, TimeUnit.SECONDS);
      d.get("http://127.0.0.1:" + verticle.actualPort() + "/?access_token=" + TOKEN);
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> d.findElement(By.id("live")).getText().equals("live"));
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> ((Number) js(d, "window.probestream.results")).longValue() == 1);
      assertThat(js(d, "typeof uPlot")).isEqualTo("function");
      vertx.eventBus().publish(HttpVerticle.RESULTS_ADDRESS, result(200).toJson());
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> ((Number) js(d, "window.probestream.results")).longValue() == 2);
      assertThat(d.findElement(By.id("state")).getAttribute("class")).isEqualTo("ok");
    } finally {
      d.quit();
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }
}
