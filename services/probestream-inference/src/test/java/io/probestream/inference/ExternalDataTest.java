package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;
import static org.assertj.core.api.Assertions.within;

import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.testkit.OnnxModelBuilder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Models whose initializers live in ONNX external data files: ORT loads them from bytes with the
 * data directory set, and they evaluate exactly as the same model with inline initializers.
 */
class ExternalDataTest {
  private static final double[][] W = {{1, 0}, {0, 1}, {-1, -1}};
  private static final double[] B = {0, -2.5, 0};

  @TempDir Path dir;

  /** PROBES.md NC-B's model: h = Identity(input), logits = Gemm(h, W, b) with transB = 1. */
  private static OnnxModelBuilder ncb(boolean external) {
    OnnxModelBuilder b = new OnnxModelBuilder().input("input", 2);
    if (external) {
      // Both in one file, so the bias sits at a non-zero offset (24 bytes, after 6 floats of W).
      b.externalMatrix("classifier.weight", W, "ncb.data")
          .externalVector("classifier.bias", "ncb.data", B);
    } else {
      b.matrix("classifier.weight", W).vector("classifier.bias", B);
    }
    return b.identity("input", "h")
        .linear("h", "classifier.weight", "classifier.bias", "logits")
        .output("h", 2)
        .output("logits", 3);
  }

  private static final ReferenceBatch BATCH_0 =
      new ReferenceBatch(
          new float[] {2, 0, 4, 0, 0, 2, 0, 4}, new long[] {4, 2}, new int[] {0, 0, 1, 1});
  private static final ReferenceBatch BATCH_1 =
      new ReferenceBatch(
          new float[] {0, 3, -1, -1, -3, -3}, new long[] {3, 2}, new int[] {1, 2, 2});

  private static final EvaluationSpec SPEC =
      new EvaluationSpec("input", Map.of("h", "h"), "logits", "classifier.weight", 3, null);

  private static CheckpointEvaluator evaluator() {
    return new CheckpointEvaluator(new CheckpointEvaluator.Config(256, 1 << 20, Device.CPU, 1));
  }

