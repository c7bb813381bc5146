package io.probestream.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;

/**
 * Issue 10 item 1: two instances in one consumer group, each with its own data dir, so experiment
 * state can only move through Kafka. Six copies of the examples/multiplicity experiment spread over
 * four partitions; the first two checkpoints of each go to instance A alone, then B joins (the
 * partitions are split, B restores the experiments it receives from the state topic, re-reading
 * their reference batches and unused blobs by offset), the last three checkpoints follow, then A
 * leaves and B takes everything. Every experiment must end with the numbers an independent
 * implementation computed for the five checkpoints (expected-multiplicity.json), every checkpoint's
 * neural_collapse result must be there with the same values in every experiment, and nothing may
 * reach the DLQ.
 */
@ProbestreamIT
class RebalanceIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path DIR = Path.of("../../examples/multiplicity");
  private static final String[][] CHECKPOINTS = {
    {"seed-1", "100"}, {"seed-1", "300"}, {"seed-1", "800"}, {"seed-2", "800"}, {"seed-3", "800"}
  };
  private static final int EXPERIMENTS = 6;
  private static final Duration WAIT = Duration.ofSeconds(90);

  private static Map<String, String> settings(String delivery) {
    Map<String, String> s = new LinkedHashMap<>();
    s.put("kafka.delivery", delivery);
    s.put("topics.partitions", "4");
    s.put("probes.enabled", "neural_collapse,predictive_multiplicity");
    return s;
  }

  private static byte[] model(String[] cp) throws Exception {
    return Files.readAllBytes(DIR.resolve(cp[0] + "-step" + cp[1] + ".onnx"));
  }

  private static void sendCheckpoint(
      ServiceHarness h, String experiment, String[] cp, String sha, int size) throws Exception {
    String manifest =
        "{\"experiment\":\""
            + experiment
            + "\",\"run\":\""
            + cp[0]
            + "\",\"step\":"
            + cp[1]
            + ",\"model\":{\"blob\":{\"sha256\":\""
            + sha
            + "\",\"size\":"
            + size
            + ",\"chunks\":1}},\"input\":\"input\",\"layers\":{\"h1\":\"h1\"},\"logits\":\"logits\",\"classifier_weight\":\"classifier.weight\",\"classes\":5}";
    h.sendCheckpoint(experiment, manifest.getBytes(StandardCharsets.UTF_8));
  }

  private static long count(ServiceHarness h, String probe) {
    long n = 0;
    for (ConsumerRecord<byte[], byte[]> r : readToEnd(h.kafka, h.topics.results())) {
      if (new String(r.value(), StandardCharsets.UTF_8).contains("\"probe\":\"" + probe + "\"")) {
        n++;
      }
    }
    return n;
  }

  /** Distinct result ids of a probe. */
  private static Map<String, JsonNode> results(ServiceHarness h, String probe) throws Exception {
    Map<String, JsonNode> out = new TreeMap<>();
    for (ConsumerRecord<byte[], byte[]> r : readToEnd(h.kafka, h.topics.results())) {
      JsonNode o = JSON.readTree(r.value());
      if (o.get("probe").asText().equals(probe)) {
        out.put(o.get("id").asText(), o);
      }
    }
    return out;
  }

  @Test
  void resultsAfterHandoversEqualTheReference(KafkaTestCluster kafka) throws Exception {
    handOver(kafka, "at-least-once");
  }

  /**
   * The same under exactly-once: every rebalance aborts the open transaction and the experiments
   * are read again from their committed offsets and snapshots, and a read_committed reader sees
   * every result exactly once.
   */
  @Test
  void exactlyOnceAcrossHandovers(KafkaTestCluster kafka) throws Exception {
    ServiceHarness b = handOver(kafka, "exactly-once");
    Map<String, Integer> copies = new TreeMap<>();
    for (ConsumerRecord<byte[], byte[]> r : readToEnd(kafka, b.topics.results())) {
      copies.merge(JSON.readTree(r.value()).get("id").asText(), 1, Integer::sum);
    }
    // Five neural_collapse and five predictive_multiplicity results per experiment, once each.
    assertThat(copies).hasSize(10 * EXPERIMENTS);
    assertThat(copies.values()).allMatch(n -> n == 1);
  }

  /** Runs the scenario; returns instance B, closed, for reading the topics it wrote. */
  private ServiceHarness handOver(KafkaTestCluster kafka, String delivery) throws Exception {
    byte[] ref0 = Files.readAllBytes(DIR.resolve("reference-0.safetensors"));
    byte[] ref1 = Files.readAllBytes(DIR.resolve("reference-1.safetensors"));
    Path dirA = Files.createTempDirectory("probestream-rebalance-a-");
    Path dirB = Files.createTempDirectory("probestream-rebalance-b-");
    List<String> experiments = new ArrayList<>();
    for (int e = 0; e < EXPERIMENTS; e++) {
      experiments.add("rb-" + e);
    }
    Map<String, String> shas = new LinkedHashMap<>();
    ServiceHarness a = ServiceHarness.start(kafka, dirA, settings(delivery));
    ServiceHarness b = null;
    try {
      // Everything but the last three checkpoints, with A alone.
      for (String e : experiments) {
        a.sendReference(e, ref0, ref1);
        for (String[] cp : CHECKPOINTS) {
          shas.put(cp[0] + "@" + cp[1], a.sendBlob(e, model(cp)));
        }
        for (int i = 0; i < 2; i++) {
          sendCheckpoint(
              a,
              e,
              CHECKPOINTS[i],
              shas.get(CHECKPOINTS[i][0] + "@" + CHECKPOINTS[i][1]),
              model(CHECKPOINTS[i]).length);
        }
      }
      ServiceHarness ha = a;
      await().atMost(WAIT).until(() -> count(ha, "predictive_multiplicity") >= 2L * EXPERIMENTS);
      // A's snapshots reach the state topic within a commit interval.
      Thread.sleep(1500);

      // B joins: the group splits the partitions; B restores what it receives.
      b = ServiceHarness.start(kafka, dirB, settings(delivery));
      ServiceHarness hb = b;
      await()
          .atMost(WAIT)
          .until(
              () ->
                  hb.service.readiness().hasAssignment() && ha.service.readiness().hasAssignment());
      for (String e : experiments) {
        for (int i = 2; i < 4; i++) {
          sendCheckpoint(
              b,
              e,
              CHECKPOINTS[i],
              shas.get(CHECKPOINTS[i][0] + "@" + CHECKPOINTS[i][1]),
              model(CHECKPOINTS[i]).length);
        }
      }
      await().atMost(WAIT).until(() -> distinctSteps(hb) >= 4L * EXPERIMENTS);
      Thread.sleep(1500);

      // A leaves: B takes its partitions from the state topic.
      a.close();
      a = null;
      for (String e : experiments) {
        sendCheckpoint(
            b,
            e,
            CHECKPOINTS[4],
            shas.get(CHECKPOINTS[4][0] + "@" + CHECKPOINTS[4][1]),
            model(CHECKPOINTS[4]).length);
      }
      await().atMost(WAIT).until(() -> distinctSteps(hb) >= 5L * EXPERIMENTS);

      // Every experiment's last multiplicity result is the reference's, and each came after
      // exactly the checkpoints before it (models_seen counts them).
      JsonNode want = JSON.readTree(DIR.resolve("expected-multiplicity.json").toFile());
      Map<String, JsonNode> pm = results(b, "predictive_multiplicity");
      for (String e : experiments) {
        JsonNode last = null;
        TreeSet<Long> seen = new TreeSet<>();
        for (JsonNode r : pm.values()) {
          if (r.get("experiment").asText().equals(e)) {
            seen.add(r.get("metrics").get("models_seen").asLong());
            if (r.get("metrics").get("models_seen").asLong() == 5) {
              last = r;
            }
          }
        }
        assertThat(seen).as(e).containsExactly(1L, 2L, 3L, 4L, 5L);
        assertThat(last).as(e).isNotNull();
        assertSameAsReference(e, last, want);
      }

      // neural_collapse: one result per checkpoint and layer, the same values in every experiment.
      Map<String, JsonNode> nc = results(b, "neural_collapse");
      Map<String, JsonNode> byCheckpoint = new TreeMap<>();
      Map<String, Integer> perExperiment = new TreeMap<>();
      for (JsonNode r : nc.values()) {
        perExperiment.merge(r.get("experiment").asText(), 1, Integer::sum);
        String k =
            r.get("run").asText() + "@" + r.get("step").asLong() + "/" + r.get("layer").asText();
        JsonNode first = byCheckpoint.putIfAbsent(k, r);
        if (first != null) {
          for (Iterator<String> m = first.get("metrics").fieldNames(); m.hasNext(); ) {
            String key = m.next();
            assertThat(r.get("metrics").get(key).asDouble())
                .as("%s %s %s", r.get("experiment").asText(), k, key)
                .isCloseTo(first.get("metrics").get(key).asDouble(), within(1e-9));
          }
        }
      }
      // One layer (h1) of five checkpoints in each experiment; ids are deterministic, so a
      // checkpoint evaluated twice around a handover counts once.
      for (String e : experiments) {
        assertThat(perExperiment.get(e)).as(e).isEqualTo(5);
      }
      assertThat(byCheckpoint).hasSize(5);
      assertThat(readToEnd(kafka, b.topics.dlq())).isEmpty();
      return b;
    } finally {
      if (a != null) {
        a.close();
      }
      if (b != null) {
        b.close();
      }
    }
  }

  /** Every record of a topic up to its end now (read_committed). */
  static List<ConsumerRecord<byte[], byte[]>> readToEnd(KafkaTestCluster kafka, String topic) {
    Map<String, Object> config =
        Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
            kafka.bootstrapServers(),
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
            false,
            ConsumerConfig.ISOLATION_LEVEL_CONFIG,
            "read_committed");
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> parts = new ArrayList<>();
      c.partitionsFor(topic, Duration.ofSeconds(10))
          .forEach(p -> parts.add(new TopicPartition(topic, p.partition())));
      c.assign(parts);
      c.seekToBeginning(parts);
      Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(10));
      List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (System.nanoTime() < deadline) {
        boolean reached = true;
        for (TopicPartition tp : parts) {
          reached &= c.position(tp) >= end.get(tp);
        }
        if (reached) {
          return out;
        }
        c.poll(Duration.ofMillis(100)).forEach(out::add);
      }
      throw new IllegalStateException("could not read " + topic + " to its end " + end);
    }
  }

  /** Checkpoints (experiment, run, step) with a predictive_multiplicity result. */
  private static long distinctSteps(ServiceHarness h) throws Exception {
    TreeSet<String> s = new TreeSet<>();
    for (JsonNode r : results(h, "predictive_multiplicity").values()) {
      s.add(r.get("experiment").asText() + "/" + r.get("metrics").get("models_seen").asLong());
    }
    return s.size();
  }

  private static void assertSameAsReference(String experiment, JsonNode got, JsonNode want) {
    for (Iterator<String> k = want.get("metrics").fieldNames(); k.hasNext(); ) {
      String key = k.next();
      JsonNode e = want.get("metrics").get(key);
      double g = got.get("metrics").get(key).asDouble();
      if (e.isIntegralNumber()) {
        assertThat(g).as("%s %s", experiment, key).isEqualTo(e.asDouble());
      } else {
        assertThat(g)
            .as("%s %s", experiment, key)
            .isCloseTo(e.asDouble(), within(1e-3 * Math.abs(e.asDouble())));
      }
    }
    List<String> wantMembers = new ArrayList<>();
    want.get("members")
        .forEach(m -> wantMembers.add(m.get("run").asText() + "@" + m.get("step").asLong()));
    List<String> gotMembers = new ArrayList<>();
    got.get("members")
        .forEach(m -> gotMembers.add(m.get("run").asText() + "@" + m.get("step").asLong()));
    assertThat(gotMembers).as(experiment).isEqualTo(wantMembers);
    assertThat(got.get("baseline").asInt()).as(experiment).isEqualTo(want.get("baseline").asInt());
  }
}
