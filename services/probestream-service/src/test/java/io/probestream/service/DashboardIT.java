package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;

/**
 * The live dashboard in a real headless browser (Debian's chromium through chromedriver): it says
 * it is waiting before any data, then draws a chart per probe metric from real results of three
 * runs (examples/multiplicity through Kafka, every probe), follows new results over server-sent
 * events, shows the Rashomon set, and switches to the live {@code train} split. The screenshot is
 * saved as target/dashboard.png.
 */
@ProbestreamIT
class DashboardIT {
  private static final Path DIR = Path.of("../../examples/multiplicity");
  private static final String[][] CHECKPOINTS = {
    {"seed-1", "100"}, {"seed-1", "300"}, {"seed-1", "800"}, {"seed-2", "800"}, {"seed-3", "800"}
  };

  private static WebDriver browser() {
    return io.probestream.service.web.HeadlessChromium.start();
  }

  /** Chooses a split in the page's selector, as a user would. */
  private static void split(WebDriver d, String value) {
    d.findElement(By.id("split")).click();
    d.findElement(By.cssSelector("#split option[value='" + value + "']")).click();
  }

  private static long number(WebDriver d, String script) {
    Object v = ((JavascriptExecutor) d).executeScript("return " + script);
    return v == null ? 0 : ((Number) v).longValue();
  }

  private static void checkpoint(ServiceHarness h, int i, String sha, int size) throws Exception {
    String[] cp = CHECKPOINTS[i];
    h.sendCheckpoint(
        "dash",
        Fixtures.manifest(
                "dash",
                cp[0],
                Long.parseLong(cp[1]),
                sha,
                size,
                1,
                "{\"h1\":\"h1\"}",
                ",\"classifier_weight\":\"classifier.weight\",\"classes\":5")
            .getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void chartsFillFromARealRunAndFollowTheStream(KafkaTestCluster kafka) throws Exception {
    WebDriver d = browser();
    try (ServiceHarness h =
        ServiceHarness.start(kafka, Map.of("probes.enabled", "all", "workers.threads", "1"))) {
      String url = "http://127.0.0.1:" + h.service.httpPort() + "/";
      d.get(url);
      // Nothing published yet: the page says so instead of showing empty charts.
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> d.findElement(By.id("state")).getText().startsWith("Waiting for data"));
      await()
          .atMost(Duration.ofSeconds(20))
          .until(() -> d.findElement(By.id("live")).getText().equals("live"));

      h.sendReference(
          "dash",
          Files.readAllBytes(DIR.resolve("reference-0.safetensors")),
          Files.readAllBytes(DIR.resolve("reference-1.safetensors")));
      String[] shas = new String[CHECKPOINTS.length];
      int[] sizes = new int[CHECKPOINTS.length];
      for (int i = 0; i < CHECKPOINTS.length; i++) {
        byte[] model =
            Files.readAllBytes(
                DIR.resolve(CHECKPOINTS[i][0] + "-step" + CHECKPOINTS[i][1] + ".onnx"));
        shas[i] = h.sendBlob("dash", model);
        sizes[i] = model.length;
      }
      for (int i = 0; i < 4; i++) {
        checkpoint(h, i, shas[i], sizes[i]);
      }
      // 4 checkpoints × (neural_collapse + feature_complexity on h1 + multiplicity) = 12 results,
      // all arriving over the event stream (the page loaded before any existed).
      await()
          .atMost(Duration.ofSeconds(90))
          .until(() -> number(d, "window.probestream.results") >= 12);
      for (String probe :
          new String[] {"neural_collapse", "feature_complexity", "predictive_multiplicity"}) {
        await()
            .atMost(Duration.ofSeconds(10))
            .until(
                () ->
                    !d.findElements(By.cssSelector("#group-" + probe + " .card canvas")).isEmpty());
      }
      // nc1 over steps: seed-1 has three checkpoints, seed-2 one: four points on two lines.
      String nc1 = "#group-neural_collapse .card[data-metric='neural_collapse|nc1']";
      assertThat(d.findElement(By.cssSelector(nc1)).getAttribute("data-points")).isEqualTo("4");
      assertThat(d.findElement(By.cssSelector(nc1)).getText()).contains("seed-1", "seed-2");
      assertThat(d.findElement(By.id("state")).isDisplayed()).isFalse();

      // A new checkpoint of a third run arrives while the page is open.
      long before = number(d, "window.probestream.points");
      checkpoint(h, 4, shas[4], sizes[4]);
      await()
          .atMost(Duration.ofSeconds(60))
          .until(() -> number(d, "window.probestream.points") > before);
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> d.findElement(By.cssSelector(nc1)).getText().contains("seed-3"));
      // The Rashomon set after the last checkpoint: seed-1@300, seed-1@800, seed-2@800, seed-3@800
      // (examples/multiplicity/README.md), baseline seed-1@800.
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> d.findElement(By.id("rashomon")).getText().contains("seed-3 @ step 800"));
      assertThat(d.findElement(By.cssSelector("#rashomon li.baseline")).getText())
          .isEqualTo("seed-1 @ step 800 (baseline)"); // the browser collapses the double space
      assertThat(d.findElements(By.cssSelector("#rashomon li"))).hasSize(4);
      assertThat(d.findElement(By.id("latest-feature_complexity")).getText()).contains("seed-3");

      // A live train batch of seed-3: its pass-1 result shows under split = train.
      h.send(
          h.topics.batches(),
          "dash",
          Files.readAllBytes(DIR.resolve("reference-1.safetensors")),
          ServiceHarness.cloudEvent(
              Headers.TYPE_BATCH,
              Headers.EXPERIMENT,
              "dash",
              Headers.SPLIT,
              "train",
              Headers.BATCH_INDEX,
              "0",
              Headers.RUN,
              "seed-3"));
      split(d, "train");
      await()
          .atMost(Duration.ofSeconds(60))
          .until(
              () ->
                  "1"
                      .equals(
                          d.findElement(
                                  By.cssSelector(
                                      "#group-neural_collapse .card[data-metric='neural_collapse|nc1_trace']"))
                              .getAttribute("data-points")));
      split(d, "reference");
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> d.findElement(By.cssSelector(nc1)).getAttribute("data-points").equals("5"));

      Path shot = Path.of("target/dashboard.png");
      Files.write(shot, ((TakesScreenshot) d).getScreenshotAs(OutputType.BYTES));
      assertThat(Files.size(shot)).isGreaterThan(10_000);
    } finally {
      d.quit();
    }
  }
}
