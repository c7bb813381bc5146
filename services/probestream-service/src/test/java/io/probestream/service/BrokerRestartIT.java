package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.topics.Headers;
import io.probestream.embedded.EmbeddedKafka;
import io.probestream.testkit.KafkaTestCluster;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * Issue 10 item 2: the broker stops in the middle of a run and comes back on the same port and data
 * dir; the service, never restarted, catches up by itself: every checkpoint's results arrive (at
 * least once: duplicates are allowed, so results are counted by {@code id}), /health/ready is 200
 * again, and nothing is dead-lettered. It prints how long the service took from the broker being
 * back to its first new result.
 */
class BrokerRestartIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EXPERIMENT = "restart";
  private static final String RUN = "seed-1";
  private static final Duration DOWN = Duration.ofSeconds(4);
  // checkpoints 1..3 before the outage, 4..LAST_BEFORE sent just before the stop (some still in
  // the service when the broker goes), LAST_BEFORE+1..LAST after it is back
  private static final long LAST_BEFORE = 30;
  private static final long LAST = 33;

  @Test
  void theServiceRecoversFromABrokerRestartByItself() throws Exception {
    Path kafkaDir = Files.createTempDirectory("probestream-restart-kafka-");
    EmbeddedKafka broker =
        EmbeddedKafka.start(EmbeddedKafka.Options.defaults().withDataDir(kafkaDir));
    int port = broker.port();
    KafkaTestCluster cluster = new KafkaTestCluster(broker.bootstrapServers(), "restart-");
    byte[] model = Fixtures.example("model.onnx");
    byte[] b0 = Fixtures.example("reference-0.safetensors");
    byte[] b1 = Fixtures.example("reference-1.safetensors");
    // (step → result ids) as acknowledged to the service by Kafka, and when
    Map<Long, Long> firstAck = new ConcurrentHashMap<>();
    List<String> readiness = new CopyOnWriteArrayList<>();
    AtomicBoolean polling = new AtomicBoolean(true);
    Thread poller = null;
    try {
      try (ServiceHarness h =
          ServiceHarness.start(
              cluster, Map.of("pending.max-age-ms", "300000", "workers.threads", "1"))) {
        h.service.results().addListener(r -> firstAck.putIfAbsent(r.step(), System.nanoTime()));
        h.sendReference(EXPERIMENT, b0, b1);
        String sha = h.sendBlob(EXPERIMENT, model);
        for (long step = 1; step <= 3; step++) {
          checkpoint(h, sha, model.length, step);
        }
        // Before the stop: 3 checkpoints done; their results give the count per checkpoint.
        List<ConsumerRecord<byte[], byte[]>> before =
            h.read(h.topics.results(), 3, Duration.ofSeconds(60));
        Map<Long, TreeSet<String>> beforeIds =
            idsByStep(h.read(h.topics.results(), 6, Duration.ofSeconds(10)));
        assertThat(beforeIds).containsOnlyKeys(1L, 2L, 3L);
        int perCheckpoint = beforeIds.get(1L).size();
        assertThat(perCheckpoint).isPositive();
        assertThat(before).isNotEmpty();
        assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);

        poller =
            new Thread(
                () -> {
                  while (polling.get()) {
                    String status;
                    try {
                      status = Integer.toString(h.get("/health/ready").statusCode());
                    } catch (IOException e) {
                      status = "io:" + e.getClass().getSimpleName();
                    } catch (InterruptedException e) {
                      return;
                    }
                    if (readiness.isEmpty()
                        || !readiness.get(readiness.size() - 1).equals(status)) {
                      readiness.add(status);
                    }
                    try {
                      Thread.sleep(100);
                    } catch (InterruptedException e) {
                      return;
                    }
                  }
                },
                "ready-poller");
        poller.setDaemon(true);
        poller.start();

        // In flight when the broker goes: consumed (or about to be), results not yet acknowledged.
        for (long step = 4; step <= LAST_BEFORE; step++) {
          checkpoint(h, sha, model.length, step);
        }
        int doneBeforeStop = firstAck.size();
        long stopAt = System.nanoTime();
        broker.close();
        long stopped = System.nanoTime();
        Thread.sleep(DOWN.toMillis());
        long restartAt = System.nanoTime();
        broker =
            EmbeddedKafka.start(
                EmbeddedKafka.Options.defaults().withBrokerPort(port).withDataDir(kafkaDir));
        long backUp = System.nanoTime();
        assertThat(broker.port()).isEqualTo(port);
        for (long step = LAST_BEFORE + 1; step <= LAST; step++) {
          checkpoint(h, sha, model.length, step);
        }

        // Every checkpoint's results, however often Kafka holds them.
        await()
            .atMost(Duration.ofSeconds(120))
            .pollInterval(Duration.ofMillis(500))
            .untilAsserted(
                () -> {
                  Map<Long, TreeSet<String>> ids =
                      idsByStep(
                          h.read(
                              h.topics.results(),
                              (int) LAST * perCheckpoint,
                              Duration.ofSeconds(5)));
                  assertThat(ids.keySet())
                      .containsExactlyElementsOf(
                          java.util.stream.LongStream.rangeClosed(1, LAST).boxed().toList());
                  ids.forEach(
                      (step, set) ->
                          assertThat(set)
                              .as("distinct results of step %d", step)
                              .hasSize(perCheckpoint));
                });
        await()
            .atMost(Duration.ofSeconds(60))
            .until(() -> h.get("/health/ready").statusCode() == 200);
        polling.set(false);
        poller.join(5000);
        assertThat(h.read(h.topics.dlq(), 1, Duration.ofSeconds(3))).as("dead letters").isEmpty();

        List<ConsumerRecord<byte[], byte[]>> all =
            h.read(h.topics.results(), (int) LAST * perCheckpoint, Duration.ofSeconds(10));
        long afterRestartFirst =
            firstAck.values().stream().filter(t -> t > backUp).min(Long::compare).orElseThrow();
        long newFirst = firstAck.get(LAST_BEFORE + 1);
        long pending = firstAck.values().stream().filter(t -> t > stopAt).count();
        System.out.printf(
            "BrokerRestartIT: broker stop %d ms, down %d ms, start %d ms; first result acknowledged"
                + " after the broker was back: %d ms; first result of a checkpoint published after"
                + " the restart: %d ms; last: %d ms; checkpoints acknowledged before the stop %d, after"
                + " it %d of %d sent before it; results on the topic %d for %d distinct (%d per"
                + " checkpoint); /health/ready seen: %s%n",
            (stopped - stopAt) / 1_000_000,
            (backUp - stopped) / 1_000_000,
            (backUp - restartAt) / 1_000_000,
            (afterRestartFirst - backUp) / 1_000_000,
            (newFirst - backUp) / 1_000_000,
            (firstAck.get(LAST) - backUp) / 1_000_000,
            doneBeforeStop,
            pending - (LAST - LAST_BEFORE),
            LAST_BEFORE,
            all.size(),
            (int) LAST * perCheckpoint,
            perCheckpoint,
            readiness);
      }
    } finally {
      polling.set(false);
      broker.close();
      deleteTree(kafkaDir);
    }
  }

  private static void checkpoint(ServiceHarness h, String sha, int size, long step)
      throws Exception {
    String manifest =
        Fixtures.manifest(
            EXPERIMENT,
            RUN,
            step,
            sha,
            size,
            1,
            "{\"h1\":\"h1\",\"h2\":\"h2\"}",
            ",\"classifier_weight\":\"classifier.weight\",\"classes\":5");
    h.sendCheckpoint(
        EXPERIMENT, manifest.getBytes(StandardCharsets.UTF_8), Headers.CONTENT_TYPE, Headers.JSON);
  }

  /** Distinct result ids per step (predictive multiplicity included: it carries the step too). */
  private static Map<Long, TreeSet<String>> idsByStep(List<ConsumerRecord<byte[], byte[]>> records)
      throws IOException {
    Map<Long, TreeSet<String>> m = new TreeMap<>();
    for (ConsumerRecord<byte[], byte[]> r : records) {
      JsonNode o = JSON.readTree(r.value());
      m.computeIfAbsent(o.get("step").asLong(), k -> new TreeSet<>()).add(o.get("id").asText());
    }
    return m;
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
