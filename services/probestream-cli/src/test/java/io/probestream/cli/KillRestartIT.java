package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10 item 2, at-least-once (the default delivery): {@code serve} in a child JVM is killed
 * with SIGKILL while it evaluates a stream of checkpoints of four experiments, and restarted on the
 * same data dir against the same broker (which lives in this JVM). Every checkpoint's result must
 * be on the results topic with the id and metrics of an uninterrupted evaluation (the offline CLI);
 * a result may appear twice, but then with the same id; nothing is dead-lettered. Prints the time
 * from the restart to readiness and to the first new result.
 */
@ProbestreamIT
@ExtendWith(ServiceProcess.PrintTails.class)
class KillRestartIT {
  static final int PARTITIONS = 4;
  static final int EXPERIMENTS = 4;
  static final int STEPS = 10; // per experiment: 40 checkpoints, 40 neural_collapse results
  static final double TOLERANCE = 1e-9;

  @TempDir Path dir;

  /** What one kill-and-restart run observed. */
  record Outcome(
      Map<String, JsonNode> expected,
      List<TopicTail.Entry> results,
      int resultsAtKill,
      Duration restartToReady,
      Duration restartToFirstResult,
      Duration killToFirstResult,
      List<String> dlq) {}

  /**
   * Starts the service, publishes the workload (reference sets, blobs, then a paced stream of
   * checkpoints on a thread of its own), kills the service with SIGKILL once its first results are
   * on the topic, restarts it on the same data dir, and waits until the group has committed every
   * input record and every expected result is there.
   */
  static Outcome killAndRestart(KafkaTestCluster kafka, Path dir, String delivery, String name)
      throws Exception {
    String prefix = kafka.topicPrefix();
    Topics topics = ChaosWorkload.topics(prefix);
    String group = prefix + "service";
    ChaosWorkload workload = new ChaosWorkload(name + "-", EXPERIMENTS, PARTITIONS);
    List<ChaosWorkload.Checkpoint> stream = workload.stream(STEPS);
    Map<String, JsonNode> expected = ChaosWorkload.expectedNeuralCollapse(stream);
    assertThat(expected).hasSize(EXPERIMENTS * STEPS);

    Map<String, String> settings = new LinkedHashMap<>();
    settings.put("topics.prefix", prefix);
    settings.put("topics.partitions", Integer.toString(PARTITIONS));
    settings.put("kafka.group-id", group);
    settings.put("kafka.delivery", delivery);
    settings.put("probes.enabled", "neural_collapse");
    settings.put("workers.threads", "1");
    Path data = dir.resolve("data");
    Path logs = dir.resolve("logs");
    boolean readCommitted = delivery.equals("exactly-once");

    try (ServiceProcess first =
            ServiceProcess.start(name + "-first", kafka.bootstrapServers(), data, logs, settings);
        TopicTail results = awaitTopicThenTail(kafka, first, topics.results(), readCommitted);
        Publisher p = new Publisher(kafka.bootstrapServers(), topics, 16 << 20, name)) {
      workload.publishInputs(p);
      CompletableFuture<Void> publishing =
          CompletableFuture.runAsync(
              () -> {
                try {
                  for (ChaosWorkload.Checkpoint c : stream) {
                    workload.publish(p, c);
                    TimeUnit.MILLISECONDS.sleep(50);
                  }
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });

      ServiceProcess.await(
          Duration.ofSeconds(60), () -> results.entries().size() >= 2, "first results", first);
      long killedAt = System.currentTimeMillis();
      first.kill9();
      int atKill = results.entries().size();
      System.out.printf(
          "%s: killed %s (pid %d) with %d of %d results on the topic%n",
          name, first.name, first.pid(), atKill, expected.size());
      // The kill interrupted the stream: checkpoints were still to come or to be evaluated.
      assertThat(atKill).isLessThan(expected.size());

      long restartedAt = System.currentTimeMillis();
      try (ServiceProcess second =
          ServiceProcess.start(name + "-second", kafka.bootstrapServers(), data, logs, settings)) {
        Duration ready = second.awaitReady(Duration.ofSeconds(120));
        publishing.get(60, TimeUnit.SECONDS);
        await()
            .atMost(Duration.ofSeconds(120))
            .pollInterval(Duration.ofMillis(50))
            .until(() -> ids(results).containsAll(expected.keySet()));
        long firstNew =
            results.entries().stream()
                .mapToLong(TopicTail.Entry::timestampMs)
                .filter(t -> t > killedAt)
                .min()
                .orElseThrow();
        awaitNoLag(kafka.bootstrapServers(), group, topics.inputs());
        // Late duplicates (results of records processed but not committed) have had their chance.
        TimeUnit.MILLISECONDS.sleep(500);
        Duration toFirst = Duration.ofMillis(firstNew - restartedAt);
        Duration killToFirst = Duration.ofMillis(firstNew - killedAt);
        System.out.printf(
            "%s: restart to ready %d ms, restart to first new result %d ms, kill to first new"
                + " result %d ms%n",
            name, ready.toMillis(), toFirst.toMillis(), killToFirst.toMillis());
        assertThat(second.stop()).as("exit status after SIGTERM").isIn(0, 143);
        List<String> dlq =
            kafka.readAll(topics.dlq(), 1, Duration.ofSeconds(2)).stream()
                .map(r -> new String(r.headers().lastHeader("dlq.error.reason").value()))
                .toList();
        return new Outcome(expected, results.entries(), atKill, ready, toFirst, killToFirst, dlq);
      }
    }
  }

  /** The service creates its topics before it is ready; tail the results topic from then on. */
  private static TopicTail awaitTopicThenTail(
      KafkaTestCluster kafka, ServiceProcess first, String topic, boolean readCommitted)
      throws Exception {
    first.awaitReady(Duration.ofSeconds(120));
    return new TopicTail(kafka.bootstrapServers(), topic, readCommitted);
  }

  static Set<String> ids(TopicTail results) {
    return ids(results.entries());
  }

  static Set<String> ids(List<TopicTail.Entry> results) {
    Set<String> out = new HashSet<>();
    results.forEach(e -> out.add(e.value().get("id").asText()));
    return out;
  }

  /** Waits until the group's committed offsets reach the end of every input partition. */
  static void awaitNoLag(String bootstrap, String group, List<String> inputs) {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
      await()
          .atMost(Duration.ofSeconds(60))
          .pollInterval(Duration.ofMillis(200))
          .until(
              () -> {
                Map<TopicPartition, OffsetSpec> ask = new HashMap<>();
                admin
                    .describeTopics(inputs)
                    .allTopicNames()
                    .get()
                    .forEach(
                        (t, d) ->
                            d.partitions()
                                .forEach(
                                    i ->
                                        ask.put(
                                            new TopicPartition(t, i.partition()),
                                            OffsetSpec.latest())));
                var ends = admin.listOffsets(ask).all().get();
                Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                return ends.entrySet().stream()
                    .allMatch(
                        e ->
                            e.getValue().offset() == 0
                                || (committed.get(e.getKey()) != null
                                    && committed.get(e.getKey()).offset()
                                        >= e.getValue().offset()));
              });
    }
  }

