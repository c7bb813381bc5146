package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code demo} and {@code publish} end to end on a real broker. */
@ProbestreamIT
class CommandsIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path EXAMPLE = Path.of("../../examples/mlp");

  @TempDir Path dir;

  @Test
  void demoPublishesTheExampleAndPrintsItsResults() throws Exception {
    CliTest.Run r =
        CliTest.run("demo", "--once", "--data-dir", dir.toString(), "--set", "workers.threads=1");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    // One line per probe and layer, with the numbers of examples/mlp/expected.json and
    // expected-complexity.json at 4 significant digits; results arrive probe by probe.
    List<String> lines = r.out().lines().toList();
    assertThat(lines).hasSize(5);
    assertThat(lines.get(0))
        .startsWith(
            "neural_collapse demo-mlp/seed-7 step 30 layer h1   samples 1000 nc1 0.2067 nc1_trace"
                + " 0.5145 etf 0.4417 cdnv 0.2308  (");
    assertThat(lines.get(1))
        .startsWith(
            "neural_collapse demo-mlp/seed-7 step 30 layer h2   samples 1000 nc1 0.1681 nc1_trace"
                + " 0.2299 etf 0.4359 cdnv 0.1036 nc3 0.2405 nc4 0.01200  (");
    assertThat(lines.get(2))
        .startsWith(
            "feature_complexity demo-mlp/seed-7 step 30 layer h1   samples 1000 ifm_units 63"
                + " ifm_ratio 0.9844 ifm_data_units 63 ifm_data_ratio 0.9844 effective_rank 36.68"
                + " vinfo_r2 0.8729 width 64  (");
    assertThat(lines.get(3))
        .startsWith(
            "feature_complexity demo-mlp/seed-7 step 30 layer h2   samples 1000 ifm_units 30"
                + " ifm_ratio 0.9375 ifm_data_units 31 ifm_data_ratio 0.9688 effective_rank 11.30"
                + " vinfo_r2 0.9999 vinfo_complexity 0.06361 vinfo_directions 8 width 32  (");
    // One checkpoint: a Rashomon set of one, every multiplicity metric at its zero point.
    assertThat(lines.get(4))
        .startsWith(
            "predictive_multiplicity demo-mlp step 30 samples 1000 ambiguity 0 discrepancy 0"
                + " vpr_mean 0 rashomon_capacity_mean 1 disagreement_mean 0 rashomon_set_size 1"
                + " models_seen 1 models_nonfinite 0 baseline_loss ");
    assertThat(r.err()).contains("probestream: dashboard  http://localhost:");
  }

  @Test
  void publishFollowsTheTopicContract(KafkaTestCluster kafka) throws Exception {
    String prefix = kafka.topicPrefix();
    kafka.createTopics(prefix + "checkpoints", prefix + "blobs", prefix + "batches");
    String b = kafka.bootstrapServers();
    Path model = EXAMPLE.resolve("model.onnx");
    CliTest.Run ref =
        CliTest.run(
            "publish",
            "reference",
            "--bootstrap-servers",
            b,
            "--topic-prefix",
            prefix,
            "--experiment",
            "e1",
            EXAMPLE.resolve("reference-0.safetensors").toString(),
            EXAMPLE.resolve("reference-1.safetensors").toString());
    assertThat(ref.code()).as(ref.err()).isEqualTo(0);
    CliTest.Run ckpt =
        CliTest.run(
            "publish",
            "checkpoint",
            "--bootstrap-servers",
            b,
            "--topic-prefix",
            prefix,
            "--experiment",
            "e1",
            "--run",
            "seed-1",
            "--step",
            "7",
            "--model",
            model.toString(),
            "--layer",
            "fc2=h2",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "--chunk-bytes",
            "4096",
            "--metric",
            "loss=0.25");
    assertThat(ckpt.code()).as(ckpt.err()).isEqualTo(0);

    byte[] bytes = Files.readAllBytes(model);
    String sha = ProbeResult.sha256Hex(bytes);
    int chunks = (bytes.length + 4095) / 4096;
    List<ConsumerRecord<byte[], byte[]>> blobs =
        kafka.readAll(prefix + "blobs", chunks, Duration.ofSeconds(20));
    assertThat(blobs).hasSize(chunks);
    java.io.ByteArrayOutputStream joined = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < chunks; i++) {
      ConsumerRecord<byte[], byte[]> c = blobs.get(i);
      assertThat(key(c)).isEqualTo("e1");
      assertThat(header(c, Headers.TYPE)).isEqualTo(Headers.TYPE_BLOB);
      assertThat(header(c, Headers.SPECVERSION)).isEqualTo("1.0");
      assertThat(header(c, Headers.BLOB_SHA256)).isEqualTo(sha);
      assertThat(header(c, Headers.BLOB_INDEX)).isEqualTo(Integer.toString(i));
      assertThat(header(c, Headers.BLOB_COUNT)).isEqualTo(Integer.toString(chunks));
      assertThat(header(c, Headers.BLOB_SIZE)).isEqualTo(Integer.toString(bytes.length));
      joined.write(c.value());
    }
    assertThat(joined.toByteArray()).isEqualTo(bytes);

    List<ConsumerRecord<byte[], byte[]>> batches =
        kafka.readAll(prefix + "batches", 2, Duration.ofSeconds(20));
    assertThat(batches).hasSize(2);
    List<String> indexFinal = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : batches) {
      assertThat(header(r, Headers.EXPERIMENT)).isEqualTo("e1");
      assertThat(header(r, Headers.SPLIT)).isEqualTo("reference");
      indexFinal.add(header(r, Headers.BATCH_INDEX) + ":" + header(r, Headers.FINAL));
    }
    assertThat(indexFinal).containsExactly("0:null", "1:true");
    assertThat(batches.get(1).value())
        .isEqualTo(Files.readAllBytes(EXAMPLE.resolve("reference-1.safetensors")));

    List<ConsumerRecord<byte[], byte[]>> manifests =
        kafka.readAll(prefix + "checkpoints", 1, Duration.ofSeconds(20));
    assertThat(manifests).hasSize(1);
    assertThat(header(manifests.get(0), Headers.TYPE)).isEqualTo(Headers.TYPE_CHECKPOINT);
    JsonNode m = JSON.readTree(manifests.get(0).value());
    assertThat(m)
        .isEqualTo(
            JSON.readTree(
                "{\"experiment\":\"e1\",\"run\":\"seed-1\",\"step\":7,\"metrics\":{\"loss\":0.25},"
                    + "\"model\":{\"blob\":{\"sha256\":\""
                    + sha
                    + "\",\"size\":"
                    + bytes.length
                    + ",\"chunks\":"
                    + chunks
                    + "}},\"input\":\"input\",\"layers\":{\"fc2\":\"h2\"},"
                    + "\"logits\":\"logits\",\"classifier_weight\":\"classifier.weight\",\"classes\":5}"));
  }

  private static String key(ConsumerRecord<byte[], byte[]> r) {
    return new String(r.key(), StandardCharsets.UTF_8);
  }

  private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    var h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }
}
