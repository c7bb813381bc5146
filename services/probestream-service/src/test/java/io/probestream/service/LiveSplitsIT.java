package io.probestream.service;

import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/** Issue 5 item 5: train/eval batches against the latest checkpoint of their run, pass 1 only. */
@ProbestreamIT
class LiveSplitsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void trainBatchesGrowAPassOneResultOfTheLatestCheckpoint(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of("pending.max-age-ms", "60000"))) {
      // A train batch for run r before any checkpoint of r: it waits.
      h.send(h.topics.batches(), "e", Fixtures.ncbBatch(0), live("e", "r", "train"));
      h.sendReference("e", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.sendBlob("e", model);
      h.sendCheckpoint(
          "e",
          Fixtures.manifest(
                  "e",
                  "r",
                  3,
                  sha,
                  model.length,
                  1,
                  "{\"h\":\"h\"}",
                  ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
              .getBytes(StandardCharsets.UTF_8));
      // reference result, then the waiting train batch's result (4 samples)
      List<ConsumerRecord<byte[], byte[]>> first =
          h.read(h.topics.results(), 2, Duration.ofSeconds(60));
      assertThat(first).hasSize(2);
      h.send(h.topics.batches(), "e", Fixtures.ncbBatch(1), live("e", "r", "train"));
      List<ConsumerRecord<byte[], byte[]>> all =
          h.read(h.topics.results(), 3, Duration.ofSeconds(30));
      assertThat(all).hasSize(3);

      JsonNode reference = JSON.readTree(all.get(0).value());
      JsonNode partial = JSON.readTree(all.get(1).value());
      JsonNode full = JSON.readTree(all.get(2).value());
      assertThat(reference.get("split").asText()).isEqualTo("reference");
      assertThat(partial.get("split").asText()).isEqualTo("train");
      assertThat(partial.get("step").asLong()).isEqualTo(3);
      assertThat(partial.get("samples").asLong()).isEqualTo(4);
      assertThat(full.get("samples").asLong()).isEqualTo(7);
      assertThat(full.get("reference_sha256").isNull()).isTrue();
      assertThat(full.get("params").toString())
          .isEqualTo("{\"reduction\":\"none\",\"live_batches\":2}");
      assertThat(full.get("id").asText()).isNotEqualTo(partial.get("id").asText());

      // The two train batches are NC-B's seven samples: pass-1 metrics are NC-B's (PROBES.md
      // §1.6); nc1 and nc4 need a second pass and are null with a note.
      JsonNode m = full.get("metrics");
      assertThat(m.get("nc1_trace").asDouble()).isCloseTo(11.0 / 76, within(1e-12));
      assertThat(m.get("cdnv").asDouble())
          .isCloseTo((5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3, within(1e-12));
      assertThat(m.get("nc3_self_duality").asDouble()).isCloseTo(0.0132015, within(5e-8));
      assertThat(m.get("nc1").isNull()).isTrue();
      assertThat(m.get("nc4_ncc_mismatch").isNull()).isTrue();
      assertThat(m.get("sb_rank").asInt()).isEqualTo(2);
      assertThat(full.get("notes").asText())
          .isEqualTo(
              "nc1 and nc4 need a second pass over the same samples, which a live split does not keep");
    }
  }

  @Test
  void aLiveBatchWithoutACheckpointOfItsRunIsDeadLetteredAfterTheBound(KafkaTestCluster kafka)
      throws Exception {
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of("pending.max-age-ms", "300"))) {
      h.send(h.topics.batches(), "e", Fixtures.ncbBatch(0), live("e", "nobody", "eval"));
      List<ConsumerRecord<byte[], byte[]>> dlq = h.read(h.topics.dlq(), 1, Duration.ofSeconds(20));
      assertThat(dlq).hasSize(1);
      assertThat(header(dlq.get(0), Headers.DLQ_REASON)).isEqualTo("checkpoint_missing");
      assertThat(header(dlq.get(0), Headers.DLQ_MESSAGE))
          .isEqualTo(
              "live batch of run 'nobody' (experiment 'e') dropped: no checkpoint of that run has been"
                  + " evaluated and it waited longer than probestream.pending.max-age-ms = 300");
    }
  }

  private static Map<String, String> live(String experiment, String run, String split) {
    return cloudEvent(
        Headers.TYPE_BATCH,
        Headers.EXPERIMENT,
        experiment,
        Headers.SPLIT,
        split,
        Headers.BATCH_INDEX,
        "0",
        Headers.RUN,
        run);
  }
}
