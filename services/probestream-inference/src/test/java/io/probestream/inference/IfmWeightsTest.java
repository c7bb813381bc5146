package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.probes.complexity.IfmLayer;
import io.probestream.testkit.OnnxModelBuilder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link IfmWeights} on small ONNX graphs written by the testkit: every extracted W_in, b_in and
 * W_out is compared element by element with the matrices written into the graph (PROBES.md §2.1
 * layouts: W_in n0 × d_in, W_out d_out × n0). The models only need to parse, not to run.
 */
class IfmWeightsTest {
  /** n0 = 3 units, d_in = 2, d_out = 2; every value is exact in float32 and all are distinct. */
  private static final double[][] W_IN = {{1, -2}, {3, 4.5}, {-5, 6}};

  private static final double[] B_IN = {0.5, -1, 2};
  private static final double[][] W_OUT = {{7, -8, 9}, {10, 11, -12.25}};

  private static double[][] t(double[][] m) {
    double[][] r = new double[m[0].length][m.length];
    for (int i = 0; i < m.length; i++) {
      for (int j = 0; j < m[0].length; j++) {
        r[j][i] = m[i][j];
      }
    }
    return r;
  }

  private static double[][] scaled(double[][] m, double s) {
    double[][] r = new double[m.length][];
    for (int i = 0; i < m.length; i++) {
      r[i] = m[i].clone();
      for (int j = 0; j < r[i].length; j++) {
        r[i][j] *= s;
      }
    }
    return r;
  }

  private static IfmWeights.Found detect(byte[] model, String tensor) {
    return IfmWeights.detect(OnnxGraph.parse(model), tensor, name -> null);
  }

  private static IfmWeights.Found named(byte[] model, EvaluationSpec.IfmNames names) {
    return IfmWeights.named(OnnxGraph.parse(model), names, "h", name -> null);
  }

  private static String[] in(String... names) {
    return names;
  }

  /** Asserts every element (and every dimension) of the found layer; {@code tol} absolute. */
  private static void assertLayer(
      IfmWeights.Found f, double[][] wIn, double[] bIn, double[][] wOut, double tol) {
    assertThat(f.unsupported()).as("unsupported").isNull();
    IfmLayer l = f.layer();
    assertThat(l).isNotNull();
    assertThat(l.wIn().length).as("n0").isEqualTo(wIn.length);
    for (int u = 0; u < wIn.length; u++) {
      assertThat(l.wIn()[u].length).as("d_in").isEqualTo(wIn[u].length);
      for (int j = 0; j < wIn[u].length; j++) {
        assertThat(l.wIn()[u][j]).as("W_in[%d][%d]", u, j).isCloseTo(wIn[u][j], within(tol));
      }
    }
    assertThat(l.bIn().length).isEqualTo(bIn.length);
    for (int u = 0; u < bIn.length; u++) {
      assertThat(l.bIn()[u]).as("b_in[%d]", u).isCloseTo(bIn[u], within(tol));
    }
    assertThat(l.wOut().length).as("d_out").isEqualTo(wOut.length);
    for (int o = 0; o < wOut.length; o++) {
      assertThat(l.wOut()[o].length).as("W_out row length").isEqualTo(wOut[o].length);
      for (int u = 0; u < wOut[o].length; u++) {
        assertThat(l.wOut()[o][u]).as("W_out[%d][%d]", o, u).isCloseTo(wOut[o][u], within(tol));
      }
    }
  }

  private static void assertLayer(IfmWeights.Found f, double[][] wIn, double[] bIn, double[][] w) {
    assertLayer(f, wIn, bIn, w, 0);
  }

  /**
   * x → Gemm(x, w1, b1) → z → Relu → h → Gemm(h, w2, b2) → logits; {@code transB} of each Gemm
   * chooses the stored layout (1: [out, in] as PyTorch, 0: [in, out]).
   */
  private static byte[] gemmModel(int transB1, int transB2, Object... extraProducerAttributes) {
    Object[] attrs = new Object[2 + extraProducerAttributes.length];
    attrs[0] = "transB";
    attrs[1] = transB1;
    System.arraycopy(extraProducerAttributes, 0, attrs, 2, extraProducerAttributes.length);
    return new OnnxModelBuilder()
        .input("x", 2)
        .matrix("w1", transB1 == 1 ? W_IN : t(W_IN))
        .vector("b1", B_IN)
        .matrix("w2", transB2 == 1 ? W_OUT : t(W_OUT))
        .vector("b2", 0.125, -0.375)
        .node("Gemm", in("x", "w1", "b1"), in("z"), attrs)
        .relu("z", "h")
        .node("Gemm", in("h", "w2", "b2"), in("logits"), "transB", transB2)
        .output("logits", 2)
        .build();
  }

