package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.complexity.IterativeFeatureMerging.Merge;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Properties of PROBES.md §2.1 beyond the hand cases, and the fast loop against a naive one. */
class IterativeFeatureMergingTest {

  /**
   * The loop of PROBES.md §2.1 written as plainly as possible, O(n0³·D): groups in a list in
   * position order, every pair rescanned at every step. It uses the production distance kernel on
   * purpose, so that exact ties (integer weights, copies) compare bit for bit and the test checks
   * the bookkeeping (row minima, rescans, tie order); the kernel itself is checked against a plain
   * sum in {@link #distanceKernelIsAPlainSumOfSquaredDifferences}.
   */
  static List<Merge> naive(IfmLayer layer) {
    List<double[]> f = new ArrayList<>();
    List<Integer> name = new ArrayList<>();
    List<Long> count = new ArrayList<>();
    for (int u = 0; u < layer.units(); u++) {
      f.add(layer.unitVector(u));
      name.add(u);
      count.add(1L);
    }
    List<Merge> steps = new ArrayList<>();
    while (f.size() >= 2) {
      int gi = -1;
      int hi = -1;
      double dmin = Double.POSITIVE_INFINITY;
      double dmax = Double.NEGATIVE_INFINITY;
      for (int i = 0; i < f.size(); i++) {
        for (int j = i + 1; j < f.size(); j++) {
          double d = IterativeFeatureMerging.squaredDistance(f.get(i), f.get(j));
          if (gi < 0 || d < dmin) {
            gi = i;
            hi = j;
            dmin = d;
          }
          dmax = Math.max(dmax, d);
        }
      }
      steps.add(new Merge(name.get(gi), name.get(hi), dmin, dmax));
      double cg = count.get(gi);
      double ch = count.get(hi);
      double[] a = f.get(gi);
      double[] b = f.get(hi);
      double[] m = new double[a.length];
      for (int k = 0; k < m.length; k++) {
        m[k] = (cg * a[k] + ch * b[k]) / (cg + ch);
      }
      f.set(gi, m);
      count.set(gi, count.get(gi) + count.get(hi));
      f.remove(hi);
      name.remove(hi);
      count.remove(hi);
    }
    return steps;
  }

  static IfmLayer randomLayer(Random rnd, int n0, int dIn, int dOut, int mode) {
    double[][] wIn = new double[n0][dIn];
    double[] bIn = new double[n0];
    double[][] wOut = new double[dOut][n0];
    int distinct = 1 + rnd.nextInt(Math.max(1, n0 / 3));
    int[] source = new int[n0];
    for (int u = 0; u < n0; u++) {
      // mode 2: copies of a few units (exact zero distances, then ties among centroids)
      source[u] = mode == 2 && u >= distinct ? rnd.nextInt(distinct) : u;
      for (int j = 0; j < dIn; j++) {
        wIn[u][j] = value(rnd, mode);
      }
      bIn[u] = value(rnd, mode);
      for (int o = 0; o < dOut; o++) {
        wOut[o][u] = value(rnd, mode);
      }
    }
    for (int u = 0; u < n0; u++) {
      int s = source[u];
      wIn[u] = wIn[s].clone();
      bIn[u] = bIn[s];
      for (int o = 0; o < dOut; o++) {
        wOut[o][u] = wOut[o][s];
      }
    }
    return new IfmLayer(wIn, bIn, wOut);
  }

  private static double value(Random rnd, int mode) {
    // mode 0: Gaussian; mode 1: {-1, 0, 1} (many exactly equal distances); mode 2: small ints
    return mode == 0 ? rnd.nextGaussian() : rnd.nextInt(3) - 1;
  }

