package io.probestream.service;

import static io.probestream.service.ServiceHarness.header;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.OnnxModelBuilder;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every bad input of DESIGN.md §3 and §7 that issue 4's poison-pill test does not already cover:
 * each gets its own reason and a message naming the field and the limit, and a good checkpoint sent
 * after all of them is still evaluated.
 */
@ProbestreamIT
class BadInputsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private final Map<String, String[]> expected = new TreeMap<>(); // ce_id → reason, message part
  private ServiceHarness h;

  private void bad(
      String topic,
      String key,
      byte[] value,
      String id,
      String reason,
      String message,
      String... extra)
      throws Exception {
    Map<String, String> headers = ServiceHarness.cloudEvent(typeOf(topic), extra);
    headers.put(Headers.ID, id);
    h.send(topic, key, value, headers);
    expected.put(id, new String[] {reason, message});
  }

  private void good(String topic, String key, byte[] value, String... extra) throws Exception {
    h.send(topic, key, value, ServiceHarness.cloudEvent(typeOf(topic), extra));
  }

  private String typeOf(String topic) {
    if (topic.equals(h.topics.checkpoints())) {
      return Headers.TYPE_CHECKPOINT;
    }
    return topic.equals(h.topics.blobs()) ? Headers.TYPE_BLOB : Headers.TYPE_BATCH;
  }

  private String[] batchHeaders(String experiment, int index, boolean last) {
    return new String[] {
      Headers.EXPERIMENT,
      experiment,
      Headers.SPLIT,
      "reference",
      Headers.BATCH_INDEX,
      Integer.toString(index),
      Headers.FINAL,
      Boolean.toString(last)
    };
  }

  private static byte[] manifest(String experiment, long step, byte[] model, String classes) {
    return Fixtures.manifest(
            experiment,
            "r",
            step,
            ProbeResult.sha256Hex(model),
            model.length,
            1,
            "{\"h\":\"h\"}",
            ",\"classifier_weight\":\"classifier.weight\",\"classes\":" + classes)
        .getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] uriManifest(String experiment, long step, String uri) {
    return ("{\"experiment\":\""
            + experiment
            + "\",\"run\":\"r\",\"step\":"
            + step
            + ",\"model\":{\"uri\":\""
            + uri
            + "\"},\"input\":\"input\",\"layers\":{\"h\":\"h\"},\"logits\":\"logits\","
            + "\"classifier_weight\":\"classifier.weight\",\"classes\":3}")
        .getBytes(StandardCharsets.UTF_8);
  }

  /** h = Identity(input) of width d, logits = Gemm(h, W) with C classes. */
  private static byte[] identityModel(int d, int classes) {
    double[][] w = new double[classes][d];
    for (int c = 0; c < classes; c++) {
      w[c][c % d] = 1;
    }
    return new OnnxModelBuilder()
        .input("input", d)
        .matrix("classifier.weight", w)
        .vector("classifier.bias", new double[classes])
        .identity("input", "h")
        .linear("h", "classifier.weight", "classifier.bias", "logits")
        .output("h", d)
        .output("logits", classes)
        .build();
  }

  @Test
  void eachBadInputIsDeadLetteredWithItsReasonAndTheServiceGoesOn(KafkaTestCluster kafka)
      throws Exception {
    Path root = Files.createDirectories(tmp.resolve("models"));
    Path outside = Files.createDirectories(tmp.resolve("elsewhere"));
    byte[] ncb = Fixtures.ncbModel();
    Files.write(root.resolve("ncb.onnx"), ncb);
    Files.write(outside.resolve("ncb.onnx"), ncb);
    Files.createSymbolicLink(root.resolve("link.onnx"), outside.resolve("ncb.onnx"));
    Map<String, String> set = new LinkedHashMap<>();
    set.put("limits.max-batch-bytes", "4096");
    set.put("limits.max-state-bytes", "4096");
    set.put("limits.max-feature-width", "4");
    set.put("model.file-roots", root.toString());
    h = ServiceHarness.start(kafka, set);
    try {
      String b = h.topics.batches();
      String c = h.topics.checkpoints();

      // Batch checks on arrival.
      Map<String, Object> t = new LinkedHashMap<>();
      t.put("input", new float[] {1, 2, 3, 4});
      t.put("labels", new float[] {0, 1});
      bad(
          b,
          "x1",
          Safetensors.write(t, Map.of("input", new long[] {2, 2}, "labels", new long[] {2})),
          "float-labels",
          "wrong_dtype",
          "tensor 'labels' is F32; I64 or I32 is needed",
          batchHeaders("x1", 0, true));
      t.put("labels", new long[] {0, 1});
      bad(
          b,
          "x1",
          Safetensors.write(t, Map.of("input", new long[] {2, 2}, "labels", new long[] {2, 1})),
          "2d-labels",
          "shape_mismatch",
          "tensor 'labels' has shape [2, 1]; one label per sample",
          batchHeaders("x1", 0, true));
      t.put("input", new float[] {1, Float.NaN, 3, Float.POSITIVE_INFINITY});
      t.put("labels", new long[] {0, 1});
      bad(
          b,
          "x1",
          Safetensors.write(t, Map.of("input", new long[] {2, 2}, "labels", new long[] {2})),
          "nan-input",
          "nonfinite_input",
          "tensor 'input' holds 2 non-finite value(s), the first (NaN) in sample 0",
          batchHeaders("x1", 0, true));
      bad(
          b,
          "x1",
          Fixtures.batch("input", new float[2 * 600], new long[600], 2),
          "too-big",
          "payload_too_large",
          "limit probestream.limits.max-batch-bytes = 4096",
          batchHeaders("x1", 0, true));

      // Reference-set conflicts: an identical resend is ignored, a different value is not.
      h.sendReference("conf", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      good(b, "conf", Fixtures.ncbBatch(0), batchHeaders("conf", 0, false));
      bad(
          b,
          "conf",
          Fixtures.ncbBatch(1),
          "other-value",
          "reference_conflict",
          "reference batch 0 of experiment 'conf' is already held with other values",
          batchHeaders("conf", 0, false));
      bad(
          b,
          "conf",
          Fixtures.ncbBatch(1),
          "after-final",
          "reference_conflict",
          "reference batch 2 comes after the final batch 1",
          batchHeaders("conf", 2, false));

      // Labels outside [0, classes): the checkpoint goes, naming the sample.
      h.sendReference(
          "lab", Fixtures.batch("input", new float[] {1, 0, 0, 1}, new long[] {0, 3}, 2));
      h.sendBlob("lab", ncb);
      bad(
          c,
          "lab",
          manifest("lab", 1, ncb, "3"),
          "labels",
          "label_out_of_range",
          "label 3 at reference index 1 is outside 0..2 (3 classes)");

      // State budget: 600 classes at d = 2 need 8·2·(3·600 + 2) = 28,832 bytes > 4,096.
      byte[] wide = identityModel(2, 600);
      h.sendReference("big", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.sendBlob("big", wide);
      bad(
          c,
          "big",
          manifest("big", 1, wide, "600"),
          "budget",
          "state_budget_exceeded",
          "neural_collapse state for 600 classes needs 28832 bytes");

      // Feature width: d = 8 > 4.
      byte[] eight = identityModel(8, 3);
      h.sendReference("w8", Fixtures.batch("input", new float[16], new long[] {0, 1}, 8));
      h.sendBlob("w8", eight);
      bad(
          c,
          "w8",
          manifest("w8", 1, eight, "3"),
          "width",
          "feature_too_wide",
          "layer 'h' has 8 features per sample; limit probestream.limits.max-feature-width = 4");

      // file:// URIs: only under the configured roots, after resolving '..' and symlinks.
      h.sendReference("uri", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      bad(
          c,
          "uri",
          uriManifest("uri", 1, "file://" + root.resolve("../elsewhere/ncb.onnx")),
          "dotdot",
          "uri_not_allowed",
          "is outside probestream.model.file-roots");
      bad(
          c,
          "uri",
          uriManifest("uri", 2, "file://" + root.resolve("link.onnx")),
          "symlink",
          "uri_not_allowed",
          "is outside probestream.model.file-roots");
      bad(
          c,
          "uri",
          uriManifest("uri", 3, "http://example.org/ncb.onnx"),
          "http",
          "uri_not_allowed",
          "http(s) URIs are refused while probestream.model.allowed-hosts is empty");
      bad(
          c,
          "uri",
          uriManifest("uri", 4, "file://" + root.resolve("missing.onnx")),
          "missing",
          "model_unloadable",
          "no such file");
      h.sendCheckpoint("uri", uriManifest("uri", 5, "file://" + root.resolve("ncb.onnx")));

      // After all of that, a good checkpoint on a good reference set is evaluated.
      h.sendReference("ok", Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.sendBlob("ok", ncb);
      h.sendCheckpoint("ok", manifest("ok", 9, ncb, "3"));

      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), 2, Duration.ofSeconds(60));
      List<String> produced = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : results) {
        var o = JSON.readTree(r.value());
        produced.add(o.get("experiment").asText() + "@" + o.get("step").asLong());
        assertThat(o.get("metrics").get("nc1").asDouble())
            .isEqualTo(352.0 / 3969, org.assertj.core.api.Assertions.within(1e-12));
      }
      assertThat(produced).containsExactlyInAnyOrder("uri@5", "ok@9");

      List<ConsumerRecord<byte[], byte[]>> dlq =
          h.read(h.topics.dlq(), expected.size(), Duration.ofSeconds(60));
      Map<String, String[]> got = new TreeMap<>();
      for (ConsumerRecord<byte[], byte[]> r : dlq) {
        got.put(
            header(r, Headers.ID),
            new String[] {header(r, Headers.DLQ_REASON), header(r, Headers.DLQ_MESSAGE)});
      }
      assertThat(got.keySet()).isEqualTo(expected.keySet());
      expected.forEach(
          (id, want) -> {
            assertThat(got.get(id)[0]).as(id).isEqualTo(want[0]);
            assertThat(got.get(id)[1]).as(id).contains(want[1]);
          });
      assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);
    } finally {
      h.close();
    }
  }
}
