package io.probestream.loadtests.loadgen;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.ProbestreamService;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import io.vertx.core.Vertx;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generator end to end against the real service (in this JVM) on the embedded test broker: a
 * 20-16-8-5 MLP (two probed layers), 200 reference samples, 2 runs × (warm-up + 2 checkpoints) and
 * 5 live batches per run. Every measured checkpoint and live batch must be in the histograms, once,
 * with a positive latency, and the .hgrm files must be written.
 */
@ProbestreamIT
class LoadGeneratorIT {

  @Test
  void recordsEveryCheckpointAndLiveBatchOfATinyJob(KafkaTestCluster kafka, @TempDir Path dir)
      throws Exception {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.bootstrap-servers", kafka.bootstrapServers());
    flags.put("kafka.group-id", kafka.topicPrefix() + "group");
    flags.put("topics.prefix", kafka.topicPrefix());
    flags.put("topics.partitions", "1");
    flags.put("http.port", "0");
    flags.put("http.host", "127.0.0.1");
    flags.put("data-dir", dir.resolve("data").toString());
    flags.put("model.device", "cpu");
    flags.put("probes.enabled", "neural_collapse");
    ProbestreamConfig config = ProbestreamConfig.of(flags);
    Vertx vertx = Vertx.vertx();
    ProbestreamService service =
        ProbestreamService.start(vertx, config, kafka.bootstrapServers())
            .toCompletionStage()
            .toCompletableFuture()
            .get(60, TimeUnit.SECONDS);
    try {
      Job job =
          Job.parse(
              new String[] {
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--topic-prefix", kafka.topicPrefix(),
                "--experiment", "loadgen-it",
                "--widths", "20,16,8,5",
                "--reference-samples", "200",
                "--reference-batch", "100",
                "--runs", "2",
                "--checkpoints", "2",
                "--checkpoint-interval-ms", "100",
                "--live-batches", "5",
                "--live-senders", "2",
                "--batch-size", "32",
                "--out", dir.resolve("it").toString(),
                "--timeout-s", "30"
              });
      ByteArrayOutputStream log = new ByteArrayOutputStream();
      LoadGenerator.Summary s =
          new LoadGenerator(job, new PrintStream(log, true, StandardCharsets.UTF_8)).run();

      assertThat(s.complete()).as(log.toString(StandardCharsets.UTF_8)).isTrue();
      // 2 runs × 2 measured checkpoints (the warm-up step 0 is not counted), 2 layers each
      assertThat(s.completion().getTotalCount()).isEqualTo(4);
      assertThat(s.result().getTotalCount()).isEqualTo(8);
      assertThat(s.completion().getMinValue()).isPositive();
      assertThat(s.result().getMinValue()).isPositive();
      assertThat(s.completion().getMaxValue()).isLessThan(30_000);
      // 2 runs × 5 live batches, each back with both layers' results
      assertThat(s.liveBatchesBack()).isEqualTo(10);
      assertThat(s.live().getTotalCount()).isEqualTo(10);
      assertThat(s.live().getMinValue()).isPositive();
      assertThat(s.liveWindowS()).isPositive();
      assertThat(s.liveSamplesPerS()).isEqualTo(s.liveBatchesPerS() * 32);

      ByteArrayOutputStream table = new ByteArrayOutputStream();
      s.print(new PrintStream(table, true, StandardCharsets.UTF_8));
      assertThat(table.toString(StandardCharsets.UTF_8))
          .contains("manifest -> last result (completion)             4")
          .contains("live throughput: 10 batches back");
      List<Path> files = s.writeHgrm(dir.resolve("it"));
      assertThat(files)
          .containsExactly(
              dir.resolve("it-completion.hgrm"),
              dir.resolve("it-result.hgrm"),
              dir.resolve("it-live.hgrm"));
      assertThat(Files.readString(files.get(0))).containsPattern("Total count +=  +4]");
    } finally {
      service.stop().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