  @Test
  void fastLoopGivesTheNaiveMergeSequence() {
    Random rnd = new Random(20240607);
    for (int trial = 0; trial < 300; trial++) {
      int mode = trial % 3;
      int n0 = 1 + rnd.nextInt(60);
      int dIn = 1 + rnd.nextInt(6);
      int dOut = 1 + rnd.nextInt(4);
      IfmLayer layer = randomLayer(rnd, n0, dIn, dOut, mode);
      MergeSequence fast = IterativeFeatureMerging.mergeSequence(layer);
      assertThat(fast.complete()).isTrue();
      assertThat(fast.steps())
          .as("trial %d (mode %d, n0 %d)", trial, mode, n0)
          .isEqualTo(naive(layer));
      // Every stop beta gives a prefix of the full order that ends at the first refusal.
      double beta = rnd.nextDouble();
      MergeSequence cut = IterativeFeatureMerging.mergeSequence(layer, beta);
      assertThat(fast.steps()).startsWith(cut.steps().toArray(new Merge[0]));
      assertThat(IterativeFeatureMerging.units(cut, beta))
          .isEqualTo(IterativeFeatureMerging.units(fast, beta));
    }
  }

  @Test
  void distanceKernelIsAPlainSumOfSquaredDifferences() {
    Random rnd = new Random(7);
    for (int len : new int[] {1, 3, 4, 255, 256, 257, 1000, 8193}) {
      double[] a = new double[len];
      double[] b = new double[len];
      double plain = 0;
      for (int k = 0; k < len; k++) {
        a[k] = rnd.nextGaussian();
        b[k] = rnd.nextGaussian();
        plain += (a[k] - b[k]) * (a[k] - b[k]);
      }
      // Both sums have non-negative terms, so they differ by at most len·ulp-scale rounding.
      assertThat(IterativeFeatureMerging.squaredDistance(a, b))
          .isCloseTo(plain, within(1e-12 * plain));
    }
  }

  @Test
  void plantedCopiesMergeIntoOneUnitEach() {
    Random rnd = new Random(11);
    int[] copies = {1, 2, 3, 4, 2};
    List<Integer> source = new ArrayList<>();
    for (int b = 0; b < copies.length; b++) {
      for (int c = 0; c < copies[b]; c++) {
        source.add(b);
      }
    }
    Collections.shuffle(source, rnd);
    int n0 = source.size();
    int dIn = 32;
    int dOut = 16;
    double[][] base = new double[copies.length][dIn + 1 + dOut];
    for (double[] row : base) {
      for (int k = 0; k < row.length; k++) {
        row[k] = rnd.nextGaussian();
      }
    }
    double[][] wIn = new double[n0][];
    double[] bIn = new double[n0];
    double[][] wOut = new double[dOut][n0];
    for (int u = 0; u < n0; u++) {
      double[] f = base[source.get(u)];
      wIn[u] = Arrays.copyOf(f, dIn);
      bIn[u] = f[dIn];
      for (int o = 0; o < dOut; o++) {
        wOut[o][u] = f[dIn + 1 + o];
      }
    }
    IfmLayer layer = new IfmLayer(wIn, bIn, wOut);
    MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
    // Copies are at distance 0 (a centroid of copies may be off by an ulp, hence ≤ 1e-24); five
    // Gaussian vectors in 49 dimensions are nowhere near a ratio of 0.1.
    int merges = n0 - copies.length;
    for (int t = 0; t < merges; t++) {
      assertThat(s.steps().get(t).dmin()).isLessThanOrEqualTo(1e-24);
    }
    assertThat(s.steps().get(merges).dmin() / s.steps().get(merges).dmax()).isGreaterThan(0.1);
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(copies.length);
    int[] group = s.groupsAfter(merges);
    for (int u = 0; u < n0; u++) {
      for (int v = 0; v < n0; v++) {
        assertThat(group[u] == group[v]).isEqualTo(source.get(u).equals(source.get(v)));
      }
    }
    IfmDataMoments d = new DataAwareIfm(layer, s).moments(randomRows(rnd, 50, dIn));
    // The compact layer of copies computes the same outputs; merging distinct units does not.
    assertThat(d.ifmDataUnits(1e-9)).isEqualTo(copies.length);
  }

