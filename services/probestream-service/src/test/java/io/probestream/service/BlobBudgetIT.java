package io.probestream.service;

import static io.probestream.service.ServiceHarness.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.store.BlobStore;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * probestream.blobs.store-bytes in the running service: eviction spares blobs checkpoints wait for.
 */
@ProbestreamIT
class BlobBudgetIT {
  @Test
  void aBlobAWaitingCheckpointNamesIsNotEvicted(KafkaTestCluster kafka) throws Exception {
    byte[] pinnedModel = model(1);
    byte[] otherModel = model(2);
    String pinned = ProbeResult.sha256Hex(pinnedModel);
    String other = ProbeResult.sha256Hex(otherModel);
    // Room for either model alone, never for both: the second one assembled puts the store over.
    long budget = Math.max(pinnedModel.length, otherModel.length) + 4096;
    assertThat(budget).isLessThan(pinnedModel.length + otherModel.length);
    List<String> evicted = new CopyOnWriteArrayList<>();
    Logger log = Logger.getLogger(BlobStore.class.getName());
    Handler capture =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            if (r.getMessage() != null && r.getMessage().startsWith("evicted model blob ")) {
              evicted.add(r.getMessage().split(" ")[3]);
            }
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    Level level = log.getLevel();
    log.setLevel(Level.INFO);
    log.addHandler(capture);
    try (ServiceHarness h =
        ServiceHarness.start(
            kafka,
            Map.of("blobs.store-bytes", Long.toString(budget), "pending.max-age-ms", "120000"))) {
      Path blobs = h.dataDir.resolve("blobs");
      h.sendBlob("e", pinnedModel);
      // No reference set yet: the checkpoint waits, and so names (pins) its blob.
      h.sendCheckpoint("e", manifest(pinned, pinnedModel.length));
      await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(blobs.resolve(pinned)));
      h.sendBlob("e", otherModel);

      // The pinned blob is the least recently used one, so without the pin it would go; the
      // blob no checkpoint names goes instead.
      await().atMost(Duration.ofSeconds(30)).until(() -> !evicted.isEmpty());
      assertThat(evicted).containsExactly(other);
      await()
          .atMost(Duration.ofSeconds(10))
          .untilAsserted(() -> assertThat(stored(blobs)).containsExactly(pinned));

      h.sendReference("e", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 1, Duration.ofSeconds(60));
      assertThat(results).hasSize(1);
      assertThat(new String(results.get(0).value(), StandardCharsets.UTF_8))
          .contains("\"model_sha256\":\"" + pinned + "\"");
      assertThat(h.read(h.topics.dlq(), 1, Duration.ofSeconds(2))).isEmpty();
      assertThat(evicted).containsExactly(other);
    } finally {
      log.removeHandler(capture);
      log.setLevel(level);
    }
  }

  @Test
  void aBlobLargerThanTheBudgetIsDeadLetteredNamingTheKey(KafkaTestCluster kafka) throws Exception {
    byte[] model = model(3);
    String sha = ProbeResult.sha256Hex(model);
    long budget = 1 << 20; // the smallest budget the key allows
    assertThat(model.length).isGreaterThan((int) budget);
    try (ServiceHarness h =
        ServiceHarness.start(kafka, Map.of("blobs.store-bytes", Long.toString(budget)))) {
      h.sendCheckpoint("e", manifest(sha, model.length));
      h.sendBlob("e", model);
      List<ConsumerRecord<byte[], byte[]>> dlq = h.read(h.topics.dlq(), 2, Duration.ofSeconds(30));
      assertThat(dlq).hasSize(2);
      String expected =
          "model blob "
              + sha
              + " is "
              + model.length
              + " bytes; it alone exceeds the blob store budget probestream.blobs.store-bytes = "
              + budget;
      for (ConsumerRecord<byte[], byte[]> r : dlq) {
        assertThat(header(r, Headers.DLQ_REASON)).isEqualTo("payload_too_large");
        assertThat(header(r, Headers.DLQ_MESSAGE)).isEqualTo(expected);
      }
      assertThat(header(dlq.get(0), Headers.DLQ_SOURCE_TOPIC)).isEqualTo(h.topics.checkpoints());
      assertThat(header(dlq.get(1), Headers.DLQ_SOURCE_TOPIC)).isEqualTo(h.topics.blobs());
      assertThat(stored(h.dataDir.resolve("blobs"))).isEmpty();
      assertThat(Files.exists(h.dataDir.resolve("blobs").resolve("partial").resolve(sha)))
          .isFalse();
    }
  }

  private static byte[] manifest(String sha, long size) {
    return Fixtures.manifest(
            "e",
            "r",
            1,
            sha,
            size,
            1,
            "{\"h1\":\"h1\"}",
            ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
        .getBytes(StandardCharsets.UTF_8);
  }

  /** A 2-512-512-3 ReLU MLP (NC-B's input width and classes), about 1.06 MB of weights. */
  private static byte[] model(long seed) {
    return Mlp.random(seed, 2, 512, 512, 3).onnx();
  }

  private static List<String> stored(Path blobs) throws Exception {
    try (Stream<Path> s = Files.list(blobs)) {
      return s.filter(Files::isRegularFile).map(p -> p.getFileName().toString()).toList();
    }
  }
}
