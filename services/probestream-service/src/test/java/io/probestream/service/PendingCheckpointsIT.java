package io.probestream.service;

import static io.probestream.service.ServiceHarness.blobChunkEvent;
import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static io.probestream.service.ServiceHarness.referenceEvent;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/** DESIGN.md §3 "Pending checkpoints": bounded by count and by age, then dead-lettered. */
@ProbestreamIT
class PendingCheckpointsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static byte[] manifest(String experiment, long step, String sha, int size) {
    return Fixtures.manifest(experiment, "r", step, sha, size, 1, "{\"h\":\"h\"}", ",\"classes\":3")
        .getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void aCheckpointWaitingTooLongForItsReferenceSetIsDeadLettered(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of("pending.max-age-ms", "400"))) {
      // Only batch 1 of the reference set (marked final) arrives: the set stays incomplete.
      h.send(h.topics.batches(), "late", Fixtures.ncbBatch(1), referenceEvent("late", 1, true));
      h.sendCheckpoint("late", manifest("late", 1, sha, model.length));
      List<ConsumerRecord<byte[], byte[]>> dlq = h.read(h.topics.dlq(), 1, Duration.ofSeconds(20));
      assertThat(dlq).hasSize(1);
      assertThat(header(dlq.get(0), Headers.DLQ_REASON)).isEqualTo("reference_set_incomplete");
      assertThat(header(dlq.get(0), Headers.DLQ_MESSAGE))
          .isEqualTo(
              "checkpoint step 1 of run 'r' dropped: the reference set of experiment 'late' is incomplete"
                  + " (its final batch and every index before it must arrive) and it waited longer than"
                  + " probestream.pending.max-age-ms = 400");
      assertThat(header(dlq.get(0), Headers.DLQ_SOURCE_TOPIC)).isEqualTo(h.topics.checkpoints());

      // Batch 0 completes the set; a new checkpoint whose blob also arrives then runs.
      h.send(
          h.topics.batches(),
          "late",
          Fixtures.ncbBatch(0),
          cloudEvent(
              Headers.TYPE_BATCH,
              Headers.EXPERIMENT,
              "late",
              Headers.SPLIT,
              "reference",
              Headers.BATCH_INDEX,
              "0"));
      h.sendBlob("late", model);
      h.sendCheckpoint("late", manifest("late", 2, sha, model.length));
      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 1, Duration.ofSeconds(30));
      assertThat(results).hasSize(1);
      assertThat(JSON.readTree(results.get(0).value()).get("step").asLong()).isEqualTo(2);
    }
  }

  /**
   * At the count bound the checkpoints partition pauses instead of dead-lettering: checkpoints that
   * were read before their blobs (a backlog after downtime, or blobs far behind in their topic) all
   * run once the blobs arrive.
   */
  @Test
  void atTheCountBoundIntakeOfCheckpointsPausesAndNothingIsLost(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of("pending.max-checkpoints", "2"))) {
      h.sendReference("x", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      for (int step = 1; step <= 6; step++) {
        h.sendCheckpoint("x", manifest("x", step, sha, model.length));
      }
      Thread.sleep(1500); // they read, two wait, the partition pauses
      h.sendBlob("x", model);
      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 6, Duration.ofSeconds(30));
      List<Long> steps = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : results) {
        steps.add(JSON.readTree(r.value()).get("step").asLong());
      }
      assertThat(steps).containsExactly(1L, 2L, 3L, 4L, 5L, 6L);
      assertThat(h.read(h.topics.dlq(), 1, Duration.ofSeconds(1))).isEmpty();
    }
  }

  @Test
  void aBlobMissingChunksTimesOutItsCheckpointAndItsChunksAreDeleted(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    int half = model.length / 2;
    byte[][] chunks = {
      java.util.Arrays.copyOfRange(model, 0, half),
      java.util.Arrays.copyOfRange(model, half, model.length)
    };
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of("pending.max-age-ms", "400"))) {
      h.sendReference("b", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.send(
          h.topics.blobs(),
          "b",
          chunks[1],
          blobChunkEvent(sha, 1, 2, model.length)); // chunk 0 never comes
      h.sendCheckpoint("b", manifest2("b", 1, sha, model.length));
      List<ConsumerRecord<byte[], byte[]>> dlq = h.read(h.topics.dlq(), 1, Duration.ofSeconds(20));
      assertThat(header(dlq.get(0), Headers.DLQ_REASON)).isEqualTo("blob_incomplete");
      java.nio.file.Path partial = h.dataDir.resolve("blobs").resolve("partial").resolve(sha);
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> !java.nio.file.Files.exists(partial));
      // Sent again in full, the blob assembles afresh and the next checkpoint runs.
      h.send(h.topics.blobs(), "b", chunks[0], blobChunkEvent(sha, 0, 2, model.length));
      h.send(h.topics.blobs(), "b", chunks[1], blobChunkEvent(sha, 1, 2, model.length));
      h.sendCheckpoint("b", manifest2("b", 2, sha, model.length));
      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 1, Duration.ofSeconds(30));
      assertThat(JSON.readTree(results.get(0).value()).get("step").asLong()).isEqualTo(2);
    }
  }

  private static byte[] manifest2(String experiment, long step, String sha, int size) {
    return Fixtures.manifest(experiment, "r", step, sha, size, 2, "{\"h\":\"h\"}", ",\"classes\":3")
        .getBytes(StandardCharsets.UTF_8);
  }
}