  /**
   * Per (experiment, run, step, probe, layer): the distinct ids seen. Each must have exactly one.
   */
  static Map<String, Set<String>> idsByKey(List<TopicTail.Entry> results) {
    Map<String, Set<String>> out = new HashMap<>();
    for (TopicTail.Entry e : results) {
      JsonNode v = e.value();
      String key =
          v.get("experiment").asText()
              + "|"
              + v.get("run").asText()
              + "|"
              + v.get("step").asLong()
              + "|"
              + v.get("probe").asText()
              + "|"
              + v.get("layer").asText();
      out.computeIfAbsent(key, k -> new HashSet<>()).add(v.get("id").asText());
    }
    return out;
  }

  /** Every result is an expected one, with the expected metrics; every expected one is there. */
  static void assertEveryResultAsUninterrupted(Outcome o) {
    assertThat(ids(o.results())).isEqualTo(o.expected().keySet());
    assertThat(idsByKey(o.results()))
        .hasSize(o.expected().size())
        .allSatisfy((key, ids) -> assertThat(ids).as(key).hasSize(1));
    for (TopicTail.Entry e : o.results()) {
      JsonNode got = e.value();
      JsonNode want = o.expected().get(got.get("id").asText());
      for (String field :
          List.of("experiment", "run", "step", "probe", "layer", "split", "model_sha256")) {
        assertThat(got.get(field).asText()).as(field).isEqualTo(want.get(field).asText());
      }
      assertThat(got.get("reference_sha256").asText())
          .isEqualTo(want.get("reference_sha256").asText());
      ChaosWorkload.assertSameMetrics(got, want, TOLERANCE, got.get("id").asText());
    }
    assertThat(o.dlq()).as("dead-lettered reasons").isEmpty();
  }

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void killDashNineMidStreamLosesNoResult(KafkaTestCluster kafka) throws Exception {
    Outcome o = killAndRestart(kafka, dir, "at-least-once", "kr");
    assertEveryResultAsUninterrupted(o);
    long duplicates = o.results().size() - o.expected().size();
    System.out.printf(
        "kr: %d results for %d checkpoints (%d duplicates, identical by id)%n",
        o.results().size(), o.expected().size(), duplicates);
  }
}
