package io.probestream.probes.collapse;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.NeuralCollapseProbe.Frozen;
import io.probestream.probes.collapse.NeuralCollapseProbe.SecondPass;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BinaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The streaming {@code neural_collapse} probe against {@link NaiveNeuralCollapse}, a direct float64
 * transcription of PROBES.md §1 (full d×d Σ_W and Σ_B, Jacobi pseudo-inverse), on seeded random
 * data, for every way of cutting the split into batches and merging them.
 */
class NeuralCollapseRandomizedTest {
  /*
   * 1e-9 relative. Both sides read the same float32 values widened to float64, so they differ only
   * by rounding: summation order (batch-local sums merged with Chan's update versus one pass over
   * all rows), and algorithm (thin SVD of the K×d M̃ with per-direction sums a_j versus a Jacobi
   * eigen-decomposition of the d×d Σ_B and an explicit Σ_W). That is a few hundred roundings of
   * 1.1e-16, amplified by the conditioning of each metric: by |h|/spread ≈ 1e4/0.05 on the offset
   * data (a rounding in a mean at 1e4 is 1e-12 absolute against a centred mean of order 1), and by
   * λ_max/λ_min of the kept Σ_B eigenvalues for nc1. The worst disagreement measured over all cases
   * below is 8e-12 (offset data; under 1e-14 elsewhere), so 1e-9 leaves a margin of 100 for a
   * change of seed. A raw Σh² − n·μ² scatter (what PROBES.md §0 forbids) misses it by 1e-7 to 1e-6
   * on the offset data, and a formula slip by O(1).
   */
  private static final double RELATIVE = 1e-9;

  /*
   * PROBES.md §1.5: with K = 2 the nc2 metrics are 0 in exact arithmetic (m_1 = −m_0), so both
   * sides hold rounding noise of order 1e-16; a relative comparison of two noises means nothing.
   */
  private static final double ROUNDING_ZERO = 1e-12;

  /* Counts, and nc4 = count / N divided the same way on both sides: equal to the last bit. */
  private static final Set<String> EXACT =
      Set.of("samples", "classes_seen", "nonfinite", "sb_rank", "nc4_ncc_mismatch");

  private static final Map<String, Object> PARAMS = Map.of("reduction", "none");

  /** Where the layer sits: nc3 needs the classifier weight, nc4 the logits. */
  enum Layer {
    HIDDEN(false, false),
    CLASSIFIER(true, true),
    CLASSIFIER_WITHOUT_WEIGHT(true, false);

    final boolean classifier;
    final boolean weight;

    Layer(boolean classifier, boolean weight) {
      this.classifier = classifier;
      this.weight = weight;
    }
  }

  /** How the split reaches the probe. */
  enum Split {
    ONE_BATCH,
    RANDOM_SIZES_IN_ORDER,
    RANDOM_SIZES_SHUFFLED
  }

  /**
   * A seeded data set: C class centres drawn N(0, separation²) per coordinate, class labels drawn
   * with the given weights (a zero weight makes a class absent, {@code singleton} then gets exactly
   * one sample), features = offset + scale_j·(centre + N(0, spread²)), rounded to float32, where
   * scale_j is {@code flat} on the last axis and 1 elsewhere. Configured once in {@link #cases}.
   */
  static final class Scenario {
    final String name;
    final long seed;
    final int n;
    final int d;
    final int c;
    private double[] weights;
    private int singleton = -1;
    private double separation = 1.0;
    private double spread = 0.5;
    private double offset = 0.0;
    private double flat = 1.0;
    private double badFeatureRate = 0.0;
    private double badLogitRate = 0.0;

    Scenario(String name, long seed, int n, int d, int c) {
      this.name = name;
      this.seed = seed;
      this.n = n;
      this.d = d;
      this.c = c;
      this.weights = new double[c];
      java.util.Arrays.fill(weights, 1.0);
    }