  @Test
  void scaledCopiesAreNotIdenticalUnitVectors() {
    // Unit 1 = 2·unit 0 on the way in and ½ on the way out: relu(2w·x)·v/2 = relu(w·x)·v, the
    // same function. But §2.1 compares f_u = [w, b, v] directly and does not normalise, so
    // f_0 = (1,0,0,1) and f_1 = (2,0,0,0.5) are 1 + 0.25 = 1.25 apart, against D(0,2) = 2 and
    // D(1,2) = 4 + 1 + 0.25 = 5.25 to the orthogonal unit (0,1,0,1): 1.25 > 0.1·5.25, no merge.
    // (Summing their incoming rows would not even preserve the function: relu(3w·x)·0.75 =
    // 2.25·relu(w·x) against 2·relu(w·x).)
    IfmLayer layer =
        new IfmLayer(
            new double[][] {{1, 0}, {2, 0}, {0, 1}}, new double[3], new double[][] {{1, 0.5, 1}});
    MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
    assertThat(s.steps().get(0)).isEqualTo(new Merge(0, 1, 1.25, 5.25));
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(3);
    assertThat(IterativeFeatureMerging.units(s, 0.25)).isEqualTo(2); // 1.25 ≤ 1.3125
  }

  @Test
  void orthogonalUnitsOfEqualNormDoNotMerge() {
    // f_u = e_u (d_in = 8, zero bias and outgoing weights): every D = 2, so dmin = dmax and the
    // ratio is 1; only beta ≥ 1 merges, and then everything merges, pair (0,1) first.
    int n0 = 8;
    double[][] wIn = new double[n0][n0];
    for (int u = 0; u < n0; u++) {
      wIn[u][u] = 1;
    }
    IfmLayer layer = new IfmLayer(wIn, new double[n0], new double[1][n0]);
    MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
    assertThat(s.steps().get(0)).isEqualTo(new Merge(0, 1, 2, 2));
    assertThat(IterativeFeatureMerging.units(s, 0.99)).isEqualTo(n0);
    assertThat(IterativeFeatureMerging.units(layer, 0.1)).isEqualTo(n0);
    assertThat(IterativeFeatureMerging.units(s, 1.0)).isEqualTo(1);
  }

  @Test
  void oneUnitHasNothingToMerge() {
    IfmLayer layer = new IfmLayer(new double[][] {{1, 2}}, new double[] {3}, new double[][] {{4}});
    MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
    assertThat(s.steps()).isEmpty();
    assertThat(s.complete()).isTrue();
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(1);
  }

  @Test
  void nonFiniteWeightsGiveNull() {
    double[][] wIn = {{1, 0}, {0, 1}};
    assertThat(
            IterativeFeatureMerging.units(
                new IfmLayer(wIn, new double[] {0, Double.NaN}, new double[][] {{1, 1}}), 0.1))
        .isNull();
    assertThat(
            IterativeFeatureMerging.mergeSequence(
                new IfmLayer(wIn, new double[2], new double[][] {{1, Double.POSITIVE_INFINITY}})))
        .isNull();
    assertThat(
            IterativeFeatureMerging.mergeSequence(
                new IfmLayer(
                    new double[][] {{1, Double.NEGATIVE_INFINITY}, {0, 1}},
                    new double[2],
                    new double[][] {{1, 1}}),
                0.1))
        .isNull();
  }