  @Test
  void gemmWithTransB1TakesRowsAsTheyAre() {
    IfmWeights.Found f = detect(gemmModel(1, 1), "h");
    assertLayer(f, W_IN, B_IN, W_OUT);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNull();
  }

  @Test
  void gemmWithTransB0IsTransposedOnBothSides() {
    IfmWeights.Found f = detect(gemmModel(0, 0), "h");
    assertLayer(f, W_IN, B_IN, W_OUT);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNull();
    // Mixed layouts.
    assertLayer(detect(gemmModel(0, 1), "h"), W_IN, B_IN, W_OUT);
    assertLayer(detect(gemmModel(1, 0), "h"), W_IN, B_IN, W_OUT);
  }

  @Test
  void gemmAlphaScalesTheWeightsAndBetaTheBias() {
    // Producer: Y = alpha·x·Bᵀ + beta·C, so W_in = alpha·W, b_in = beta·b. Consumer: alpha scales
    // W_out (its own bias is not part of the unit vector).
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", t(W_OUT))
            .vector("b2", 1, 1)
            .node("Gemm", in("x", "w1", "b1"), in("z"), "transB", 1, "alpha", 0.5, "beta", 2.0)
            .relu("z", "h")
            .node("Gemm", in("h", "w2", "b2"), in("logits"), "alpha", 0.25f, "beta", 3.0)
            .output("logits", 2)
            .build();
    assertLayer(
        detect(model, "h"),
        scaled(W_IN, 0.5),
        new double[] {2 * 0.5, 2 * -1.0, 2 * 2.0},
        scaled(W_OUT, 0.25));
    // transB = 0 on the producer with alpha ≠ 1: scaling applies after the transpose too.
    assertLayer(detect(gemmModel(0, 1, "alpha", 4.0), "h"), scaled(W_IN, 4), B_IN, W_OUT);
  }

  @ParameterizedTest(name = "bias on side {0} of the Add")
  @ValueSource(ints = {0, 1})
  void matMulPlusAddTakesTheBias(int side) {
    String[] add = side == 1 ? in("mm", "b1") : in("b1", "mm");
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", t(W_IN)) // MatMul's B is [d_in, n0]
            .vector("b1", B_IN)
            .matrix("w2", t(W_OUT)) // [n0, d_out]
            .node("MatMul", in("x", "w1"), in("mm"))
            .node("Add", add, in("z"))
            .relu("z", "h")
            .node("MatMul", in("h", "w2"), in("logits"))
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertLayer(f, W_IN, B_IN, W_OUT);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNull();
  }