    Scenario weights(double... w) {
      weights = w;
      return this;
    }

    Scenario singleton(int s) {
      singleton = s;
      return this;
    }

    Scenario geometry(double newSeparation, double newSpread, double newOffset) {
      separation = newSeparation;
      spread = newSpread;
      offset = newOffset;
      return this;
    }

    Scenario flatLastAxis(double scale) {
      flat = scale;
      return this;
    }

    Scenario nonfinite(double features, double logits) {
      badFeatureRate = features;
      badLogitRate = logits;
      return this;
    }

    @Override
    public String toString() {
      return name;
    }

    Data generate() {
      Random rnd = new Random(seed);
      double[][] centres = new double[c][d];
      double[] centroid = new double[d];
      for (int k = 0; k < c; k++) {
        for (int j = 0; j < d; j++) {
          centres[k][j] = separation * rnd.nextGaussian();
          centroid[j] += centres[k][j] / c;
        }
      }
      double total = 0;
      for (double w : weights) {
        total += w;
      }
      int[] labels = new int[n];
      for (int i = 0; i < n; i++) {
        labels[i] = draw(rnd.nextDouble() * total);
      }
      if (singleton >= 0) {
        labels[rnd.nextInt(n)] = singleton;
      }
      float[][] h = new float[n][d];
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
          double scale = j == d - 1 ? flat : 1.0;
          h[i][j] =
              (float) (offset + scale * (centres[labels[i]][j] + spread * rnd.nextGaussian()));
        }
      }
      // A classifier roughly aligned with the centred class means, with its bias cancelling the
      // offset so that the logits still discriminate, as a trained network's would.
      float[][] w = new float[c][d];
      float[] b = new float[c];
      for (int k = 0; k < c; k++) {
        double rowSum = 0;
        for (int j = 0; j < d; j++) {
          w[k][j] = (float) (centres[k][j] - centroid[j] + 0.3 * separation * rnd.nextGaussian());
          rowSum += w[k][j];
        }
        b[k] = (float) (0.1 * separation * rnd.nextGaussian() - offset * rowSum);
      }
      float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
      for (int i = 0; i < n; i++) {
        if (rnd.nextDouble() < badFeatureRate) {
          h[i][rnd.nextInt(d)] = bad[rnd.nextInt(3)];
        }
      }
      float[][] z = new float[n][c];
      for (int i = 0; i < n; i++) {
        for (int k = 0; k < c; k++) {
          float acc = b[k]; // float32 throughout, as the runtime would compute W·h + b
          for (int j = 0; j < d; j++) {
            acc += w[k][j] * h[i][j];
          }
          z[i][k] = acc;
        }
        if (rnd.nextDouble() < badLogitRate) {
          z[i][rnd.nextInt(c)] = bad[rnd.nextInt(3)];
        }
      }
      return new Data(d, c, h, labels, z, w);
    }

    private int draw(double u) {
      int last = 0;
      for (int k = 0; k < c; k++) {
        if (weights[k] > 0) {
          if (u < weights[k]) {
            return k;
          }
          u -= weights[k];
          last = k;
        }
      }
      return last; // u rounded past the end: the last class that can be drawn
    }
  }

  /** One generated split, float32 as the runtime delivers it. */
  record Data(int d, int c, float[][] h, int[] labels, float[][] z, float[][] w) {
    int n() {
      return labels.length;
    }

    FeatureBatch batch(int from, int to, boolean withLogits) {
      int rows = to - from;
      float[] features = new float[rows * d];
      float[] logits = withLogits ? new float[rows * c] : null;
      int[] y = new int[rows];
      for (int i = 0; i < rows; i++) {
        System.arraycopy(h[from + i], 0, features, i * d, d);
        if (withLogits) {
          System.arraycopy(z[from + i], 0, logits, i * c, c);
        }
        y[i] = labels[from + i];
      }
      return new FeatureBatch(rows, d, features, y, logits, withLogits ? c : 0, from);
    }
  }

  static Stream<Arguments> cases() {
    List<Scenario> scenarios =
        List.of(
            new Scenario("balanced K=4 d=5", 11, 240, 5, 4),
            new Scenario("d=1 K=4 (K-1 > d)", 12, 160, 1, 4),
            new Scenario("K=8 d=3 (K-1 > d)", 13, 400, 3, 8),
            new Scenario("imbalanced with a one-sample class", 14, 500, 6, 5)
                .weights(40, 10, 4, 1, 0)
                .singleton(4),
            new Scenario("class 2 of 5 missing", 15, 200, 4, 5).weights(1, 1, 0, 1, 1),
            new Scenario("offset 1e4, spread 0.05", 16, 400, 4, 3).geometry(1.0, 0.05, 1e4),
            new Scenario("NaN/Inf features and logits", 17, 300, 5, 4).nonfinite(0.08, 0.04),
            new Scenario("K=2", 18, 120, 3, 2),
            new Scenario("d=20 K=3", 19, 300, 20, 3),
            new Scenario("barely separated", 20, 300, 6, 4).geometry(0.1, 1.0, 0.0),
            new Scenario("all of it: imbalanced, missing, offset, non-finite", 21, 600, 7, 6)
                .weights(30, 0, 8, 3, 1, 0)
                .singleton(5)
                .geometry(1.0, 0.05, 1e4)
                .nonfinite(0.05, 0.03),
            // Σ_B eigenvalue ratio ≈ flat²: 1e-4 is kept, 1e-14 is cut (PROBES.md §0, 1e-10).
            new Scenario("flat axis, small eigenvalue kept", 24, 300, 3, 5).flatLastAxis(1e-2),
            new Scenario("flat axis, eigenvalue cut", 25, 300, 3, 5).flatLastAxis(1e-7),
            new Scenario("one class seen", 22, 50, 3, 3).weights(0, 1, 0),
            new Scenario("no finite row", 23, 20, 2, 2).nonfinite(1.0, 0.0));
    List<Arguments> cases = new ArrayList<>();
    for (Scenario s : scenarios) {
      for (Layer layer : Layer.values()) {
        for (Split split : Split.values()) {
          cases.add(Arguments.of(s, layer, split));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}, {1}, {2}")
  @MethodSource("cases")
  void streamingProbeMatchesTheNaiveDefinition(Scenario scenario, Layer layer, Split split) {
    Data data = scenario.generate();
    double[][] weight = layer.weight ? widen(data.w()) : null;
    Map<String, Double> want =
        NaiveNeuralCollapse.compute(
            data.d(),
            widen(data.h()),
            data.labels(),
            layer.classifier ? widen(data.z()) : null,
            layer.classifier,
            weight);

    Random rnd = new Random(scenario.seed * 31 + split.ordinal());
    List<FeatureBatch> batches = cut(data, split, layer.classifier, rnd);
    List<CollapseMoments> firsts = batches.stream().map(CollapseMoments::of).toList();
    CollapseMoments merged;
    if (split == Split.RANDOM_SIZES_SHUFFLED) {
      merged = tree(firsts, 0, firsts.size(), CollapseMoments::merge);
    } else {
      merged = CollapseMoments.empty(data.d());
      for (CollapseMoments m : firsts) {
        merged = merged.merge(m);
      }
    }
    Frozen frozen = NeuralCollapseProbe.freeze(merged, layer.classifier, weight);
    List<FeatureBatch> again = new ArrayList<>(batches);
    if (split == Split.RANDOM_SIZES_SHUFFLED) {
      Collections.shuffle(again, rnd); // pass 2 need not see the batches in pass 1's order
    }
    SecondPass second = frozen.emptyPass2();
    for (FeatureBatch b : again) {
      second = second.merge(frozen.pass2(b));
    }
    ProbeOutput out = frozen.finish(second, PARAMS);

    assertThat(out.params()).isEqualTo(PARAMS);
    Map<String, Double> got = out.metrics();
    assertThat(got.keySet()).as("metric keys").containsExactlyInAnyOrderElementsOf(want.keySet());
    boolean twoClasses = want.get("classes_seen") == 2.0;
    for (Map.Entry<String, Double> e : want.entrySet()) {
      String key = e.getKey();
      Double expected = e.getValue();
      Double actual = got.get(key);
      if (expected == null) {
        assertThat(actual).as(key).isNull();
      } else if (EXACT.contains(key)) {
        assertThat(actual).as(key).isEqualTo(expected);
      } else if (twoClasses && key.startsWith("nc2_")) {
        assertThat(actual).as(key).isNotNull().isCloseTo(0.0, within(ROUNDING_ZERO));
        assertThat(expected).as("naive " + key).isCloseTo(0.0, within(ROUNDING_ZERO));
      } else {
        assertThat(actual)
            .as(key)
            .isNotNull()
            .isCloseTo(expected, within(RELATIVE * Math.abs(expected)));
      }
    }
    // PROBES.md §0: notes are present whenever a metric is null (and only then, in these cases).
    assertThat(out.notes().isEmpty())
        .as("notes " + out.notes())
        .isEqualTo(!want.containsValue(null));
  }

  // ---- The oracle itself, on the hand cases of PROBES.md §1.6 (fed float64 directly). ----

  private static final double S3 = Math.sqrt(3) / 2;

  /* Values printed in PROBES.md with 7 decimals are good to half a unit in the last place. */
  private static final double PRINTED = 5e-8;

  private static final double EXACT_FORM = 1e-12;

  @Test
  void naiveOracleReproducesNcA() {
    double[][] h = {{1, 0.3}, {1, -0.3}, {-0.5, S3 + 0.3}, {-0.5, S3 - 0.3}, {-0.5, -S3 + 0.3}};
    h = append(h, new double[] {-0.5, -S3 - 0.3});
    int[] y = {0, 0, 1, 1, 2, 2};
    double[][] w = {{1, 0}, {-0.5, S3}, {-0.5, -S3}};
    Map<String, Double> m =
        NaiveNeuralCollapse.compute(2, h, y, logits(w, new double[3], h), true, w);
    assertThat(m.get("nc1")).isCloseTo(0.06, within(EXACT_FORM));
    assertThat(m.get("nc1_trace")).isCloseTo(0.09, within(EXACT_FORM));
    assertThat(m.get("cdnv")).isCloseTo(0.03, within(EXACT_FORM));
    for (String key :
        List.of(
            "nc2_equinorm",
            "nc2_equiangular",
            "nc2_etf_distance",
            "nc3_self_duality",
            "nc4_ncc_mismatch")) {
      assertThat(m.get(key)).as(key).isCloseTo(0.0, within(1e-12));
    }
    assertThat(m.get("sb_rank")).isEqualTo(2.0);
    Map<String, Double> biased =
        NaiveNeuralCollapse.compute(2, h, y, logits(w, new double[] {-10, 0, 0}, h), true, w);
    assertThat(biased.get("nc4_ncc_mismatch")).isEqualTo(1.0 / 3);
  }

  @Test
  void naiveOracleReproducesNcB() {
    double[][] h = {{2, 0}, {4, 0}, {0, 2}, {0, 4}, {0, 3}, {-1, -1}, {-3, -3}};
    int[] y = {0, 0, 1, 1, 1, 2, 2};
    double[][] w = {{1, 0}, {0, 1}, {-1, -1}};
    Map<String, Double> m =
        NaiveNeuralCollapse.compute(2, h, y, logits(w, new double[] {0, -2.5, 0}, h), true, w);
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(EXACT_FORM));
    assertThat(m.get("nc1_trace")).isCloseTo(11.0 / 76, within(EXACT_FORM));
    assertThat(m.get("nc2_equinorm")).isCloseTo(0.1222789, within(PRINTED));
    // cos(m_0, m_1) = −16/65, cos(m_0, m_2) = cos(m_1, m_2) = −7/√130, shift 1/(K − 1) = 1/2.
    double equiangular = (Math.abs(0.5 - 16.0 / 65) + 2 * Math.abs(0.5 - 7 / Math.sqrt(130))) / 3;
    assertThat(m.get("nc2_equiangular")).isCloseTo(equiangular, within(EXACT_FORM));
    assertThat(m.get("nc2_equiangular")).isCloseTo(0.1605758, within(PRINTED));
    assertThat(m.get("nc2_etf_distance")).isCloseTo(0.2808407, within(PRINTED));
    assertThat(m.get("cdnv")).isCloseTo((5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3, within(EXACT_FORM));
    assertThat(m.get("nc3_self_duality")).isCloseTo(0.0132015, within(PRINTED));
    assertThat(m.get("nc4_ncc_mismatch")).isEqualTo(1.0 / 7);
    assertThat(m.get("sb_rank")).isEqualTo(2.0);
  }

  @Test
  void naiveOracleReproducesNcC() {
    double[][] h = {{-1}, {3}, {1}, {Double.NaN}, {5}, {4}};
    int[] y = {0, 1, 0, 0, 1, 1};
    Map<String, Double> m = NaiveNeuralCollapse.compute(1, h, y, null, false, null);
    assertThat(m)
        .doesNotContainKeys("nc3_self_duality", "nc4_ncc_mismatch")
        .containsEntry("samples", 5.0)
        .containsEntry("nonfinite", 1.0)
        .containsEntry("classes_seen", 2.0)
        .containsEntry("sb_rank", 1.0);
    assertThat(m.get("nc1")).isCloseTo(5.0 / 48, within(EXACT_FORM));
    assertThat(m.get("nc1_trace")).isCloseTo(5.0 / 24, within(EXACT_FORM));
    assertThat(m.get("cdnv")).isCloseTo(5.0 / 96, within(EXACT_FORM));
    for (String key : List.of("nc2_equinorm", "nc2_equiangular", "nc2_etf_distance")) {
      assertThat(m.get(key)).as(key).isCloseTo(0.0, within(1e-12));
    }
  }

  @Test
  void naiveOracleReproducesNcD() {
    double[][] h = {{1, 0}, {1, 0.5}, {-1, 0}, {-1, 0.5}, {0, 0}, {0, 0.5}};
    int[] y = {0, 0, 1, 1, 2, 2};
    Map<String, Double> m = NaiveNeuralCollapse.compute(2, h, y, null, false, null);
    assertThat(m).containsEntry("nc2_equiangular", null).containsEntry("sb_rank", 1.0);
    assertThat(m.get("nc1")).isCloseTo(0.0, within(1e-12));
    assertThat(m.get("nc1_trace")).isCloseTo(0.09375, within(EXACT_FORM));
    assertThat(m.get("nc2_equinorm")).isCloseTo(S3, within(EXACT_FORM)); // √(1/3) / (2/3)
    assertThat(m.get("nc2_etf_distance")).isCloseTo(0.7653669, within(PRINTED));
    assertThat(m.get("cdnv")).isCloseTo(3.0 / 64, within(EXACT_FORM));
  }

  @Test
  void jacobiDiagonalisesARandomSymmetricMatrix() {
    // A = Q diag(λ) Qᵀ built from a known spectrum; the oracle must give it back.
    Random rnd = new Random(5);
    int d = 9;
    double[] spectrum = {9, 4, 4, 1, 0.5, 1e-3, 0, 0, -2};
    double[][] q = randomOrthogonal(d, rnd);
    double[][] a = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int j = 0; j < d; j++) {
        for (int e = 0; e < d; e++) {
          a[i][j] += q[i][e] * spectrum[e] * q[j][e];
        }
      }
    }
    double[][] v = new double[d][d];
    double[] lambda = NaiveNeuralCollapse.symmetricEigen(a, v);
    double[] sorted = lambda.clone();
    java.util.Arrays.sort(sorted);
    double[] expected = spectrum.clone();
    java.util.Arrays.sort(expected);
    for (int e = 0; e < d; e++) {
      assertThat(sorted[e]).isCloseTo(expected[e], within(1e-13));
    }
    for (int e = 0; e < d; e++) { // A v = λ v
      for (int i = 0; i < d; i++) {
        double av = 0;
        for (int j = 0; j < d; j++) {
          av += a[i][j] * v[j][e];
        }
        assertThat(av).isCloseTo(lambda[e] * v[i][e], within(1e-13));
      }
    }
  }

  // ---- helpers ----

  private static List<FeatureBatch> cut(Data data, Split split, boolean withLogits, Random rnd) {
    int n = data.n();
    List<FeatureBatch> batches = new ArrayList<>();
    if (split == Split.ONE_BATCH) {
      batches.add(data.batch(0, n, withLogits));
      return batches;
    }
    int maxSize = Math.max(2, n / 8);
    for (int from = 0; from < n; ) {
      int to = Math.min(n, from + rnd.nextInt(maxSize + 1)); // empty batches included
      batches.add(data.batch(from, to, withLogits));
      from = to;
    }
    if (split == Split.RANDOM_SIZES_SHUFFLED) {
      Collections.shuffle(batches, rnd);
    }
    return batches;
  }

  private static <T> T tree(List<T> xs, int from, int to, BinaryOperator<T> op) {
    if (to - from == 1) {
      return xs.get(from);
    }
    int mid = (from + to) >>> 1;
    return op.apply(tree(xs, from, mid, op), tree(xs, mid, to, op));
  }

  private static double[][] widen(float[][] x) {
    double[][] out = new double[x.length][];
    for (int i = 0; i < x.length; i++) {
      out[i] = new double[x[i].length];
      for (int j = 0; j < x[i].length; j++) {
        out[i][j] = x[i][j];
      }
    }
    return out;
  }

  private static double[][] logits(double[][] w, double[] b, double[][] h) {
    double[][] z = new double[h.length][w.length];
    for (int i = 0; i < h.length; i++) {
      for (int k = 0; k < w.length; k++) {
        z[i][k] = b[k];
        for (int j = 0; j < h[i].length; j++) {
          z[i][k] += w[k][j] * h[i][j];
        }
      }
    }
    return z;
  }

  private static double[][] append(double[][] rows, double[] row) {
    double[][] out = java.util.Arrays.copyOf(rows, rows.length + 1);
    out[rows.length] = row;
    return out;
  }

  /** Gram–Schmidt on a Gaussian matrix; columns are orthonormal. */
  private static double[][] randomOrthogonal(int d, Random rnd) {
    double[][] cols = new double[d][d];
    for (int e = 0; e < d; e++) {
      for (int i = 0; i < d; i++) {
        cols[e][i] = rnd.nextGaussian();
      }
      for (int pass = 0; pass < 2; pass++) {
        for (int f = 0; f < e; f++) {
          double dot = 0;
          for (int i = 0; i < d; i++) {
            dot += cols[e][i] * cols[f][i];
          }
          for (int i = 0; i < d; i++) {
            cols[e][i] -= dot * cols[f][i];
          }
        }
      }
      double norm = 0;
      for (int i = 0; i < d; i++) {
        norm += cols[e][i] * cols[e][i];
      }
      norm = Math.sqrt(norm);
      for (int i = 0; i < d; i++) {
        cols[e][i] /= norm;
      }
    }
    double[][] q = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int e = 0; e < d; e++) {
        q[i][e] = cols[e][i];
      }
    }
    return q;
  }
}
