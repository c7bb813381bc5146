package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.probes.complexity.FeatureComplexity;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.OnnxModelBuilder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code feature_complexity} (PROBES.md §2) through real ONNX Runtime sessions. Every expected
 * value is derived independently of the probe code: by hand from a planted design, in closed form,
 * from PROBES.md's hand cases, or by a different algorithm (EJML's SVD of the N×d feature matrix
 * instead of the evaluator's eigen-decomposition of the d×d scatter).
 */
class FeatureComplexityEvaluatorTest {
  private static final Set<String> FC = Set.of(FeatureComplexity.NAME);
  private static final Set<String> BOTH = Set.of(NeuralCollapseProbe.NAME, FeatureComplexity.NAME);

  private static CheckpointEvaluator evaluator() {
    return evaluator(64, 64L << 20);
  }

  private static CheckpointEvaluator evaluator(int batchSize, long cacheBytes) {
    return new CheckpointEvaluator(
        new CheckpointEvaluator.Config(batchSize, cacheBytes, Device.CPU, 1));
  }

  private static ReferenceBatch batch(float[][] rows, int[] labels) {
    int d = rows[0].length;
    float[] x = new float[rows.length * d];
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(rows[i], 0, x, i * d, d);
    }
    return new ReferenceBatch(x, new long[] {rows.length, d}, labels);
  }

  /** The rows cut into reference batches of the given sizes, labels i mod classes. */
  private static List<ReferenceBatch> batches(float[][] rows, int classes, int... sizes) {
    List<ReferenceBatch> out = new ArrayList<>();
    int from = 0;
    for (int size : sizes) {
      float[][] part = new float[size][];
      int[] labels = new int[size];
      for (int i = 0; i < size; i++) {
        part[i] = rows[from + i];
        labels[i] = (from + i) % classes;
      }
      out.add(batch(part, labels));
      from += size;
    }
    assertThat(from).isEqualTo(rows.length);
    return out;
  }

  private static EvaluationSpec spec(
      Map<String, String> layers,
      String classifierWeight,
      Set<String> probes,
      FeatureComplexity.Settings settings) {
    return new EvaluationSpec(
        "input", layers, "logits", classifierWeight, null, null, probes, settings, Map.of());
  }

  private static Map<String, String> layers(String... names) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String n : names) {
      m.put(n, n);
    }
    return m;
  }

  private static FeatureComplexity.Settings alpha(double alpha) {
    FeatureComplexity.Settings d = FeatureComplexity.Settings.defaults();
    return new FeatureComplexity.Settings(
        d.beta(), d.tau(), d.k(), alpha, d.maxWidth(), d.ifmDataMaxUnits());
  }

  // ---------------------------------------------------------------------------------------------
  // Reference effective rank (PROBES.md §2.3) by EJML's SVD of the centred N×d matrix.
  // ---------------------------------------------------------------------------------------------

  private static Double referenceEffectiveRank(List<double[]> rows) {
    int n = rows.size();
    if (n < 2) {
      return null;
    }
    int d = rows.get(0).length;
    double[] mean = new double[d];
    for (double[] r : rows) {
      for (int j = 0; j < d; j++) {
        mean[j] += r[j];
      }
    }
    for (int j = 0; j < d; j++) {
      mean[j] /= n;
    }
    DMatrixRMaj a = new DMatrixRMaj(n, d);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < d; j++) {
        a.set(i, j, rows.get(i)[j] - mean[j]);
      }
    }
    SingularValueDecomposition_F64<DMatrixRMaj> svd =
        DecompositionFactory_DDRM.svd(n, d, false, false, true);
    assertThat(svd.decompose(a)).isTrue();
    double[] s = svd.getSingularValues();
    int count = Math.min(n, d);
    double max = 0;
    for (int j = 0; j < count; j++) {
      max = Math.max(max, s[j]);
    }
    if (max == 0) {
      return null;
    }
    double sum = 0;
    for (int j = 0; j < count; j++) {
      if (s[j] * s[j] > 1e-12 * max * max) {
        sum += s[j];
      }
    }
    double h = 0;
    for (int j = 0; j < count; j++) {
      if (s[j] * s[j] > 1e-12 * max * max) {
        double p = s[j] / sum;
        h -= p * Math.log(p);
      }
    }
    return Math.exp(h);
  }

  private static void assertRelative(Double got, double want, double tol, String what) {
    assertThat(got).as(what).isNotNull();
    assertThat(got).as(what).isCloseTo(want, within(tol * Math.max(1, Math.abs(want))));
  }

  // ---------------------------------------------------------------------------------------------
  // The planted model: 6 → h1 (12) → h2 (8) → logits (3), plus a constant side branch c (2).
  //
  // h1 units (bias 0 unless said), f_u = [w_u, b_u, v_u] with v_u = column u of fc2:
  //   u_j (j = 0..5): w = e_j, v = e_j
  //   A: w = −e_0, b = 0.5, v = e_6      (3 exact copies, positions 1, 5, 10)
  //   B: w = −e_1, b = −0.25, v = e_7    (2 exact copies, positions 3, 8)
  //   L: w = −e_2, v = e_6 + e_7         (position 11)
  // Squared distances between distinct vectors (by hand): u_i–u_j 4; u_j–A 4.25 (u_0: 6.25);
  // u_j–B 4.0625 (u_1: 6.0625); u_j–L 5 (u_2: 7); A–B 4.5625; A–L 3.25; B–L 3.0625. So the three
  // copy pairs merge first (D = 0), then dmin = 3.0625 > 0.1·dmax = 0.7 stops: 12 − 3 = 9 units.
  // fc2 ≥ 0 and b2 = 0 with h1 ≥ 0, so h2 = fc2·h1 exactly (its Relu never clips).
  // ---------------------------------------------------------------------------------------------

  private static final int[] POSITION_KIND = {0, 6, 1, 7, 2, 6, 3, 4, 7, 5, 6, 8};

  // kind 0..5: u_j; 6: A; 7: B; 8: L

  private static double[][] plantedW1() {
    double[][] w = new double[12][6];
    for (int u = 0; u < 12; u++) {
      int k = POSITION_KIND[u];
      if (k < 6) {
        w[u][k] = 1;
      } else {
        w[u][k - 6] = -1; // A: −e_0, B: −e_1, L: −e_2
      }
    }
    return w;
  }

  private static double[] plantedB1() {
    double[] b = new double[12];
    for (int u = 0; u < 12; u++) {
      int k = POSITION_KIND[u];
      b[u] = k == 6 ? 0.5 : k == 7 ? -0.25 : 0;
    }
    return b;
  }

  private static double[][] plantedW2() {
    double[][] w = new double[8][12];
    for (int u = 0; u < 12; u++) {
      int k = POSITION_KIND[u];
      if (k < 6) {
        w[k][u] = 1;
      } else if (k == 6) {
        w[6][u] = 1;
      } else if (k == 7) {
        w[7][u] = 1;
      } else {
        w[6][u] = 1;
        w[7][u] = 1;
      }
    }
    return w;
  }

  private static final double[][] PLANTED_W3 = {
    {1, -1, 0.5, 0, 2, -0.5, 1, 0},
    {0, 1, -1, 1, 0, 0.5, -1, 1},
    {-1, 0, 0.5, -1, -2, 0, 0, -1}
  };

  private static byte[] plantedModel() {
    return new OnnxModelBuilder()
        .input("input", 6)
        .matrix("fc1.weight", plantedW1())
        .vector("fc1.bias", plantedB1())
        .matrix("fc2.weight", plantedW2())
        .vector("fc2.bias", new double[8])
        .matrix("classifier.weight", PLANTED_W3)
        .vector("classifier.bias", 0.5, -0.25, 0)
        .matrix("const.weight", new double[2][6])
        .vector("const.bias", 1, 2)
        .linear("input", "fc1.weight", "fc1.bias", "z1")
        .relu("z1", "h1")
        .linear("h1", "fc2.weight", "fc2.bias", "z2")
        .relu("z2", "h2")
        .linear("h2", "classifier.weight", "classifier.bias", "logits")
        .linear("input", "const.weight", "const.bias", "zc")
        .relu("zc", "c")
        .output("logits", 3)
        .output("c", 2)
        .build();
  }

  private static float[][] gaussianRows(long seed, int n, int d) {
    Random rnd = new Random(seed);
    float[][] x = new float[n][d];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < d; j++) {
        x[i][j] = (float) rnd.nextGaussian();
      }
    }
    return x;
  }

  private static final int N = 61;
  private static final float[][] PLANTED_X = gaussianRows(5, N, 6);

  /** h1 as ORT computes it: one non-zero product per unit, so exact after float32 rounding. */
  private static double[] plantedH1(float[] x) {
    double[][] w = plantedW1();
    double[] b = plantedB1();
    double[] h = new double[12];
    for (int u = 0; u < 12; u++) {
      double s = b[u];
      for (int j = 0; j < 6; j++) {
        s += w[u][j] * x[j];
      }
      h[u] = (float) Math.max(0, s);
    }
    return h;
  }

  /** h2 = fc2·h1 from the float32 h1, rounded to float32 as ORT's output is. */
  private static double[] plantedH2(double[] h1) {
    double[][] w = plantedW2();
    double[] h = new double[8];
    for (int j = 0; j < 8; j++) {
      double s = 0;
      for (int u = 0; u < 12; u++) {
        s += w[j][u] * h1[u];
      }
      h[j] = (float) Math.max(0, s);
    }
    return h;
  }

  private static Map<String, ProbeOutput> planted(
      Set<String> probes, FeatureComplexity.Settings settings, int batchSize, long cache) {
    return evaluator(batchSize, cache)
        .evaluate(
            plantedModel(),
            spec(layers("h1", "h2", "c"), "classifier.weight", probes, settings),
            batches(PLANTED_X, 3, 30, 31),
            CheckpointEvaluator.Progress.NONE)
        .complexity();
  }

  @Test
  void plantedCopiesAreMergedAndNothingElse() {
    // Sanity of the design itself (plain loops over the unit vectors, not the probe's code):
    // among the 9 distinct unit vectors, dmin = 3.0625 and dmax = 7.
    double[][] w1 = plantedW1();
    double[] b1 = plantedB1();
    double[][] w2 = plantedW2();
    int[] distinct = {0, 1, 2, 3, 4, 6, 7, 9, 11}; // first position of each kind
    double dmin = Double.MAX_VALUE;
    double dmax = 0;
    for (int a = 0; a < distinct.length; a++) {
      for (int c = a + 1; c < distinct.length; c++) {
        int u = distinct[a];
        int v = distinct[c];
        double d = (b1[u] - b1[v]) * (b1[u] - b1[v]);
        for (int j = 0; j < 6; j++) {
          d += (w1[u][j] - w1[v][j]) * (w1[u][j] - w1[v][j]);
        }
        for (int o = 0; o < 8; o++) {
          d += (w2[o][u] - w2[o][v]) * (w2[o][u] - w2[o][v]);
        }
        dmin = Math.min(dmin, d);
        dmax = Math.max(dmax, d);
      }
    }
    assertThat(dmin).isEqualTo(3.0625);
    assertThat(dmax).isEqualTo(7.0);

    Map<String, ProbeOutput> out = planted(FC, null, 64, 64L << 20);
    Map<String, Double> h1 = out.get("h1").metrics();
    assertThat(h1.get("ifm_units")).isEqualTo(9.0);
    assertThat(h1.get("ifm_ratio")).isEqualTo(0.75);

    // Data-aware (§2.2): the three copy merges change nothing (σ(c·z)·v = c·σ(z)·v), so
    // change_1..3 = 0 ≤ tau. Step 4 merges B (2 copies) with L, the unique closest pair: the
    // compact unit has incoming −2e_1 − e_2, bias −0.5, outgoing (2·e_7 + e_6 + e_7)/3.
    // change_4, computed here directly from that formula, is far above tau = 0.01.
    double diffSq = 0;
    double ySq = 0;
    for (float[] x : PLANTED_X) {
      double[] y = new double[8];
      double[] h = new double[12];
      for (int u = 0; u < 12; u++) {
        double s = b1[u];
        for (int j = 0; j < 6; j++) {
          s += w1[u][j] * x[j];
        }
        h[u] = Math.max(0, s);
      }
      for (int o = 0; o < 8; o++) {
        for (int u = 0; u < 12; u++) {
          y[o] += w2[o][u] * h[u];
        }
        ySq += y[o] * y[o];
      }
      double bOld = Math.max(0, -x[1] - 0.25);
      double lOld = Math.max(0, -(double) x[2]);
      double merged = Math.max(0, -2.0 * x[1] - x[2] - 0.5);
      double d6 = merged / 3 - lOld; // e_6: new (1/3)·merged, old L·1
      double d7 = merged - 2 * bOld - lOld; // e_7: new 1·merged, old 2·B + L
      diffSq += d6 * d6 + d7 * d7;
    }
    double change4 = Math.sqrt(diffSq / ySq);
    assertThat(change4).isGreaterThan(0.01);
    assertThat(h1.get("ifm_data_units")).isEqualTo(9.0);
    assertThat(h1.get("ifm_data_ratio")).isEqualTo(0.75);
    assertThat(h1.get("ifm_data_units")).isLessThanOrEqualTo(12.0 - 3);

    // h2: its unit vectors [fc2 row j, 0, classifier column j]; computed here, dmin > 0.1·dmax
    // on the first step, so nothing merges.
    double min2 = Double.MAX_VALUE;
    double max2 = 0;
    for (int a = 0; a < 8; a++) {
      for (int c = a + 1; c < 8; c++) {
        double d = 0;
        for (int u = 0; u < 12; u++) {
          d += (w2[a][u] - w2[c][u]) * (w2[a][u] - w2[c][u]);
        }
        for (double[] row : PLANTED_W3) {
          d += (row[a] - row[c]) * (row[a] - row[c]);
        }
        min2 = Math.min(min2, d);
        max2 = Math.max(max2, d);
      }
    }
    assertThat(min2).isGreaterThan(0.1 * max2);
    assertThat(out.get("h2").metrics().get("ifm_units")).isEqualTo(8.0);
    assertThat(out.get("h2").metrics().get("ifm_ratio")).isEqualTo(1.0);

    // c: a Relu with no consumer.
    ProbeOutput c = out.get("c");
    assertThat(c.metrics().get("ifm_units")).isNull();
    assertThat(c.metrics().get("ifm_ratio")).isNull();
    assertThat(c.notes())
        .contains("ifm: unsupported pattern (c has 0 consumers; IFM needs exactly one)");
  }

  @Test
  void orthogonalEqualNormUnitsDoNotMerge() {
    // h = Relu(H x), H the 4×4 Hadamard matrix (orthogonal rows of norm² 4), b = 0, and every
    // outgoing column equal: D(u,w) = ‖h_u − h_w‖² = 8 for every pair, so dmin = dmax > 0.1·dmax.
    double[][] hadamard = {{1, 1, 1, 1}, {1, -1, 1, -1}, {1, 1, -1, -1}, {1, -1, -1, 1}};
    double[][] out = {{1, 1, 1, 1}, {0.5, 0.5, 0.5, 0.5}};
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 4)
            .matrix("fc1.weight", hadamard)
            .vector("fc1.bias", 0, 0, 0, 0)
            .matrix("classifier.weight", out)
            .vector("classifier.bias", 0, 0)
            .linear("input", "fc1.weight", "fc1.bias", "z")
            .relu("z", "h")
            .linear("h", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    float[][] x = gaussianRows(17, 40, 4);
    Map<String, Double> m =
        evaluator()
            .evaluate(
                model,
                spec(layers("h"), "classifier.weight", FC, null),
                batches(x, 2, 40),
                CheckpointEvaluator.Progress.NONE)
            .complexity()
            .get("h")
            .metrics();
    assertThat(m.get("ifm_units")).isEqualTo(4.0);
    assertThat(m.get("ifm_ratio")).isEqualTo(1.0);
    // Data-aware: every pair ties, so step 1 merges units 0 and 1 (first pair). With equal
    // outgoing columns v, y = (Σ_u relu(z_u))·v and Y_1 − Y = (relu(z_0 + z_1) − relu(z_0) −
    // relu(z_1))·v, so change_1 = √(Σ δ²) / √(Σ s²), computed here directly.
    double dSq = 0;
    double sSq = 0;
    for (float[] r : x) {
      double[] z = new double[4];
      double s = 0;
      for (int u = 0; u < 4; u++) {
        for (int j = 0; j < 4; j++) {
          z[u] += hadamard[u][j] * r[j];
        }
        s += Math.max(0, z[u]);
      }
      double d = Math.max(0, z[0] + z[1]) - Math.max(0, z[0]) - Math.max(0, z[1]);
      dSq += d * d;
      sSq += s * s;
    }
    assertThat(Math.sqrt(dSq / sSq)).isGreaterThan(0.01);
    assertThat(m.get("ifm_data_units")).isEqualTo(4.0);
    assertThat(m.get("ifm_data_ratio")).isEqualTo(1.0);
  }

  @ParameterizedTest(name = "mini-batch {0}, feature cache {1} bytes")
  @CsvSource({"64, 67108864", "7, 67108864", "5, 0"})
  void effectiveRankAndCountsMatchAnSvdOfThePlantedFeatures(int batchSize, long cache) {
    Map<String, ProbeOutput> out = planted(FC, null, batchSize, cache);
    List<double[]> h1 = new ArrayList<>();
    List<double[]> h2 = new ArrayList<>();
    for (float[] x : PLANTED_X) {
      double[] a = plantedH1(x);
      h1.add(a);
      h2.add(plantedH2(a));
    }
    // h1 has 12 columns but only 9 distinct ones: 3 singular values are 0 and dropped by the cut.
    assertRelative(
        out.get("h1").metrics().get("effective_rank"),
        referenceEffectiveRank(h1),
        1e-6,
        "h1 effective_rank");
    assertRelative(
        out.get("h2").metrics().get("effective_rank"),
        referenceEffectiveRank(h2),
        1e-6,
        "h2 effective_rank");
    assertThat(referenceEffectiveRank(h1)).isBetween(1.0, 9.0);
    Map<String, Double> c = out.get("c").metrics();
    assertThat(c.get("effective_rank")).isNull(); // every feature is constant (1, 2)
    assertThat(out.get("c").notes()).anyMatch(n -> n.startsWith("effective_rank:"));
    int[] widths = {12, 8, 2};
    String[] names = {"h1", "h2", "c"};
    for (int l = 0; l < 3; l++) {
      Map<String, Double> m = out.get(names[l]).metrics();
      assertThat(m.get("width")).as(names[l]).isEqualTo((double) widths[l]);
      assertThat(m.get("samples")).as(names[l]).isEqualTo((double) N);
      assertThat(m.get("nonfinite")).as(names[l]).isEqualTo(0.0);
    }
  }

  @Test
  void effectiveRankOfARandomMlpMatchesAnSvdOfAFloat64ForwardPass() {
    Mlp mlp = Mlp.random(23, 6, 12, 8, 3);
    float[][] x = gaussianRows(29, 90, 6);
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("pre1", "z1");
    layers.put("h1", "h1");
    layers.put("h2", "h2");
    Map<String, ProbeOutput> out =
        evaluator()
            .evaluate(
                mlp.onnx(),
                spec(layers, "classifier.weight", FC, null),
                batches(x, 3, 50, 40),
                CheckpointEvaluator.Progress.NONE)
            .complexity();
    List<List<double[]>> feats = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
    for (float[] r : x) {
      double[][] act = mlp.forward(r);
      feats.get(0).add(rounded(mlp.preActivations(r)[0]));
      feats.get(1).add(rounded(act[0]));
      feats.get(2).add(rounded(act[1]));
    }
    String[] names = {"pre1", "h1", "h2"};
    int[] widths = {12, 12, 8};
    for (int l = 0; l < 3; l++) {
      Map<String, Double> m = out.get(names[l]).metrics();
      // ORT's float32 GEMM differs from the float64 forward by a few float32 ulps per feature;
      // effective rank moves by ~1e-7 relative under such a perturbation.
      assertRelative(m.get("effective_rank"), referenceEffectiveRank(feats.get(l)), 1e-6, names[l]);
      assertThat(m.get("width")).isEqualTo((double) widths[l]);
      assertThat(m.get("samples")).isEqualTo(90.0);
      assertThat(m.get("nonfinite")).isEqualTo(0.0);
    }
  }

  private static double[] rounded(double[] v) {
    double[] r = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      r[i] = (float) v[i];
    }
    return r;
  }

  @Test
  void vinfoOfALayerThatDeterminesTheClassifierLayerLinearlyIsOne() {
    // h2 = fc2·h1 exactly on every sample, so every target z_j (a linear function of h2) is an
    // exact linear function of h1 and of h2: R² = 1 up to the ridge's bias. c is constant, so
    // θ = 0 (tr C_xx = 0), ẑ = z̄_even and R² = 1 − Σ(z − z̄_even)²/Σ(z − z̄_odd)² ≤ 0 → clipped 0.
    Map<String, ProbeOutput> out = planted(FC, null, 64, 64L << 20);
    Map<String, Double> h1 = out.get("h1").metrics();
    Map<String, Double> h2 = out.get("h2").metrics();
    Map<String, Double> c = out.get("c").metrics();
    assertThat(h1.get("vinfo_r2")).isCloseTo(1.0, within(1e-3));
    assertThat(h2.get("vinfo_r2")).isCloseTo(1.0, within(1e-3));
    assertThat(c.get("vinfo_r2")).isEqualTo(0.0);
    // vinfo_complexity = 1 − mean_ℓ vinfo_r2 ≈ 1 − (1 + 1 + 0)/3.
    assertThat(h2.get("vinfo_complexity")).isCloseTo(1.0 / 3, within(1e-3));
    assertThat(h2.get("vinfo_complexity"))
        .isCloseTo(
            1 - (h1.get("vinfo_r2") + h2.get("vinfo_r2") + c.get("vinfo_r2")) / 3, within(1e-12));
    // h2's covariance has full rank 8 (its columns are 8 independent functions of x): k′ = 8.
    assertThat(h2.get("vinfo_directions")).isEqualTo(8.0);
    assertThat(h1).doesNotContainKeys("vinfo_complexity", "vinfo_directions");
    assertThat(c).doesNotContainKeys("vinfo_complexity", "vinfo_directions");

    // With a negligible ridge the fit is exact up to float32 rounding of h2.
    Map<String, ProbeOutput> tight = planted(FC, alpha(1e-10), 64, 64L << 20);
    assertThat(tight.get("h1").metrics().get("vinfo_r2")).isCloseTo(1.0, within(1e-6));
    assertThat(tight.get("h2").metrics().get("vinfo_r2")).isCloseTo(1.0, within(1e-6));
    assertThat(tight.get("c").metrics().get("vinfo_r2")).isEqualTo(0.0);
    assertThat(tight.get("h2").metrics().get("vinfo_complexity")).isCloseTo(1.0 / 3, within(1e-6));
  }

  /**
   * PROBES.md VI-1 through ORT: input (a, b); L2 = Identity(input) feeds the classifier; L1 =
   * MatMul(input, [[1],[1]]) = a + b.
   */
  private static Map<String, ProbeOutput> vi1(FeatureComplexity.Settings settings) {
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2)
            .matrix("sum", new double[][] {{1}, {1}})
            .matrix("classifier.weight", new double[][] {{1, 0}, {0, 1}})
            .vector("classifier.bias", 0, 0)
            .node("MatMul", new String[] {"input", "sum"}, new String[] {"l1"})
            .identity("input", "l2")
            .linear("l2", "classifier.weight", "classifier.bias", "logits")
            .output("l1", 1)
            .output("logits", 2)
            .build();
    float[] a = {2, 2, -2, -2, 1, 1, -1, -1};
    float[] b = {1, -1, 1, -1, -1, 1, -1, 1};
    float[][] rows = new float[8][];
    for (int i = 0; i < 8; i++) {
      rows[i] = new float[] {a[i], b[i]};
    }
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("L1", "l1");
    layers.put("L2", "l2");
    return evaluator(3, 1 << 20)
        .evaluate(
            model,
            spec(layers, "classifier.weight", FC, settings),
            batches(rows, 2, 3, 5),
            CheckpointEvaluator.Progress.NONE)
        .complexity();
  }

  @Test
  void vi1HandCaseThroughOrt() {
    // Printed values of PROBES.md §2.5 VI-1 (default alpha = 1e-3), 7 significant digits.
    Map<String, ProbeOutput> out = vi1(null);
    Map<String, Double> l1 = out.get("L1").metrics();
    Map<String, Double> l2 = out.get("L2").metrics();
    assertThat(l1.get("vinfo_r2")).isCloseTo(0.4999995, within(5e-8));
    assertThat(l2.get("vinfo_r2")).isCloseTo(0.9999982, within(5e-8));
    assertThat(l2.get("vinfo_complexity")).isCloseTo(0.2500011, within(5e-8));
    assertThat(l2.get("vinfo_directions")).isEqualTo(2.0);

    // Without ridge (by hand): even half x = a + b = (3, −1, 0, −2), θ_a = 10/14, θ_b = 4/14;
    // odd half residual Σ = 20/7 for both against Σa² = 10, Σb² = 4: R² = 5/7 and 2/7 for L1,
    // 1 and 1 for L2; complexity = ((1 − (5/7 + 1)/2) + (1 − (2/7 + 1)/2))/2 = 1/4.
    Map<String, ProbeOutput> exact = vi1(alpha(1e-12));
    assertThat(exact.get("L1").metrics().get("vinfo_r2")).isCloseTo(0.5, within(1e-9));
    assertThat(exact.get("L2").metrics().get("vinfo_r2")).isCloseTo(1.0, within(1e-9));
    assertThat(exact.get("L2").metrics().get("vinfo_complexity")).isCloseTo(0.25, within(1e-9));

    // effective_rank (§2.3): L2's centred columns a, b are orthogonal (Σab = 0, means 0) with
    // norms √20 and √8, so s = (√20, √8); L1 is one column: 1.
    double s1 = Math.sqrt(20);
    double s2 = Math.sqrt(8);
    double p1 = s1 / (s1 + s2);
    double p2 = s2 / (s1 + s2);
    double er = Math.exp(-p1 * Math.log(p1) - p2 * Math.log(p2));
    assertThat(l2.get("effective_rank")).isCloseTo(er, within(1e-12));
    assertThat(l1.get("effective_rank")).isCloseTo(1.0, within(1e-12));
    assertThat(l1.get("width")).isEqualTo(1.0);
    assertThat(l2.get("width")).isEqualTo(2.0);
    assertThat(l1.get("samples")).isEqualTo(8.0);
  }

  @Test
  void aNaNInputSampleIsDroppedFromEveryLayer() {
    Mlp mlp = Mlp.random(31, 6, 12, 8, 3);
    float[][] x = gaussianRows(37, 50, 6);
    x[13][2] = Float.NaN;
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("pre1", "z1");
    layers.put("h1", "h1");
    layers.put("h2", "h2");
    Map<String, ProbeOutput> out =
        evaluator(8, 64L << 20)
            .evaluate(
                mlp.onnx(),
                spec(layers, "classifier.weight", FC, null),
                batches(x, 3, 20, 30),
                CheckpointEvaluator.Progress.NONE)
            .complexity();
    List<List<double[]>> feats = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
    for (int i = 0; i < x.length; i++) {
      if (i == 13) {
        continue;
      }
      double[][] act = mlp.forward(x[i]);
      feats.get(0).add(rounded(mlp.preActivations(x[i])[0]));
      feats.get(1).add(rounded(act[0]));
      feats.get(2).add(rounded(act[1]));
    }
    String[] names = {"pre1", "h1", "h2"};
    for (int l = 0; l < 3; l++) {
      ProbeOutput o = out.get(names[l]);
      Map<String, Double> m = o.metrics();
      assertThat(m.get("nonfinite")).as(names[l]).isEqualTo(1.0);
      assertThat(m.get("samples")).as(names[l]).isEqualTo(49.0);
      assertRelative(m.get("effective_rank"), referenceEffectiveRank(feats.get(l)), 1e-6, names[l]);
      assertThat(m.get("vinfo_r2")).as(names[l]).isNotNull();
      for (Map.Entry<String, Double> e : m.entrySet()) {
        if (e.getValue() != null) {
          assertThat(Double.isFinite(e.getValue())).as(names[l] + "." + e.getKey()).isTrue();
        }
      }
    }
    // h1 and h2 are Relu layers of a supported pattern: IFM and data-aware IFM are defined
    // (data-aware leaves the NaN input row out).
    for (String l : List.of("h1", "h2")) {
      Map<String, Double> m = out.get(l).metrics();
      assertThat(m.get("ifm_units")).as(l).isNotNull();
      assertThat(m.get("ifm_data_units")).as(l).isNotNull();
    }
    assertThat(out.get("h2").metrics().get("vinfo_complexity")).isNotNull();
    // pre1 is a Gemm output, not an activation: IFM does not apply.
    assertThat(out.get("pre1").metrics().get("ifm_units")).isNull();
    assertThat(out.get("pre1").notes()).anyMatch(n -> n.startsWith("ifm: unsupported pattern"));
  }

  @Test
  void onlyTheProbesAskedForAreReturned() {
    CheckpointEvaluator.Evaluation fcOnly =
        evaluator()
            .evaluate(
                plantedModel(),
                spec(layers("h1", "h2"), "classifier.weight", FC, null),
                batches(PLANTED_X, 3, 61),
                CheckpointEvaluator.Progress.NONE);
    assertThat(fcOnly.layers()).isEmpty();
    assertThat(fcOnly.complexity().keySet()).containsExactly("h1", "h2");
    assertThat(fcOnly.byProbe().keySet()).containsExactly(FeatureComplexity.NAME);

    CheckpointEvaluator.Evaluation both =
        evaluator()
            .evaluate(
                plantedModel(),
                spec(layers("h1", "h2"), "classifier.weight", BOTH, null),
                batches(PLANTED_X, 3, 61),
                CheckpointEvaluator.Progress.NONE);
    assertThat(both.layers().keySet()).containsExactly("h1", "h2");
    assertThat(both.complexity().keySet()).containsExactly("h1", "h2");
    assertThat(both.byProbe().keySet())
        .containsExactly(NeuralCollapseProbe.NAME, FeatureComplexity.NAME);
    assertThat(both.layers().get("h2").metrics()).containsKeys("nc1", "nc4_ncc_mismatch");

    CheckpointEvaluator.Evaluation ncOnly =
        evaluator()
            .evaluate(
                plantedModel(),
                new EvaluationSpec(
                    "input", layers("h1", "h2"), "logits", "classifier.weight", null, null),
                batches(PLANTED_X, 3, 61),
                CheckpointEvaluator.Progress.NONE);
    assertThat(ncOnly.complexity()).isEmpty();
    assertThat(ncOnly.byProbe().keySet()).containsExactly(NeuralCollapseProbe.NAME);
    // Running both changes neither.
    for (String l : List.of("h1", "h2")) {
      assertSameMetrics(both.layers().get(l), ncOnly.layers().get(l));
      assertSameMetrics(both.complexity().get(l), fcOnly.complexity().get(l));
    }
  }

  private static void assertSameMetrics(ProbeOutput got, ProbeOutput want) {
    assertThat(got.metrics().keySet()).isEqualTo(want.metrics().keySet());
    want.metrics()
        .forEach(
            (k, v) -> {
              if (v == null) {
                assertThat(got.metrics().get(k)).as(k).isNull();
              } else {
                assertThat(got.metrics().get(k))
                    .as(k)
                    .isCloseTo(v, within(1e-12 * Math.max(1, Math.abs(v))));
              }
            });
  }

  @Test
  void settingsAreEchoedInParams() {
    Map<String, ProbeOutput> defaults = planted(FC, null, 64, 64L << 20);
    for (ProbeOutput o : defaults.values()) {
      assertThat(o.params())
          .isEqualTo(Map.of("beta", 0.1, "tau", 0.01, "k", 8, "alpha", 1e-3, "reduction", "none"));
    }
    FeatureComplexity.Settings custom =
        new FeatureComplexity.Settings(0.2, 0.05, 3, 1e-4, 4096, 1024);
    Map<String, ProbeOutput> out = planted(FC, custom, 64, 64L << 20);
    for (ProbeOutput o : out.values()) {
      assertThat(o.params())
          .isEqualTo(Map.of("beta", 0.2, "tau", 0.05, "k", 3, "alpha", 1e-4, "reduction", "none"));
    }
    // k = 3 directions are used (h2's covariance has rank 8 > 3).
    assertThat(out.get("h2").metrics().get("vinfo_directions")).isEqualTo(3.0);
    // beta = 0.2 still stops h1 after the copies: 3.0625 > 0.2·7 = 1.4.
    assertThat(out.get("h1").metrics().get("ifm_units")).isEqualTo(9.0);
  }

  @Test
  void aLayerWhoseClassifierFeedingLayerIsNotProbedHasNoVinfo() {
    Map<String, ProbeOutput> out =
        evaluator()
            .evaluate(
                plantedModel(),
                spec(layers("h1"), null, FC, null),
                batches(PLANTED_X, 3, 61),
                CheckpointEvaluator.Progress.NONE)
            .complexity();
    ProbeOutput h1 = out.get("h1");
    assertThat(h1.metrics()).containsKey("vinfo_r2");
    assertThat(h1.metrics().get("vinfo_r2")).isNull();
    assertThat(h1.metrics()).doesNotContainKeys("vinfo_complexity", "vinfo_directions");
    assertThat(h1.notes())
        .contains("vinfo: the classifier-feeding layer (tensor h2) is not probed");
    // The rest does not depend on it.
    assertThat(h1.metrics().get("ifm_units")).isEqualTo(9.0);
    assertThat(h1.metrics().get("effective_rank")).isNotNull();
  }

  @Test
  void namedWeightsGiveTheSameIfmAsTheDetectedPattern() {
    Map<String, EvaluationSpec.IfmNames> names =
        Map.of("h1", new EvaluationSpec.IfmNames("fc1.weight", "fc1.bias", "fc2.weight"));
    Map<String, ProbeOutput> out =
        evaluator()
            .evaluate(
                plantedModel(),
                new EvaluationSpec(
                    "input",
                    layers("h1", "h2"),
                    "logits",
                    "classifier.weight",
                    null,
                    null,
                    FC,
                    null,
                    names),
                batches(PLANTED_X, 3, 61),
                CheckpointEvaluator.Progress.NONE)
            .complexity();
    // The planted design (see plantedCopiesAreMergedAndNothingElse): 9 units, 9 data-aware.
    assertThat(out.get("h1").metrics().get("ifm_units")).isEqualTo(9.0);
    assertThat(out.get("h1").metrics().get("ifm_data_units")).isEqualTo(9.0);
  }

  /**
   * x (2) → Gemm → BatchNormalization(epsilon = 1e-3, a FLOAT attribute) → Relu → h (3) →
   * classifier. Units 0 and 1 are exact copies (same row, bias, BN parameters and outgoing column);
   * var = 0 on them makes the scale γ/√eps depend strongly on the epsilon ORT reads.
   */
  @Test
  void batchNormFoldedLayerThroughOrt() {
    double[][] w = {{1, -0.5}, {1, -0.5}, {0.25, 2}};
    double[] b = {0.5, 0.5, -1};
    double[] gamma = {0.75, 0.75, 1.5};
    double[] beta = {0.125, 0.125, -0.25};
    double[] mean = {0.25, 0.25, 1};
    double[] var = {0, 0, 2};
    double[][] cls = {{1, 1, -2}, {-1, -1, 0.5}};
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2)
            .matrix("fc1.weight", w)
            .vector("fc1.bias", b)
            .vector("bn.scale", gamma)
            .vector("bn.bias", beta)
            .vector("bn.mean", mean)
            .vector("bn.var", var)
            .matrix("classifier.weight", cls)
            .vector("classifier.bias", 0, 0)
            .linear("input", "fc1.weight", "fc1.bias", "z")
            .node(
                "BatchNormalization",
                new String[] {"z", "bn.scale", "bn.bias", "bn.mean", "bn.var"},
                new String[] {"bn"},
                "epsilon",
                1e-3)
            .relu("bn", "h")
            .linear("h", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    float[][] x = gaussianRows(47, 40, 2);
    Map<String, Double> m =
        evaluator()
            .evaluate(
                model,
                spec(layers("h"), "classifier.weight", FC, null),
                batches(x, 2, 40),
                CheckpointEvaluator.Progress.NONE)
            .complexity()
            .get("h")
            .metrics();
    double eps = (double) 1e-3f; // the attribute is a float32
    // Folded weights (§2.1): w′ = γ·w/√(var+eps), b′ = γ·(b − mean)/√(var+eps) + β.
    double[][] wf = new double[3][2];
    double[] bf = new double[3];
    for (int u = 0; u < 3; u++) {
      double s = gamma[u] / Math.sqrt(var[u] + eps);
      wf[u][0] = s * w[u][0];
      wf[u][1] = s * w[u][1];
      bf[u] = s * (b[u] - mean[u]) + beta[u];
    }
    // Features in float64 (rounded to float32 as ORT's are) and the data-aware change of the
    // second merge ({0,1} with {2}: incoming 2·row_0 + row_2, outgoing (2·v_0 + v_2)/3).
    List<double[]> feats = new ArrayList<>();
    double dSq = 0;
    double ySq = 0;
    for (float[] r : x) {
      double[] h = new double[3];
      for (int u = 0; u < 3; u++) {
        h[u] = Math.max(0, wf[u][0] * r[0] + wf[u][1] * r[1] + bf[u]);
      }
      feats.add(rounded(h));
      double zm =
          2 * (wf[0][0] * r[0] + wf[0][1] * r[1] + bf[0])
              + wf[2][0] * r[0]
              + wf[2][1] * r[1]
              + bf[2];
      for (int o = 0; o < 2; o++) {
        double y = cls[o][0] * h[0] + cls[o][1] * h[1] + cls[o][2] * h[2];
        double vm = (2 * cls[o][0] + cls[o][2]) / 3;
        double d = Math.max(0, zm) * vm - y;
        ySq += y * y;
        dSq += d * d;
      }
    }
    assertRelative(m.get("effective_rank"), referenceEffectiveRank(feats), 1e-6, "h");
    // Copies merge; with two units left dmin = dmax, so they stay: 2.
    assertThat(m.get("ifm_units")).isEqualTo(2.0);
    assertThat(Math.sqrt(dSq / ySq)).isGreaterThan(0.01);
    assertThat(m.get("ifm_data_units")).isEqualTo(2.0);
  }

  /**
   * x [N, 2, 2, 2] → Conv 1×1 (3 filters) → Relu → h [N, 3, 2, 2] → GlobalAveragePool → Flatten →
   * classifier. Filters 0 and 1 are exact copies with equal classifier columns; filter 2 differs.
   */
  @Test
  void convLayerIsPooledAndHasWeightsOnlyIfm() {
    double[][] f = {{1, -0.5}, {1, -0.5}, {-0.25, 2}};
    double[] fb = {0.25, 0.25, -0.5};
    double[][] cls = {{1, 1, -1}, {0.5, 0.5, 2}};
    float[] filters = new float[6];
    for (int u = 0; u < 3; u++) {
      filters[2 * u] = (float) f[u][0];
      filters[2 * u + 1] = (float) f[u][1];
    }
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2, 2, 2)
            .initializer("conv.weight", new long[] {3, 2, 1, 1}, filters)
            .vector("conv.bias", fb)
            .matrix("classifier.weight", cls)
            .vector("classifier.bias", 0, 0)
            .node("Conv", new String[] {"input", "conv.weight", "conv.bias"}, new String[] {"z"})
            .relu("z", "h")
            .node("GlobalAveragePool", new String[] {"h"}, new String[] {"g"})
            .node("Flatten", new String[] {"g"}, new String[] {"flat"})
            .linear("flat", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    int n = 30;
    Random rnd = new Random(53);
    float[] x = new float[n * 8];
    int[] labels = new int[n];
    List<double[]> pooled = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      labels[i] = i % 2;
      for (int k = 0; k < 8; k++) {
        x[i * 8 + k] = (float) rnd.nextGaussian();
      }
      double[] g = new double[3];
      for (int u = 0; u < 3; u++) {
        for (int p = 0; p < 4; p++) { // layout [c][h][w]: channel c at offset c·4
          double z = f[u][0] * x[i * 8 + p] + f[u][1] * x[i * 8 + 4 + p] + fb[u];
          g[u] += (float) Math.max(0, z) / 4.0;
        }
      }
      pooled.add(g);
    }
    ProbeOutput h =
        evaluator()
            .evaluate(
                model,
                spec(layers("h"), "classifier.weight", FC, null),
                List.of(new ReferenceBatch(x, new long[] {n, 2, 2, 2}, labels)),
                CheckpointEvaluator.Progress.NONE)
            .complexity()
            .get("h");
    assertThat(h.params()).containsEntry("reduction", "gap");
    // Unit vectors [filter, bias, classifier column]: 0 and 1 identical → merge; then two units
    // left, dmin = dmax > 0 → stop: 2 of 3.
    assertThat(h.metrics().get("ifm_units")).isEqualTo(2.0);
    assertThat(h.metrics().get("ifm_data_units")).isNull();
    assertThat(h.notes()).anyMatch(note -> note.startsWith("ifm_data:") && note.contains("conv"));
    assertThat(h.metrics().get("width")).isEqualTo(3.0);
    // Two of the three pooled columns are identical: at most 2 non-zero singular values.
    assertRelative(h.metrics().get("effective_rank"), referenceEffectiveRank(pooled), 1e-6, "h");
  }

  @Test
  void aSigmoidLayerHasNullIfmWithANote() {
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 3)
            .matrix("fc1.weight", new double[][] {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}})
            .vector("fc1.bias", 0, 0, 0, 0)
            .matrix("classifier.weight", new double[][] {{1, -1, 0, 1}, {0, 1, -1, 1}})
            .vector("classifier.bias", 0, 0)
            .linear("input", "fc1.weight", "fc1.bias", "z")
            .node("Sigmoid", new String[] {"z"}, new String[] {"s"})
            .linear("s", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    ProbeOutput s =
        evaluator()
            .evaluate(
                model,
                spec(layers("s"), "classifier.weight", FC, null),
                batches(gaussianRows(41, 20, 3), 2, 20),
                CheckpointEvaluator.Progress.NONE)
            .complexity()
            .get("s");
    for (String k : List.of("ifm_units", "ifm_ratio", "ifm_data_units", "ifm_data_ratio")) {
      assertThat(s.metrics()).containsKey(k);
      assertThat(s.metrics().get(k)).as(k).isNull();
    }
    assertThat(s.notes()).anyMatch(n -> n.startsWith("ifm: unsupported pattern"));
    assertThat(s.metrics().get("effective_rank")).isNotNull();
    assertThat(s.metrics().get("vinfo_r2")).isNotNull();
  }

  /**
   * A LeakyRelu(alpha = 0.5) layer whose pre-activations are all negative on the data (bias −2, |x|
   * < 1). Units 0 and 1 are exact copies; unit 2 differs. §2.2 with σ = LeakyRelu: y = 0.5·Σ_u
   * z_u·v_u ≠ 0; the copy merge changes nothing; the second merge changes y by (x_1 − x_0)·(2/3,
   * 1/3) (by hand, the layer is linear on this data), against ‖y‖ ≈ 5: change_2 ≈ 0.1 > tau. So
   * ifm_data_units = 2.
   */
  @Test
  void dataAwareIfmOnALeakyReluLayerUsesTheLeakySlope() {
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2)
            .matrix("fc1.weight", new double[][] {{1, 0}, {1, 0}, {0, 1}})
            .vector("fc1.bias", -2, -2, -2)
            .matrix("classifier.weight", new double[][] {{1, 1, -1}, {2, 2, 1}})
            .vector("classifier.bias", 0, 0)
            .linear("input", "fc1.weight", "fc1.bias", "z")
            .node("LeakyRelu", new String[] {"z"}, new String[] {"h"}, "alpha", 0.5)
            .linear("h", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 2)
            .build();
    Random rnd = new Random(43);
    float[][] x = new float[30][2];
    double dSq = 0;
    double ySq = 0;
    for (float[] r : x) {
      r[0] = (float) (2 * rnd.nextDouble() - 1);
      r[1] = (float) (2 * rnd.nextDouble() - 1);
      double p = 2.0 * r[0] - 4; // z_0 + z_1
      double q = r[1] - 2.0; // z_2
      double y0 = 0.5 * (p * 1 + q * -1);
      double y1 = 0.5 * (p * 2 + q * 1);
      ySq += y0 * y0 + y1 * y1;
      double d = r[1] - r[0];
      dSq += (d * 2 / 3) * (d * 2 / 3) + (d / 3) * (d / 3);
    }
    assertThat(Math.sqrt(dSq / ySq)).isGreaterThan(0.01);
    ProbeOutput h =
        evaluator()
            .evaluate(
                model,
                spec(layers("h"), "classifier.weight", FC, null),
                batches(x, 2, 30),
                CheckpointEvaluator.Progress.NONE)
            .complexity()
            .get("h");
    assertThat(h.metrics().get("ifm_units")).isEqualTo(2.0);
    assertThat(h.metrics().get("ifm_data_units")).isEqualTo(2.0);
  }
}