  @Test
  void aStopBetaCutsTheOrderAfterItsFirstRefusal() {
    IfmLayer d =
        new IfmLayer(
            new double[][] {{1, 0}, {1, 0.2}, {0, 1}, {0.1, 1}, {-1, -1}},
            new double[5],
            new double[][] {{1, 2, 1, 1, 1}});
    MergeSequence cut = IterativeFeatureMerging.mergeSequence(d, 0.1);
    assertThat(cut.complete()).isFalse();
    assertThat(cut.steps()).hasSize(2); // step 2 (ratio 0.161491) is the first refusal
    assertThat(IterativeFeatureMerging.units(cut, 0.01)).isEqualTo(4);
    assertThat(IterativeFeatureMerging.units(cut, 0.1)).isEqualTo(4);
    assertThatThrownBy(() -> IterativeFeatureMerging.units(cut, 0.2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("stop beta");
    assertThatThrownBy(() -> new DataAwareIfm(d, cut))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("full merge order");
  }

  @Test
  void batchNormIsFoldedIntoTheIncomingRows() {
    // γ = 2, var + eps = 1: w′ = 2w = (2, 4), b′ = 2·(1 − 0.5) + 0.5 = 1.5.
    IfmLayer layer = new IfmLayer(new double[][] {{1, 2}}, new double[] {1}, new double[][] {{3}});
    IfmLayer folded =
        layer.foldBatchNorm(
            new double[] {2}, new double[] {0.5}, new double[] {0.5}, new double[] {0.96}, 0.04);
    assertThat(folded.wIn()[0][0]).isCloseTo(2, within(1e-15));
    assertThat(folded.wIn()[0][1]).isCloseTo(4, within(1e-15));
    assertThat(folded.bIn()[0]).isCloseTo(1.5, within(1e-15));
    assertThat(folded.wOut()).isSameAs(layer.wOut());
    // The folded unit computes the batch-normalised pre-activation for any input.
    Random rnd = new Random(3);
    double g = 0.7;
    double be = -0.2;
    double mu = 0.3;
    double var = 2.5;
    double eps = 1e-5;
    IfmLayer general =
        new IfmLayer(new double[][] {{0.4, -1.1}}, new double[] {0.25}, new double[][] {{1}});
    IfmLayer f =
        general.foldBatchNorm(
            new double[] {g}, new double[] {be}, new double[] {mu}, new double[] {var}, eps);
    for (int i = 0; i < 20; i++) {
      double x0 = rnd.nextGaussian();
      double x1 = rnd.nextGaussian();
      double z = 0.4 * x0 - 1.1 * x1 + 0.25;
      double bn = g * (z - mu) / Math.sqrt(var + eps) + be;
      assertThat(f.wIn()[0][0] * x0 + f.wIn()[0][1] * x1 + f.bIn()[0]).isCloseTo(bn, within(1e-12));
    }
  }

  @Test
  void aThousandUnitsMergeAllTheWay() {
    // Scale check for CI (the 4,096-unit figure is measured by hand, not in a timed test).
    Random rnd = new Random(5);
    int n0 = 1024;
    IfmLayer layer = randomLayer(rnd, n0, 256, 256, 0);
    // Three planted copies: the first three steps are exact zeros.
    layer.wIn()[700] = layer.wIn()[3].clone();
    layer.wIn()[900] = layer.wIn()[5].clone();
    layer.wIn()[1023] = layer.wIn()[1000].clone();
    for (int[] p : new int[][] {{3, 700}, {5, 900}, {1000, 1023}}) {
      layer.bIn()[p[1]] = layer.bIn()[p[0]];
      for (double[] row : layer.wOut()) {
        row[p[1]] = row[p[0]];
      }
    }
    MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
    assertThat(s.complete()).isTrue();
    assertThat(s.steps()).hasSize(n0 - 1);
    assertThat(s.steps().subList(0, 3))
        .extracting(Merge::first, Merge::second, Merge::dmin)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple(3, 700, 0.0),
            org.assertj.core.groups.Tuple.tuple(5, 900, 0.0),
            org.assertj.core.groups.Tuple.tuple(1000, 1023, 0.0));
    for (Merge m : s.steps()) {
      assertThat(m.dmin()).isLessThanOrEqualTo(m.dmax());
      assertThat(m.first()).isLessThan(m.second());
    }
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(n0 - 3);
    assertThat(IterativeFeatureMerging.units(layer, 0.1)).isEqualTo(n0 - 3);
  }

  static double[][] randomRows(Random rnd, int n, int d) {
    double[][] x = new double[n][d];
    for (double[] row : x) {
      for (int j = 0; j < d; j++) {
        row[j] = rnd.nextGaussian();
      }
    }
    return x;
  }
}
