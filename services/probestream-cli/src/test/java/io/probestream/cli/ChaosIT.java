package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10 item 9: two {@code serve} instances in one consumer group, each with a data dir of its
 * own (so experiment state can only move through Kafka), and the broker in this JVM. Four
 * experiments (one per partition) get their reference sets, models and the first two of their five
 * checkpoints; once instance B has published a result it is killed with SIGKILL, and the other
 * three checkpoints follow. A must take over B's partitions, restore B's experiments (reference
 * set, multiplicity members) from the compacted state topic, and end with the results of a run
 * without the kill: every neural_collapse result id, and per experiment a last
 * predictive_multiplicity result equal in metrics, members and baseline to the offline CLI over all
 * five checkpoints.
 */
@ProbestreamIT
@ExtendWith(ServiceProcess.PrintTails.class)
class ChaosIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int PARTITIONS = 4;
  private static final int EXPERIMENTS = 4;
  private static final double TOLERANCE = 1e-9;
  private static final String MULTIPLICITY = "predictive_multiplicity";

  @TempDir Path dir;

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void theSurvivorTakesOverAKilledInstancesExperimentsThroughKafka(KafkaTestCluster kafka)
      throws Exception {
    run(kafka, true);
  }

  /**
   * The reference: the same two instances and workload, no kill. Also keeps the comparison with the
   * offline CLI honest while the test above waits for main.
   */
  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void withoutAKillTwoInstancesGiveTheOfflineResults(KafkaTestCluster kafka) throws Exception {
    run(kafka, false);
  }

  private void run(KafkaTestCluster kafka, boolean kill) throws Exception {
    String prefix = kafka.topicPrefix();
    Topics topics = ChaosWorkload.topics(prefix);
    String group = prefix + "service";
    ChaosWorkload workload = new ChaosWorkload("chaos-", EXPERIMENTS, PARTITIONS);
    List<ChaosWorkload.Checkpoint> stream = workload.multiplicityStream();
    Map<String, JsonNode> expectedNc = ChaosWorkload.expectedNeuralCollapse(stream);
    Map<String, JsonNode> expectedMultiplicity = new LinkedHashMap<>();
    for (String e : workload.experiments) {
      expectedMultiplicity.put(e, ChaosWorkload.offlineMultiplicity(e));
    }

    Map<String, String> settings = new LinkedHashMap<>();
    settings.put("topics.prefix", prefix);
    settings.put("topics.partitions", Integer.toString(PARTITIONS));
    settings.put("kafka.group-id", group);
    settings.put("probes.enabled", "neural_collapse," + MULTIPLICITY);
    settings.put("workers.threads", "1");
    Path logs = dir.resolve("logs");
    String bootstrap = kafka.bootstrapServers();

    try (ServiceProcess a = ServiceProcess.start("a", bootstrap, dir.resolve("a"), logs, settings);
        ServiceProcess b = ServiceProcess.start("b", bootstrap, dir.resolve("b"), logs, settings)) {
      a.awaitReady(Duration.ofSeconds(120));
      b.awaitReady(Duration.ofSeconds(120));
      awaitTwoMembersWithPartitions(bootstrap, group, a, b);
      try (TopicTail results = new TopicTail(bootstrap, topics.results(), false);
          Publisher p = new Publisher(bootstrap, topics, 16 << 20, "chaos-it")) {
        workload.publishInputs(p);
        int split = 2 * EXPERIMENTS; // the first two checkpoints of every experiment
        for (ChaosWorkload.Checkpoint c : stream.subList(0, split)) {
          workload.publish(p, c);
        }
        ServiceProcess.await(
            Duration.ofSeconds(60),
            () -> b.metric("probestream_results_published_total") >= 1,
            "a first result from b",
            a,
            b);
        ServiceProcess.await(
            Duration.ofSeconds(30),
            () -> !experimentsOn(b).isEmpty(),
            "b's results in its API",
            a,
            b);
        Set<String> ofB = experimentsOn(b);
        long killedAt = System.currentTimeMillis();
        if (kill) {
          b.kill9();
          System.out.printf(
              "chaos: killed b (pid %d) owning %s, %d results on the topic%n",
              b.pid(), ofB, results.entries().size());
        }
        for (ChaosWorkload.Checkpoint c : stream.subList(split, stream.size())) {
          workload.publish(p, c);
        }
        ServiceProcess.await(
            Duration.ofSeconds(150),
            () ->
                KillRestartIT.ids(results).containsAll(expectedNc.keySet())
                    && lastMultiplicity(results).keySet().containsAll(workload.experiments)
                    && lastMultiplicity(results).values().stream()
                        .allMatch(
                            r ->
                                r.get("members").size()
                                    == expectedMembers(r, expectedMultiplicity)),
            "every neural_collapse result and a multiplicity result over all members per experiment",
            a,
            b);
        KillRestartIT.awaitNoLag(bootstrap, group, topics.inputs());
        TimeUnit.MILLISECONDS.sleep(500);
        if (kill) {
          long takeover =
              results.entries().stream()
                  .filter(e -> ofB.contains(e.value().get("experiment").asText()))
                  .mapToLong(TopicTail.Entry::timestampMs)
                  .filter(t -> t > killedAt)
                  .min()
                  .orElseThrow();
          System.out.printf(
              "chaos: kill to the survivor's first result for b's experiments %d ms%n",
              takeover - killedAt);
        }

        List<TopicTail.Entry> all = results.entries();
        List<TopicTail.Entry> nc =
            all.stream()
                .filter(e -> e.value().get("probe").asText().equals("neural_collapse"))
                .toList();
        KillRestartIT.assertEveryResultAsUninterrupted(
            new KillRestartIT.Outcome(expectedNc, nc, 0, null, null, null, dlq(kafka, topics)));
        Map<String, JsonNode> last = lastMultiplicity(results);
        for (String e : workload.experiments) {
          JsonNode got = last.get(e);
          JsonNode want = expectedMultiplicity.get(e);
          assertThat(got.get("step").asLong()).as(e).isEqualTo(want.get("step").asLong());
          assertThat(got.get("members")).as("%s members", e).isEqualTo(want.get("members"));
          assertThat(got.get("baseline")).as("%s baseline", e).isEqualTo(want.get("baseline"));
          ChaosWorkload.assertSameMetrics(got, want, TOLERANCE, e + " " + MULTIPLICITY);
          assertThat(got.get("id").asText()).as("%s id", e).isEqualTo(want.get("id").asText());
        }
        System.out.printf(
            "chaos: %d results (%d neural_collapse for %d checkpoints), kill=%s%n",
            all.size(), nc.size(), expectedNc.size(), kill);
      }
      assertThat(a.stop()).isIn(0, 143);
      if (!kill) {
        assertThat(b.stop()).isIn(0, 143);
      }
    }
  }

  private static int expectedMembers(JsonNode got, Map<String, JsonNode> expected) {
    return expected.get(got.get("experiment").asText()).get("members").size();
  }

  /** Per experiment, its latest predictive_multiplicity result (topic order: one partition). */
  private static Map<String, JsonNode> lastMultiplicity(TopicTail results) {
    Map<String, JsonNode> last = new LinkedHashMap<>();
    for (JsonNode r : results.values()) {
      if (r.get("probe").asText().equals(MULTIPLICITY)) {
        last.put(r.get("experiment").asText(), r);
      }
    }
    return last;
  }

  private static List<String> dlq(KafkaTestCluster kafka, Topics topics) {
    List<String> out = new ArrayList<>();
    kafka
        .readAll(topics.dlq(), 1, Duration.ofSeconds(2))
        .forEach(r -> out.add(new String(r.headers().lastHeader("dlq.error.reason").value())));
    return out;
  }

  /** The experiments {@code p} has results for (its view starts empty: the topic was). */
  private static Set<String> experimentsOn(ServiceProcess p) throws Exception {
    Set<String> out = new TreeSet<>();
    JsonNode body = JSON.readTree(p.get("/api/v1/experiments").body());
    body.forEach(e -> out.add(e.get("experiment").asText()));
    return out;
  }

  /**
   * Both instances are in the group and each holds partitions (with range assignment of the three
   * input topics, two partitions of each).
   */
  private static void awaitTwoMembersWithPartitions(
      String bootstrap, String group, ServiceProcess... processes) throws Exception {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
      ServiceProcess.await(
          Duration.ofSeconds(60),
          () -> {
            ConsumerGroupDescription d =
                admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            return d.members().size() == 2
                && d.members().stream().allMatch(m -> !m.assignment().topicPartitions().isEmpty());
          },
          "two members, each with partitions",
          processes);
    }
  }
}
