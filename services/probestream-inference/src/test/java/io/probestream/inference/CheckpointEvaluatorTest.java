package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.probestream.contracts.topics.DlqReason;
import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.CollapseMoments;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.NcbModel;
import io.probestream.testkit.OnnxModelBuilder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The evaluator on real ONNX Runtime sessions over models written by the testkit. */
class CheckpointEvaluatorTest {
  private static final double PRINTED = 5e-8; // PROBES.md prints 7 significant digits

  /** NC-B's model: h = Identity(input), logits = Gemm(h, W, b) with transB = 1. */
  private static byte[] ncbModel() {
    return NcbModel.onnx();
  }

  private static ReferenceBatch batch(float[][] rows, int[] labels) {
    int d = rows[0].length;
    float[] x = new float[rows.length * d];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(rows[i], 0, x, i * d, d);
    }
    return new ReferenceBatch(x, new long[] {rows.length, d}, labels);
  }

  private static final List<ReferenceBatch> NCB_DATA =
      List.of(
          batch(new float[][] {{2, 0}, {4, 0}, {0, 2}, {0, 4}}, new int[] {0, 0, 1, 1}),
          batch(new float[][] {{0, 3}, {-1, -1}, {-3, -3}}, new int[] {1, 2, 2}));

  private static final EvaluationSpec NCB_SPEC =
      new EvaluationSpec("input", Map.of("h", "h"), "logits", "classifier.weight", 3, null);

  private static CheckpointEvaluator evaluator(int batchSize, long cacheBytes) {
    return new CheckpointEvaluator(
        new CheckpointEvaluator.Config(batchSize, cacheBytes, Device.CPU, 1));
  }

  @ParameterizedTest(name = "mini-batch {0}, feature cache {1} bytes")
  @CsvSource({"256, 1048576", "3, 1048576", "1, 1048576", "2, 0", "5, 40"})
  void ncbThroughOrtGivesThePrintedValues(int batchSize, long cacheBytes) {
    CheckpointEvaluator.Evaluation e =
        evaluator(batchSize, cacheBytes)
            .evaluate(ncbModel(), NCB_SPEC, NCB_DATA, CheckpointEvaluator.Progress.NONE);
    Map<String, Double> m = e.layers().get("h").metrics();
    // Exact fractions from PROBES.md §1.6 (the data are integers, exact in float32).
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(1e-12));
    assertThat(m.get("nc1_trace")).isCloseTo(11.0 / 76, within(1e-12));
    assertThat(m.get("cdnv")).isCloseTo((5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3, within(1e-12));
    assertThat(m.get("nc4_ncc_mismatch")).isCloseTo(1.0 / 7, within(1e-12));
    assertThat(m.get("nc2_equinorm")).isCloseTo(0.1222789, within(PRINTED));
    assertThat(m.get("nc2_equiangular")).isCloseTo(0.1605758, within(PRINTED));
    assertThat(m.get("nc2_etf_distance")).isCloseTo(0.2808407, within(PRINTED));
    assertThat(m.get("nc3_self_duality")).isCloseTo(0.0132015, within(PRINTED));
    assertThat(m.get("samples")).isEqualTo(7);
    assertThat(e.samples()).isEqualTo(7);
    assertThat(e.device()).isEqualTo("cpu");
    assertThat(e.cachedPass2()).isEqualTo(cacheBytes >= 1024);
    assertThat(e.layers().get("h").params()).isEqualTo(Map.of("reduction", "none"));
  }

  @Test
  void mlpLayersMatchAPlainJavaForwardPass() {
    Mlp mlp = Mlp.random(11, 6, 16, 8, 4);
    Random rnd = new Random(3);
    List<ReferenceBatch> data = new ArrayList<>();
    List<float[]> inputs = new ArrayList<>();
    List<Integer> labels = new ArrayList<>();
    for (int b = 0; b < 3; b++) {
      int rows = 40 + 17 * b;
      float[][] x = new float[rows][6];
      int[] y = new int[rows];
      for (int i = 0; i < rows; i++) {
        y[i] = rnd.nextInt(4);
        for (int j = 0; j < 6; j++) {
          x[i][j] = (float) (rnd.nextGaussian() + (j == y[i] ? 2 : 0));
        }
        inputs.add(x[i]);
        labels.add(y[i]);
      }
      data.add(batch(x, y));
    }
    // "z1" is not a graph output: the evaluator must expose it.
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("pre1", "z1");
    layers.put("h1", "h1");
    layers.put("h2", "h2");
    EvaluationSpec spec =
        new EvaluationSpec("input", layers, "logits", "classifier.weight", 4, null);
    CheckpointEvaluator.Evaluation e =
        evaluator(32, 1 << 20).evaluate(mlp.onnx(), spec, data, CheckpointEvaluator.Progress.NONE);

    // Reference: the same probe fed by a float64 forward pass in plain Java (rounded to float32
    // as ORT's outputs are), so this checks the evaluator's plumbing: layer mapping, batching,
    // exposure of intermediates, classifier detection.
    int n = inputs.size();
    int[] y = labels.stream().mapToInt(Integer::intValue).toArray();
    float[][] feats = new float[3][];
    int[] widths = {16, 16, 8};
    for (int l = 0; l < 3; l++) {
      feats[l] = new float[n * widths[l]];
    }
    float[] logits = new float[n * 4];
    for (int i = 0; i < n; i++) {
      double[][] act = mlp.forward(inputs.get(i));
      double[] pre = mlp.preActivations(inputs.get(i))[0];
      for (int j = 0; j < 16; j++) {
        feats[0][i * 16 + j] = (float) pre[j];
        feats[1][i * 16 + j] = (float) act[0][j];
      }
      for (int j = 0; j < 8; j++) {
        feats[2][i * 8 + j] = (float) act[1][j];
      }
      for (int k = 0; k < 4; k++) {
        logits[i * 4 + k] = (float) act[2][k];
      }
    }
    String[] names = {"pre1", "h1", "h2"};
    for (int layer = 0; layer < 3; layer++) {
      int l = layer;
      boolean feeds = l == 2;
      FeatureBatch fb =
          new FeatureBatch(n, widths[l], feats[l], y, feeds ? logits : null, feeds ? 4 : 0, 0);
      NeuralCollapseProbe.Frozen f =
          NeuralCollapseProbe.freeze(
              CollapseMoments.of(fb), feeds, feeds ? mlp.classifierWeight() : null);
      ProbeOutput want = f.finish(f.pass2(fb), Map.of("reduction", "none"));
      ProbeOutput got = e.layers().get(names[l]);
      assertThat(got.metrics().keySet()).isEqualTo(want.metrics().keySet());
      want.metrics()
          .forEach(
              (k, v) ->
                  // ORT's float32 GEMMs differ from the float64 forward by ~1e-6 relative.
                  assertThat(got.metrics().get(k))
                      .as(names[l] + "." + k)
                      .isCloseTo(v, within(1e-4 * Math.max(1, Math.abs(v)))));
    }
    assertThat(e.layers().keySet()).containsExactly("pre1", "h1", "h2");
  }

  @Test
  void rank4FeaturesAreAveragePooledOrFlattened() {
    // input [N, 2, 2, 1]; h = Identity(input); logits = Gemm(Flatten(GlobalAveragePool(h)), W).
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2, 2, 1)
            .matrix("w", new double[][] {{1, 0}, {0, 1}})
            .vector("b", 0, 0)
            .identity("input", "h")
            .node("GlobalAveragePool", new String[] {"h"}, new String[] {"g"})
            .node("Flatten", new String[] {"g"}, new String[] {"f"})
            .linear("f", "w", "b", "logits")
            .output("logits", 2)
            .build();
    // Layout per sample: c0h0, c0h1, c1h0, c1h1; the channel means are (0,0), (2,0), (0,4), (0,6).
    float[] x = {-1, 1, 0, 0, /**/ 1, 3, 0, 0, /**/ 0, 0, 3, 5, /**/ 0, 0, 5, 7};
    ReferenceBatch data = new ReferenceBatch(x, new long[] {4, 2, 2, 1}, new int[] {0, 0, 1, 1});
    EvaluationSpec gap = new EvaluationSpec("input", Map.of("h", "h"), "logits", "w", 2, null);
    ProbeOutput out =
        evaluator(8, 1 << 20)
            .evaluate(model, gap, List.of(data), CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h");
    // Pooled: class 0 = (0,0), (2,0): μ = (1,0), V = 1; class 1 = (0,4), (0,6): μ = (0,5), V = 1.
    // Σ‖m_c‖² = 2·(0.5² + 2.5²) = 13; nc1_trace = 2/13. ‖μ0 − μ1‖² = 26: cdnv = 2/52.
    assertThat(out.params()).isEqualTo(Map.of("reduction", "gap"));
    assertThat(out.metrics().get("nc1_trace")).isCloseTo(2.0 / 13, within(1e-12));
    assertThat(out.metrics().get("cdnv")).isCloseTo(2.0 / 52, within(1e-12));
    // h is not what feeds the classifier (f is), so nc3 and nc4 do not apply to it.
    assertThat(out.metrics()).doesNotContainKeys("nc3_self_duality", "nc4_ncc_mismatch");
  }

  @Test
  void flattenKeepsEveryValue() {
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2, 2, 1)
            .matrix("w", new double[][] {{1, 0, 0, 0}, {0, 1, 0, 0}})
            .vector("b", 0, 0)
            .identity("input", "h")
            .node("Flatten", new String[] {"h"}, new String[] {"f"})
            .linear("f", "w", "b", "logits")
            .output("logits", 2)
            .build();
    float[] x = {0, 0, 0, 0, /**/ 2, 0, 0, 0, /**/ 0, 0, 0, 4, /**/ 0, 0, 0, 6};
    ReferenceBatch data = new ReferenceBatch(x, new long[] {4, 2, 2, 1}, new int[] {0, 0, 1, 1});
    EvaluationSpec flat =
        new EvaluationSpec("input", Map.of("h", "h"), "logits", null, 2, Reduction.FLATTEN);
    ProbeOutput out =
        evaluator(8, 1 << 20)
            .evaluate(model, flat, List.of(data), CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h");
    // Flattened d = 4: class 0 μ = (1,0,0,0), class 1 μ = (0,0,0,5): same numbers as above.
    assertThat(out.params()).isEqualTo(Map.of("reduction", "flatten"));
    assertThat(out.metrics().get("nc1_trace")).isCloseTo(2.0 / 13, within(1e-12));
    assertThat(out.metrics().get("cdnv")).isCloseTo(2.0 / 52, within(1e-12));
  }

  @Test
  void nonFiniteInputIsCountedNotAveraged() {
    List<ReferenceBatch> data =
        List.of(
            batch(new float[][] {{2, 0}, {4, 0}, {Float.NaN, 0}, {0, 2}}, new int[] {0, 0, 1, 1}),
            batch(new float[][] {{0, 4}, {0, 3}, {-1, -1}, {-3, -3}}, new int[] {1, 1, 2, 2}));
    Map<String, Double> m =
        evaluator(3, 1 << 20)
            .evaluate(ncbModel(), NCB_SPEC, data, CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h")
            .metrics();
    assertThat(m.get("nonfinite")).isEqualTo(1);
    assertThat(m.get("samples")).isEqualTo(7);
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(1e-12)); // NC-B once NaN is dropped
  }

  @Test
  void unloadableModelIsAPoisonError() {
    assertThatThrownBy(
            () ->
                evaluator(8, 0)
                    .evaluate(
                        new byte[] {1, 2, 3},
                        NCB_SPEC,
                        NCB_DATA,
                        CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.MODEL_UNLOADABLE));
  }

  @Test
  void inputOfTheWrongWidthIsRejectedWithBothShapes() {
    List<ReferenceBatch> wide = List.of(batch(new float[][] {{1, 2, 3}}, new int[] {0}));
    assertThatThrownBy(
            () ->
                evaluator(8, 0)
                    .evaluate(ncbModel(), NCB_SPEC, wide, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.INPUT_MISMATCH))
        .hasMessage("input 'input' is [N, 2] in the model but the data is [1, 3]");
  }

  @Test
  void unknownLayerTensorListsTheCandidates() {
    EvaluationSpec spec =
        new EvaluationSpec("input", Map.of("fc3", "fc3"), "logits", "classifier.weight", 3, null);
    assertThatThrownBy(
            () ->
                evaluator(8, 0)
                    .evaluate(ncbModel(), spec, NCB_DATA, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.UNKNOWN_TENSOR))
        .hasMessage("unknown tensor 'fc3'; the model's node outputs are [h, logits]");
  }

  @Test
  void labelOutsideTheClassesIsRejectedWithItsIndex() {
    List<ReferenceBatch> data =
        List.of(
            batch(new float[][] {{1, 0}, {0, 1}}, new int[] {0, 1}),
            batch(new float[][] {{1, 1}}, new int[] {3}));
    assertThatThrownBy(
            () ->
                evaluator(8, 0)
                    .evaluate(ncbModel(), NCB_SPEC, data, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.LABEL_OUT_OF_RANGE))
        .hasMessage("label 3 at reference index 2 is outside 0..2 (3 classes)");
  }

  @Test
  void declaredClassesMustMatchTheLogits() {
    EvaluationSpec spec =
        new EvaluationSpec("input", Map.of("h", "h"), "logits", "classifier.weight", 10, null);
    assertThatThrownBy(
            () ->
                evaluator(8, 0)
                    .evaluate(ncbModel(), spec, NCB_DATA, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.SHAPE_MISMATCH))
        .hasMessage("logits tensor 'logits' has 3 classes but the checkpoint declares 10");
  }

  @Test
  void nonFiniteFeaturesAreCountedAndLeftOut() {
    // h = Reciprocal(input): the finite input (0, 1) gives the feature row (inf, 1), which is
    // counted in nonfinite and left out; the input itself is valid.
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2)
            .matrix("w", new double[][] {{1, 0}, {0, 1}})
            .vector("b", 0, 0)
            .node("Reciprocal", new String[] {"input"}, new String[] {"h"})
            .linear("input", "w", "b", "logits")
            .output("h", 2)
            .output("logits", 2)
            .build();
    List<ReferenceBatch> data =
        List.of(
            batch(
                new float[][] {{1, 2}, {2, 4}, {0, 1}, {-1, -2}, {-2, -4}},
                new int[] {0, 0, 0, 1, 1}));
    Map<String, Double> m =
        evaluator(8, 1 << 20)
            .evaluate(
                model,
                new EvaluationSpec("input", Map.of("h", "h"), "logits", null, 2, null),
                data,
                CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h")
            .metrics();
    assertThat(m.get("nonfinite")).isEqualTo(1);
    assertThat(m.get("samples")).isEqualTo(4);
    // Left: class 0 = (1, 0.5), (0.5, 0.25); class 1 = (−1, −0.5), (−0.5, −0.25). Means
    // ±(0.75, 0.375); every sample is (0.25, 0.125) from its mean, so V_c = 0.078125; μ_G = 0 and
    // ‖m_c‖² = 0.703125: nc1_trace = 2·0.078125 / (2·0.703125) = 1/9.
    assertThat(m.get("nc1_trace")).isCloseTo(1.0 / 9, within(1e-12));
  }

  @Test
  void stateBudgetIsCheckedBeforeAnyStateExists() {
    CheckpointEvaluator tight =
        new CheckpointEvaluator(new CheckpointEvaluator.Config(8, 0, Device.CPU, 1, 65_536, 100));
    // NC-B: d = 2, C = 3 → 8·2·(3·3 + 2) = 176 bytes > 100.
    assertThatThrownBy(
            () -> tight.evaluate(ncbModel(), NCB_SPEC, NCB_DATA, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.STATE_BUDGET_EXCEEDED))
        .hasMessage(
            "neural_collapse state for 3 classes needs 176 bytes (8·d·(3·C + 2) per layer: h (d = 2):"
                + " 176); limit probestream.limits.max-state-bytes = 100");
    CheckpointEvaluator narrow =
        new CheckpointEvaluator(new CheckpointEvaluator.Config(8, 0, Device.CPU, 1, 1, 1L << 30));
    assertThatThrownBy(
            () ->
                narrow.evaluate(ncbModel(), NCB_SPEC, NCB_DATA, CheckpointEvaluator.Progress.NONE))
        .isInstanceOfSatisfying(
            InferenceException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.FEATURE_TOO_WIDE))
        .hasMessage(
            "layer 'h' has 2 features per sample; limit probestream.limits.max-feature-width = 1");
  }

  /**
   * A residual block with batch-norm at a given opset: bn = BatchNormalization(input) (scale 2,
   * bias 1, mean 0.5, var 4 − eps, so bn = (x − 0.5)·2/2 + 1 = x + 0.5), h = Relu(bn) + input,
   * logits = Gemm(h, W, b).
   */
  private static byte[] residualModel(int opset) {
    return new OnnxModelBuilder()
        .opset(opset)
        .input("input", 2)
        .vector("bn.scale", 2, 2)
        .vector("bn.bias", 1, 1)
        .vector("bn.mean", 0.5, 0.5)
        .vector("bn.var", 4 - 1e-5, 4 - 1e-5)
        .matrix("classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}})
        .vector("classifier.bias", 0, -2.5, 0)
        .node(
            "BatchNormalization",
            new String[] {"input", "bn.scale", "bn.bias", "bn.mean", "bn.var"},
            new String[] {"bn"})
        .relu("bn", "r")
        .node("Add", new String[] {"r", "input"}, new String[] {"h"})
        .linear("h", "classifier.weight", "classifier.bias", "logits")
        .output("logits", 3)
        .build();
  }

  @ParameterizedTest(name = "opset {0}")
  @org.junit.jupiter.params.provider.ValueSource(ints = {13, 14, 15, 16, 17, 18, 19, 20, 21})
  void residualBatchNormModelsRunAtEveryOpsetFrom13To21(int opset) {
    // NC-B's inputs x, all ≥ −3: h = relu(x + 0.5) + x. Class 0: (2,0)→(4.5,0.5), (4,0)→(8.5,0.5);
    // class 1: (0,2)→(0.5,4.5), (0,4)→(0.5,8.5), (0,3)→(0.5,6.5); class 2: (−1,−1)→(−1,−1),
    // (−3,−3)→(−3,−3). V_c = 4 (devs ±2), 8/3 (devs −2, 2, 0), 2 (devs ±(1,1)).
    float[][] h = {
      {4.5f, 0.5f}, {8.5f, 0.5f}, {0.5f, 4.5f}, {0.5f, 8.5f}, {0.5f, 6.5f}, {-1, -1}, {-3, -3}
    };
    int[] y = {0, 0, 1, 1, 1, 2, 2};
    // Σ V_c = 4 + 8/3 + 2; μ = (6.5,0.5), (0.5,6.5), (−2,−2); μ_G = (5/3, 5/3);
    // Σ‖m_c‖² = 2·((29/6)² + (7/6)²) + 2·(11/3)² = 2·(841+49)/36 + 2·121/9.
    double within = 4 + 8.0 / 3 + 2;
    double between = 2 * (841.0 + 49) / 36 + 2 * 121.0 / 9;
    Map<String, Double> m =
        evaluator(3, 1 << 20)
            .evaluate(
                residualModel(opset),
                new EvaluationSpec(
                    "input", Map.of("h", "h"), "logits", "classifier.weight", 3, null),
                NCB_DATA,
                CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h")
            .metrics();
    assertThat(m.get("nc1_trace")).isCloseTo(within / between, within(1e-12));
    assertThat(m.get("samples")).isEqualTo(7);
    assertThat(m).containsKeys("nc3_self_duality", "nc4_ncc_mismatch"); // h feeds the Gemm
  }

  @ParameterizedTest(name = "fixed batch {0}")
  @org.junit.jupiter.params.provider.ValueSource(ints = {1, 3, 5, 16})
  void modelsWithAFixedBatchDimensionRunInChunksOfThatSize(int b) {
    // NC-B's model exported with batch size b (no dynamic axes): the 4 + 3 samples run in chunks of
    // b, the last zero-padded and cut; the values are NC-B's.
    byte[] model = NcbModel.onnx(b);
    Map<String, Double> m =
        evaluator(256, 1 << 20)
            .evaluate(model, NCB_SPEC, NCB_DATA, CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h")
            .metrics();
    assertThat(m.get("samples")).isEqualTo(7);
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(1e-12));
    assertThat(m.get("nc4_ncc_mismatch")).isCloseTo(1.0 / 7, within(1e-12));
  }
}
