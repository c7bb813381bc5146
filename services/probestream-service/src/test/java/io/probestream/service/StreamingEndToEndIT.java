package io.probestream.service;

import static io.probestream.service.ServiceHarness.blobChunkEvent;
import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static io.probestream.service.ServiceHarness.referenceEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.topics.Headers;
import io.probestream.inference.CheckpointEvaluator;
import io.probestream.inference.Device;
import io.probestream.inference.EvaluationSpec;
import io.probestream.inference.ReferenceBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The whole path on real parts: a KRaft broker in this JVM, the service, ONNX Runtime, and records
 * produced by a plain Kafka producer exactly as DESIGN.md §3 describes — blobs in chunks out of
 * order, the reference set out of order, the checkpoint before both.
 */
@ProbestreamIT
class StreamingEndToEndIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EXPERIMENT = "mnist-mlp";

  /** Sends the example's blob in 4 KiB chunks, shuffled; returns the model's sha256. */
  private static String sendBlob(ServiceHarness h, byte[] model, long seed) throws Exception {
    String sha = ProbeResult.sha256Hex(model);
    int chunk = 4096;
    int count = (model.length + chunk - 1) / chunk;
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      order.add(i);
    }
    Collections.shuffle(order, new Random(seed));
    for (int i : order) {
      byte[] part = Arrays.copyOfRange(model, i * chunk, Math.min(model.length, (i + 1) * chunk));
      h.send(h.topics.blobs(), EXPERIMENT, part, blobChunkEvent(sha, i, count, model.length));
    }
    return sha;
  }

  private static void sendCheckpoint(
      ServiceHarness h, String run, long step, String sha, int size, int chunks) throws Exception {
    String manifest =
        Fixtures.manifest(
            EXPERIMENT,
            run,
            step,
            sha,
            size,
            chunks,
            "{\"h1\":\"h1\",\"h2\":\"h2\"}",
            ",\"classifier_weight\":\"classifier.weight\",\"classes\":5,\"metrics\":{\"accuracy\":0.978}");
    h.sendCheckpoint(
        EXPERIMENT, manifest.getBytes(StandardCharsets.UTF_8), Headers.CONTENT_TYPE, Headers.JSON);
  }

  private static void sendReference(ServiceHarness h, byte[] b0, byte[] b1) throws Exception {
    // The final batch first: the set is complete only once index 0 arrives too.
    h.send(h.topics.batches(), EXPERIMENT, b1, referenceEvent(EXPERIMENT, 1, true));
    h.send(
        h.topics.batches(),
        EXPERIMENT,
        b0,
        cloudEvent(
            Headers.TYPE_BATCH,
            Headers.EXPERIMENT,
            EXPERIMENT,
            Headers.SPLIT,
            "reference",
            Headers.BATCH_INDEX,
            "0"));
  }

  @Test
  void resultsEqualTheOfflineEvaluationAndTheNumpyReference(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.example("model.onnx");
    byte[] b0 = Fixtures.example("reference-0.safetensors");
    byte[] b1 = Fixtures.example("reference-1.safetensors");
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of())) {
      String sha = ProbeResult.sha256Hex(model);
      int chunks = (model.length + 4095) / 4096;
      sendCheckpoint(h, "seed-3", 1200, sha, model.length, chunks); // waits for blob and reference
      sendReference(h, b0, b1);
      sendBlob(h, model, 42);

      List<ConsumerRecord<byte[], byte[]>> out =
          h.read(h.topics.results(), 2, Duration.ofSeconds(60));
      assertThat(out).hasSize(2);

      ByteArrayOutputStream ref = new ByteArrayOutputStream();
      ref.write(b0);
      ref.write(b1);
      String referenceSha = ProbeResult.sha256Hex(ref.toByteArray());
      Map<String, ProbeOutput> offline = offline(model, b0, b1);
      JsonNode expected =
          JSON.readTree(Fixtures.EXAMPLE.resolve("expected.json").toFile()).get("layers");

      List<String> layers = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : out) {
        JsonNode o = JSON.readTree(r.value());
        String layer = o.get("layer").asText();
        layers.add(layer);
        assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo(EXPERIMENT);
        assertThat(header(r, Headers.TYPE)).isEqualTo(Headers.TYPE_RESULT);
        assertThat(header(r, Headers.SPECVERSION)).isEqualTo("1.0");
        assertThat(header(r, Headers.SOURCE)).isEqualTo("probestream");
        assertThat(header(r, Headers.CONTENT_TYPE)).isEqualTo("application/json");
        assertThat(header(r, Headers.ID)).isEqualTo(o.get("id").asText());
        assertThat(o.get("experiment").asText()).isEqualTo(EXPERIMENT);
        assertThat(o.get("run").asText()).isEqualTo("seed-3");
        assertThat(o.get("step").asLong()).isEqualTo(1200);
        assertThat(o.get("model_sha256").asText()).isEqualTo(sha);
        assertThat(o.get("reference_sha256").asText()).isEqualTo(referenceSha);
        assertThat(o.get("split").asText()).isEqualTo("reference");
        assertThat(o.get("id").asText())
            .isEqualTo(
                ProbeResult.id(
                    EXPERIMENT,
                    "seed-3",
                    1200,
                    sha,
                    "neural_collapse",
                    layer,
                    "reference",
                    referenceSha,
                    Map.of("reduction", "none")));
        // Same code path as the offline CLI: identical numbers, not merely close ones.
        JsonNode metrics = o.get("metrics");
        Map<String, Double> want = offline.get(layer).metrics();
        assertThat(names(metrics)).containsExactlyElementsOf(want.keySet());
        want.forEach(
            (k, v) -> assertThat(metrics.get(k).asDouble()).as(layer + "." + k).isEqualTo(v));
        // And the independent numpy float64 reference (loadtests/reference/nc_reference.py).
        for (Iterator<String> it = expected.get(layer).fieldNames(); it.hasNext(); ) {
          String k = it.next();
          double v = expected.get(layer).get(k).asDouble();
          assertThat(metrics.get(k).asDouble())
              .as(layer + "." + k)
              .isCloseTo(v, within(1e-6 * Math.max(1e-3, Math.abs(v))));
        }
      }
      assertThat(layers).containsExactly("h1", "h2");

      // The checkpoint's offset is committed once its results are acknowledged.
      await()
          .atMost(Duration.ofSeconds(20))
          .untilAsserted(
              () ->
                  assertThat(committed(kafka, h.config.kafka().groupId(), h.topics.checkpoints()))
                      .isEqualTo(1));

      var api = h.get("/api/v1/experiments/" + EXPERIMENT + "/results");
      assertThat(api.statusCode()).isEqualTo(200);
      assertThat(JSON.readTree(api.body()).get("total").asInt()).isEqualTo(2);
      var experiments = JSON.readTree(h.get("/api/v1/experiments").body());
      assertThat(experiments)
          .isEqualTo(
              JSON.readTree(
                  """
                  [{"experiment": "mnist-mlp",
                    "runs": [{"run": "seed-3", "latest_step": 1200, "results": 2}],
                    "latest_step": 1200, "results": 2, "reference_set": "complete"}]
                  """));
    }
  }

  @Test
  void aRestartKeepsBlobsAndReferenceSetsAndDoesNotRecompute(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.example("model.onnx");
    byte[] b0 = Fixtures.example("reference-0.safetensors");
    byte[] b1 = Fixtures.example("reference-1.safetensors");
    Path dataDir = Files.createTempDirectory("probestream-restart-");
    String sha;
    int chunks = (model.length + 4095) / 4096;
    try (ServiceHarness h = ServiceHarness.start(kafka, dataDir, Map.of())) {
      sendReference(h, b0, b1);
      sha = sendBlob(h, model, 7);
      sendCheckpoint(h, "seed-1", 100, sha, model.length, chunks);
      assertThat(h.read(h.topics.results(), 2, Duration.ofSeconds(60))).hasSize(2);
      await()
          .atMost(Duration.ofSeconds(20))
          .untilAsserted(
              () ->
                  assertThat(committed(kafka, h.config.kafka().groupId(), h.topics.batches()))
                      .isEqualTo(2));
    }
    // Same group, same data dir: only a new manifest is sent; blob and reference set come from
    // disk.
    try (ServiceHarness h = ServiceHarness.start(kafka, dataDir, Map.of())) {
      sendCheckpoint(h, "seed-1", 200, sha, model.length, chunks);
      List<ConsumerRecord<byte[], byte[]>> out =
          h.read(h.topics.results(), 4, Duration.ofSeconds(60));
      List<Long> steps = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : out) {
        steps.add(JSON.readTree(r.value()).get("step").asLong());
      }
      assertThat(steps).containsExactly(100L, 100L, 200L, 200L); // step 100 was not recomputed
    }
  }

  @Test
  void metricsPassPromtoolAndCarryTheProbeValues(KafkaTestCluster kafka) throws Exception {
    byte[] model = Fixtures.ncbModel();
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of())) {
      String sha = h.sendBlob("ncb", model);
      h.sendReference("ncb", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.sendCheckpoint(
          "ncb",
          Fixtures.manifest(
                  "ncb",
                  "r",
                  5,
                  sha,
                  model.length,
                  1,
                  "{\"h\":\"h\"}",
                  ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
              .getBytes(StandardCharsets.UTF_8));
      assertThat(h.read(h.topics.results(), 1, Duration.ofSeconds(60))).hasSize(1);

      // The gauges are set when the producer's acknowledgement reaches the service, which can be
      // a moment after the result is readable.
      String labels = "{experiment=\"ncb\",layer=\"h\",run=\"r\",split=\"reference\"}";
      await()
          .atMost(Duration.ofSeconds(10))
          .until(
              () -> h.get("/metrics").body().contains("probestream_neural_collapse_nc1" + labels));
      String metrics = h.get("/metrics").body();
      Path file = Files.createTempFile("metrics", ".txt");
      Files.writeString(file, metrics);
      Process p =
          new ProcessBuilder("promtool", "check", "metrics")
              .redirectInput(file.toFile())
              .redirectErrorStream(true)
              .start();
      String promtool = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
      assertThat(p.exitValue()).as(promtool).isEqualTo(0);

      // NC-B's exact fractions (PROBES.md §1.6), read back from the exposition text.
      assertThat(sample(metrics, "probestream_neural_collapse_nc1" + labels))
          .isCloseTo(352.0 / 3969, within(1e-12));
      assertThat(sample(metrics, "probestream_neural_collapse_nc4_ncc_mismatch" + labels))
          .isCloseTo(1.0 / 7, within(1e-12));
      assertThat(sample(metrics, "probestream_probe_last_step{experiment=\"ncb\",run=\"r\"}"))
          .isEqualTo(5);
      assertThat(sample(metrics, "probestream_results_published_total{probe=\"neural_collapse\"}"))
          .isEqualTo(1);
      assertThat(
              sample(
                  metrics,
                  "probestream_records_consumed_total{topic=\"" + h.topics.batches() + "\"}"))
          .isEqualTo(2);
      assertThat(sample(metrics, "probestream_device_info{device=\"cpu\"}")).isEqualTo(1);
      assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);
      assertThat(JSON.readTree(h.get("/health/ready").body()).get("device").asText())
          .isEqualTo("cpu");
      assertThat(h.get("/health/live").body()).isEqualTo("{\"status\":\"UP\"}");
    }
  }

  /** The value of one sample line of a Prometheus exposition. */
  static double sample(String exposition, String series) {
    for (String line : exposition.split("\n")) {
      if (line.startsWith(series + " ")) {
        return Double.parseDouble(line.substring(series.length() + 1).trim());
      }
    }
    throw new AssertionError("no sample " + series + " in:\n" + exposition);
  }

  private static Map<String, ProbeOutput> offline(byte[] model, byte[]... batches) {
    List<ReferenceBatch> data = new ArrayList<>();
    for (byte[] b : batches) {
      Safetensors st = Safetensors.parse(b);
      data.add(
          new ReferenceBatch(st.floats("input"), st.tensor("input").shape(), st.ints("labels")));
    }
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("h1", "h1");
    layers.put("h2", "h2");
    return new CheckpointEvaluator(new CheckpointEvaluator.Config(256, 1 << 26, Device.CPU, 1))
        .evaluate(
            model,
            new EvaluationSpec("input", layers, "logits", "classifier.weight", 5, null),
            data,
            CheckpointEvaluator.Progress.NONE)
        .layers();
  }

  private static long committed(KafkaTestCluster kafka, String group, String topic)
      throws Exception {
    try (Admin admin =
        Admin.create(
            Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
      Map<TopicPartition, OffsetAndMetadata> offsets =
          admin
              .listConsumerGroupOffsets(group)
              .partitionsToOffsetAndMetadata()
              .get(10, TimeUnit.SECONDS);
      OffsetAndMetadata o = offsets.get(new TopicPartition(topic, 0));
      return o == null ? -1 : o.offset();
    }
  }

  private static List<String> names(JsonNode o) {
    List<String> n = new ArrayList<>();
    o.fieldNames().forEachRemaining(n::add);
    return n;
  }
}