  @Test
  void theBuilderWritesTheValuesToTheSideFileAndNotIntoTheModel() throws Exception {
    Path model = ncb(true).writeTo(dir, "ncb.onnx");
    // 6 floats of W (row-major) then 3 of b, little-endian.
    ByteBuffer data = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("ncb.data")));
    float[] values = new float[data.capacity() / 4];
    data.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
    assertThat(values).containsExactly(1, 0, 0, 1, -1, -1, 0, -2.5f, 0);
    OnnxGraph graph = OnnxGraph.parse(Files.readAllBytes(model));
    assertThat(graph.initializers().get("classifier.weight").raw()).isNull();
    assertThat(graph.initializers().get("classifier.bias").floatData()).isNull();
    assertThat(OnnxGraph.externalData(Files.readAllBytes(model)))
        .extracting(OnnxGraph.ExternalData::tensor, e -> e.offset(), e -> e.length())
        .containsExactly(tuple("classifier.weight", 0L, 24L), tuple("classifier.bias", 24L, 12L));
  }

  @Test
  void ortLoadsExternalDataFromTheDirectoryAndComputesWhatTheInlineModelDoes() throws Exception {
    ncb(true).writeTo(dir, "ncb.onnx");
    byte[] bytes = Files.readAllBytes(dir.resolve("ncb.onnx"));
    float[] x = {2, 0, 0, 3, -1, -1};
    long[] shape = {3, 2};
    Map<String, ModelSession.Output> got;
    try (ModelSession s =
        ModelSession.open(bytes, dir, "input", List.of("h", "logits"), Device.CPU, 1)) {
      got = s.run(x, shape);
    }
    Map<String, ModelSession.Output> inline;
    try (ModelSession s =
        ModelSession.open(ncb(false).build(), "input", List.of("h", "logits"), Device.CPU, 1)) {
      inline = s.run(x, shape);
    }
    // By hand: logits = W·x + b, e.g. for (0, 3): (0, 3 - 2.5, -3) = (0, 0.5, -3).
    assertThat(got.get("logits").values())
        .containsExactly(2, -2.5f, -2, 0, 0.5f, -3, -1, -3.5f, 2)
        .containsExactly(inline.get("logits").values());
    assertThat(got.get("h").values()).containsExactly(inline.get("h").values());
  }

  @Test
  void withoutTheDirectoryOrtCannotFindTheData() throws Exception {
    ncb(true).writeTo(dir, "ncb.onnx");
    byte[] bytes = Files.readAllBytes(dir.resolve("ncb.onnx"));
    // Loaded from bytes, the model has no directory of its own: the data directory is what lets
    // ORT find ncb.data (the working directory has none).
    assertThatThrownBy(
            () -> ModelSession.open(bytes, "input", List.of("h", "logits"), Device.CPU, 1).close())
        .isInstanceOfSatisfying(
            InferenceException.class,
            x -> assertThat(x.reason()).isEqualTo(DlqReason.MODEL_UNLOADABLE));
  }

  @Test
  void theEvaluatorReadsAnExternalClassifierWeightAndGivesTheInlineResult() throws Exception {
    ncb(true).writeTo(dir, "ncb.onnx");
    ModelBytes model = new ModelBytes(Files.readAllBytes(dir.resolve("ncb.onnx")), dir);
    List<ReferenceBatch> data = List.of(BATCH_0, BATCH_1);

    CheckpointEvaluator.Evaluation e =
        evaluator().evaluate(model, SPEC, data, CheckpointEvaluator.Progress.NONE);
    CheckpointEvaluator.Evaluation inline =
        evaluator().evaluate(ncb(false).build(), SPEC, data, CheckpointEvaluator.Progress.NONE);

    Map<String, Double> m = e.layers().get("h").metrics();
    // Exact fractions from PROBES.md §1.6, as in CheckpointEvaluatorTest; nc3 needs W, so its
    // presence shows the external classifier weight was read.
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(1e-12));
    assertThat(m.get("nc4_ncc_mismatch")).isCloseTo(1.0 / 7, within(1e-12));
    assertThat(m.get("nc3_self_duality")).isCloseTo(0.0132015, within(5e-8));
    assertThat(m).isEqualTo(inline.layers().get("h").metrics());

    CheckpointEvaluator.PassOne one = evaluator().passOne(model, SPEC, BATCH_0);
    assertThat(one.classifierWeight()).isEqualTo(W);
  }

  @Test
  void aLocationOutsideTheDirectoryIsRefusedBeforeAnyRead() throws Exception {
    Path models = Files.createDirectories(dir.resolve("models"));
    Files.write(dir.resolve("w.data"), new byte[24]);
    byte[] escaping =
        new OnnxModelBuilder()
            .input("input", 2)
            .externalMatrix(
                "classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}}, "../w.data")
            .vector("classifier.bias", B)
            .identity("input", "h")
            .linear("h", "classifier.weight", "classifier.bias", "logits")
            .output("h", 2)
            .output("logits", 3)
            .build();
    ModelBytes model = new ModelBytes(escaping, models);
    assertThatThrownBy(() -> model.externalRaw("classifier.weight"))
        .isInstanceOfSatisfying(
            InferenceException.class,
            x -> assertThat(x.reason()).isEqualTo(DlqReason.URI_NOT_ALLOWED))
        .hasMessage(
            "tensor 'classifier.weight' has external data location '../w.data': it contains '..'");
  }

  @Test
  void aMissingSideFileIsAnUnloadableModel() throws Exception {
    OnnxModelBuilder b = ncb(true);
    Files.write(dir.resolve("ncb.onnx"), b.build()); // no ncb.data
    ModelBytes model = new ModelBytes(Files.readAllBytes(dir.resolve("ncb.onnx")), dir);
    assertThatThrownBy(() -> model.externalRaw("classifier.weight"))
        .isInstanceOfSatisfying(
            InferenceException.class,
            x -> assertThat(x.reason()).isEqualTo(DlqReason.MODEL_UNLOADABLE))
        .hasMessageContaining("external data file 'ncb.data' of tensor 'classifier.weight'");
  }
}