  @Test
  void matMulWithoutBiasHasAZeroBias() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", t(W_IN))
            .matrix("w2", t(W_OUT))
            .node("MatMul", in("x", "w1"), in("z"))
            .relu("z", "h")
            .node("MatMul", in("h", "w2"), in("logits"))
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertLayer(f, W_IN, new double[3], W_OUT);
    assertThat(f.input()).isEqualTo("x");
  }

  private static final double[] GAMMA = {1.5, -0.5, 2};
  private static final double[] BETA = {0.25, 0, -1};
  private static final double[] MEAN = {0.5, 1, -2};
  private static final double[] VAR = {4, 0.25, 1};

  private static byte[] batchNormModel(Double epsilon) {
    Object[] attrs = epsilon == null ? new Object[0] : new Object[] {"epsilon", epsilon};
    return new OnnxModelBuilder()
        .input("x", 2)
        .matrix("w1", W_IN)
        .vector("b1", B_IN)
        .vector("gamma", GAMMA)
        .vector("beta", BETA)
        .vector("mean", MEAN)
        .vector("var", VAR)
        .matrix("w2", W_OUT)
        .vector("b2", 0, 0)
        .linear("x", "w1", "b1", "z")
        .node("BatchNormalization", in("z", "gamma", "beta", "mean", "var"), in("bn"), attrs)
        .relu("bn", "h")
        .linear("h", "w2", "b2", "logits")
        .output("logits", 2)
        .build();
  }

  @Test
  void batchNormIsFoldedIntoTheProducer() {
    // The epsilon attribute is a float32: 1e-3 is read as (double) 1e-3f. Without the attribute,
    // ONNX's default 1e-5 applies.
    double[][] epsilons = {{1e-3, (double) 1e-3f}, {Double.NaN, 1e-5}};
    for (double[] e : epsilons) {
      byte[] model = batchNormModel(Double.isNaN(e[0]) ? null : e[0]);
      double eps = e[1];
      double[][] w = new double[3][2];
      double[] b = new double[3];
      for (int u = 0; u < 3; u++) {
        double s = GAMMA[u] / Math.sqrt(VAR[u] + eps); // w′ = γ·w/√(var+eps)
        for (int j = 0; j < 2; j++) {
          w[u][j] = s * W_IN[u][j];
        }
        b[u] = s * (B_IN[u] - MEAN[u]) + BETA[u]; // b′ = γ·(b − mean)/√(var+eps) + β
      }
      // A hand check of one entry: unit 1 with eps = 1e-5: −0.5/√0.25001 · 3 = −2.99994000179...
      if (eps == 1e-5) {
        assertThat(w[1][0]).isCloseTo(-2.99994000179994, within(1e-13));
      }
      IfmWeights.Found f = detect(model, "h");
      assertLayer(f, w, b, W_OUT, 1e-12);
      assertThat(f.input()).isEqualTo("x");
      assertThat(f.dataRefusal()).isNull();
    }
  }

  /** Conv1 filters [3, 2, 2, 2] (n0 = 3 out channels, 2 in channels, 2×2 kernel). */
  private static final double[][][][] CONV1 = {
    {{{1, -2}, {3, 0.5}}, {{-1, 4}, {2, -3}}},
    {{{0.25, 5}, {-6, 7}}, {{8, -0.75}, {1.5, 9}}},
    {{{-10, 11}, {12, -13}}, {{14, 15}, {-16, 0.125}}}
  };

  private static final double[] CONV1_BIAS = {0.25, -0.5, 1};

  /** Conv2 filters [2, 3, 2, 2] (2 out channels, n0 = 3 in channels, 2×2 kernel). */
  private static final double[][][][] CONV2 = {
    {{{21, 22}, {23, 24}}, {{25, 26}, {27, 28}}, {{29, 30}, {31, 32}}},
    {{{-41, -42}, {-43, -44}}, {{-45, -46}, {-47, -48}}, {{-49, -50}, {-51, -52}}}
  };

  private static float[] flat(double[][][][] w) {
    int a = w.length;
    int b = w[0].length;
    int c = w[0][0].length;
    int d = w[0][0][0].length;
    float[] v = new float[a * b * c * d];
    int i = 0;
    for (double[][][] x : w) {
      for (double[][] y : x) {
        for (double[] z : y) {
          for (double q : z) {
            v[i++] = (float) q;
          }
        }
      }
    }
    return v;
  }

  private static long[] dims(double[][][][] w) {
    return new long[] {w.length, w[0].length, w[0][0].length, w[0][0][0].length};
  }

  /** Incoming rows of a conv layer: W[u,:,:,:] flattened (c, kh, kw) row-major. */
  private static double[][] conv1Rows() {
    double[][] rows = new double[3][8];
    for (int u = 0; u < 3; u++) {
      for (int c = 0; c < 2; c++) {
        for (int kh = 0; kh < 2; kh++) {
          for (int kw = 0; kw < 2; kw++) {
            rows[u][c * 4 + kh * 2 + kw] = CONV1[u][c][kh][kw];
          }
        }
      }
    }
    return rows;
  }

  @Test
  void convReluConvUsesFlattenedFilters() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2, 4, 4)
            .initializer("c1.weight", dims(CONV1), flat(CONV1))
            .vector("c1.bias", CONV1_BIAS)
            .initializer("c2.weight", dims(CONV2), flat(CONV2))
            .node("Conv", in("x", "c1.weight", "c1.bias"), in("z"), "group", 1)
            .relu("z", "h")
            .node("Conv", in("h", "c2.weight"), in("y"))
            .output("y", 2, 2, 2)
            .build();
    // Outgoing: W_next[:, u, :, :], row o·k + s with k = 4 kernel positions, s = kh·2 + kw.
    double[][] out = new double[2 * 4][3];
    for (int o = 0; o < 2; o++) {
      for (int u = 0; u < 3; u++) {
        for (int kh = 0; kh < 2; kh++) {
          for (int kw = 0; kw < 2; kw++) {
            out[o * 4 + kh * 2 + kw][u] = CONV2[o][u][kh][kw];
          }
        }
      }
    }
    // Spot checks written out by hand: row 0·4+1 (o=0, kh=0, kw=1) of unit 2 is 30; row 1·4+3
    // (o=1, kh=1, kw=1) of unit 0 is −44.
    assertThat(out[1][2]).isEqualTo(30);
    assertThat(out[7][0]).isEqualTo(-44);
    IfmWeights.Found f = detect(model, "h");
    assertLayer(f, conv1Rows(), CONV1_BIAS, out);
    assertThat(f.layer().wIn()[2]).containsExactly(-10, 11, 12, -13, 14, 15, -16, 0.125);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNotNull().contains("convolution");
  }

  @Test
  void convReluGlobalPoolFlattenGemmTakesTheClassifierColumns() {
    double[][] classifier = {{1, 2, 3}, {-4, 5, -6}};
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2, 4, 4)
            .initializer("c1.weight", dims(CONV1), flat(CONV1))
            .matrix("fc.weight", classifier)
            .vector("fc.bias", 0, 0)
            .node("Conv", in("x", "c1.weight"), in("z")) // no bias: b_in = 0
            .relu("z", "h")
            .node("GlobalAveragePool", in("h"), in("g"))
            .node("Flatten", in("g"), in("f"), "axis", 1)
            .linear("f", "fc.weight", "fc.bias", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertLayer(f, conv1Rows(), new double[3], classifier);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNotNull().contains("convolution");
  }

  @Test
  void theClassifierIsTheConsumerOfTheClassifierFeedingLayer() {
    double[][] fc2 = {{1, 0, -1}, {2, 0.5, 0}, {0, 0, 3}, {-1, 1, 1}};
    double[] fc2b = {0.5, 0.25, -0.125, 1};
    double[][] cls = {{1, 2, 3, 4}, {-5, -6, -7, -8}};
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("fc1.weight", W_IN)
            .vector("fc1.bias", B_IN)
            .matrix("fc2.weight", fc2)
            .vector("fc2.bias", fc2b)
            .matrix("classifier.weight", cls)
            .vector("classifier.bias", 0, 0)
            .linear("x", "fc1.weight", "fc1.bias", "z1")
            .relu("z1", "h1")
            .linear("h1", "fc2.weight", "fc2.bias", "z2")
            .relu("z2", "h2")
            .linear("h2", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found h2 = detect(model, "h2");
    assertLayer(h2, fc2, fc2b, cls);
    assertThat(h2.input()).isEqualTo("h1");
    IfmWeights.Found h1 = detect(model, "h1");
    assertLayer(h1, W_IN, B_IN, fc2);
    assertThat(h1.input()).isEqualTo("x");
  }

  @Test
  void leakyReluIsAccepted() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .node("LeakyRelu", in("z"), in("h"), "alpha", 0.1)
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    assertLayer(detect(model, "h"), W_IN, B_IN, W_OUT);
  }

  // ---- unsupported patterns ----

  @Test
  void sigmoidActivationIsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .node("Sigmoid", in("z"), in("h"))
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("h is the output of Sigmoid, not of Relu or LeakyRelu");
  }

  @Test
  void aLayerWithTwoConsumersIsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .relu("z", "h")
            .linear("h", "w2", "b2", "logits")
            .identity("h", "copy")
            .output("logits", 2)
            .output("copy", 3)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("h has 2 consumers; IFM needs exactly one");
  }

  @Test
  void aPreActivationWithTwoConsumersIsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .relu("z", "h")
            .identity("z", "zcopy")
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .output("zcopy", 3)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).contains("z").contains("more than one consumer");
  }

  @Test
  void gemmWithTransA1IsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .node("Gemm", in("x", "w1", "b1"), in("z"), "transA", 1, "transB", 1)
            .relu("z", "h")
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("the activation's input comes from Gemm");
  }

  @Test
  void aConsumerGemmWithTransA1IsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .relu("z", "h")
            .node("Gemm", in("h", "w2", "b2"), in("logits"), "transA", 1, "transB", 1)
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("h is consumed by Gemm");
  }

  @Test
  void aReluOnTheGraphInputIsUnsupported() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 3)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .relu("x", "h")
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = detect(model, "h");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("the activation's input x has no producing node");
  }

  @Test
  void aTensorThatIsNoNodeOutputIsUnsupported() {
    IfmWeights.Found f = detect(gemmModel(1, 1), "x");
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("x is not a node output, not of Relu or LeakyRelu");
  }

  // ---- named weights ----

  @Test
  void namedWeightsInPyTorchLayout() {
    IfmWeights.Found f = named(gemmModel(1, 1), new EvaluationSpec.IfmNames("w1", "b1", "w2"));
    assertLayer(f, W_IN, B_IN, W_OUT);
    assertThat(f.input()).isEqualTo("x"); // the Gemm that takes w1
    assertThat(f.dataRefusal()).isNull();
  }

  @Test
  void namedWeightsInDinByN0LayoutAreRecognisedByTheNodeThatUsesThem() {
    // w1 is [d_in = 2, n0 = 3] (MatMul layout): the MatMul that takes it as B says so.
    // w2 is [n0 = 3, d_out = 2]: the axis of length n0 is found and transposed.
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", t(W_IN))
            .vector("b1", B_IN)
            .matrix("w2", t(W_OUT))
            .node("MatMul", in("x", "w1"), in("mm"))
            .node("Add", in("mm", "b1"), in("z"))
            .relu("z", "h")
            .node("MatMul", in("h", "w2"), in("logits"))
            .output("logits", 2)
            .build();
    IfmWeights.Found f = named(model, new EvaluationSpec.IfmNames("w1", "b1", "w2"));
    assertLayer(f, W_IN, B_IN, W_OUT);
    assertThat(f.input()).isEqualTo("x");
    assertThat(f.dataRefusal()).isNull();
  }

  @Test
  void namedWeightsWithoutBiasGetAZeroBias() {
    IfmWeights.Found f = named(gemmModel(1, 1), new EvaluationSpec.IfmNames("w1", null, "w2"));
    assertLayer(f, W_IN, new double[3], W_OUT);
  }

  @Test
  void aBadNameIsUnsupportedAndNamed() {
    IfmWeights.Found f = named(gemmModel(1, 1), new EvaluationSpec.IfmNames("nope", "b1", "w2"));
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).contains("'nope'");
    IfmWeights.Found out =
        named(gemmModel(1, 1), new EvaluationSpec.IfmNames("w1", "b1", "missing.out"));
    assertThat(out.layer()).isNull();
    assertThat(out.unsupported()).contains("'missing.out'");
    IfmWeights.Found bias =
        named(gemmModel(1, 1), new EvaluationSpec.IfmNames("w1", "no.bias", "w2"));
    assertThat(bias.layer()).isNull();
    assertThat(bias.unsupported()).contains("'no.bias'");
  }

  @Test
  void namedBiasOfTheWrongLengthIsUnsupported() {
    // A bias whose length is neither dimension of w1 ([3, 2]). (A length-2 bias would instead be
    // read as the [d_in, n0] layout, see namedWeightsInDinByN0LayoutAreRecognisedByTheBiasLength.)
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .vector("b5", 1, 2, 3, 4, 5)
            .matrix("w2", W_OUT)
            .vector("b2", 0, 0)
            .linear("x", "w1", "b1", "z")
            .relu("z", "h")
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = named(model, new EvaluationSpec.IfmNames("w1", "b5", "w2"));
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("b5 has 5 values; w1 [3, 2] has n0 = 3 units");
  }

  @Test
  void aBiasOfTheInputWidthDoesNotFlipTheLayout() {
    // w1 is [n0 = 3, d_in = 2] under a Gemm with transB = 1; a bias of length 2 (= d_in) is a
    // naming mistake, refused, not read as a [d_in, n0] matrix with two units.
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("w1", W_IN)
            .vector("b1", B_IN)
            .vector("b2", 0, 0)
            .matrix("w2", W_OUT)
            .linear("x", "w1", "b1", "z")
            .relu("z", "h")
            .linear("h", "w2", "b2", "logits")
            .output("logits", 2)
            .build();
    IfmWeights.Found f = named(model, new EvaluationSpec.IfmNames("w1", "b2", "w2"));
    assertThat(f.layer()).isNull();
    assertThat(f.unsupported()).isEqualTo("b2 has 2 values; w1 [3, 2] has n0 = 3 units");
  }
}
