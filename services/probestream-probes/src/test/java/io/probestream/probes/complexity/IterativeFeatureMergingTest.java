package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.complexity.IterativeFeatureMerging.Merge;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import java.math.BigDecimal;
import java.math.MathContext;
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
   * position order, every pair rescanned at every step. It uses the production {@code
   * squaredDistance} on purpose, so that exact ties (integer weights, copies) compare bit for bit
   * and the test checks the bookkeeping (row minima, rescans, tie order, panels); that the panel
   * kernel sums every pair exactly as {@code squaredDistance} does is checked in {@link
   * #panelKernelSumsEveryPairInTheOrderOfSquaredDistance}.
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
  void fastLoopGivesTheNaiveMergeSequenceAcrossPanels() {
    // Two full panels and part of a third: tiles off and on the diagonal, slots moved between
    // panels as units merge away, and (L = 70 > K_BLOCK) sums carried across row blocks.
    int n0 = 2 * IterativeFeatureMerging.PANEL + 37;
    assertThat(40 + 1 + 29).isGreaterThan(IterativeFeatureMerging.K_BLOCK);
    Random rnd = new Random(42);
    for (int[] shape : new int[][] {{0, 40, 29}, {2, 5, 3}}) {
      IfmLayer layer = randomLayer(rnd, n0, shape[1], shape[2], shape[0]);
      assertThat(IterativeFeatureMerging.mergeSequence(layer).steps())
          .as("mode %d, d_in %d, d_out %d", shape[0], shape[1], shape[2])
          .isEqualTo(naive(layer));
    }
  }

  @Test
  void squaredDistanceAddsItsTermsInIncreasingK() {
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
      // The order is part of the definition here, so the two agree exactly, not within a bound.
      assertThat(IterativeFeatureMerging.squaredDistance(a, b)).isEqualTo(plain);
    }
  }

  @Test
  void panelKernelSumsEveryPairInTheOrderOfSquaredDistance() {
    // Terms spread over 12 decades, so that adding them in any other order changes the last bits
    // (checked below: the reversed order differs somewhere). Many random shapes, so that C2 has
    // compiled (and vectorized) the kernel well before the last ones.
    Random rnd = new Random(13);
    boolean orderMatters = false;
    for (int trial = 0; trial < 3000; trial++) {
      int len = 1 + rnd.nextInt(trial < 2990 ? 40 : 9000);
      int width = 1 + rnd.nextInt(trial % 10 == 0 ? 300 : 20);
      double[][] panel = new double[len][width];
      double[] x = new double[len];
      for (int k = 0; k < len; k++) {
        x[k] = spread(rnd);
        for (int j = 0; j < width; j++) {
          panel[k][j] = spread(rnd);
        }
      }
      // Split k at a random point and give the second part its own copy of x, shifted, as the
      // tiles of the initial matrix do; start j at a random column, as a diagonal tile does.
      int split = rnd.nextInt(len + 1);
      int jFrom = rnd.nextInt(width);
      double[] tail = Arrays.copyOfRange(x, split, len);
      double[] acc = new double[width];
      IterativeFeatureMerging.accumulate(acc, panel, jFrom, width, x, 0, 0, split);
      IterativeFeatureMerging.accumulate(acc, panel, jFrom, width, tail, -split, split, len);
      for (int j = 0; j < width; j++) {
        double[] column = new double[len];
        for (int k = 0; k < len; k++) {
          column[k] = panel[k][j];
        }
        double expected = j < jFrom ? 0 : IterativeFeatureMerging.squaredDistance(x, column);
        assertThat(acc[j]).as("trial %d, len %d, column %d", trial, len, j).isEqualTo(expected);
        double reversed = 0;
        for (int k = len - 1; k >= 0; k--) {
          reversed += (x[k] - column[k]) * (x[k] - column[k]);
        }
        orderMatters |= j >= jFrom && reversed != expected;
      }
    }
    assertThat(orderMatters).isTrue();
  }

  @Test
  void mergeBracketHoldsTheSummedDistance() {
    // The lazy refresh is only as good as this bracket: for g, h merged into m and a third group
    // k, D(m,k) as squaredDistance sums it must lie in [lo, hi] built from D(g,k), D(h,k), D(g,h)
    // alone. Hard cases on purpose: h a near-copy of g, k a near-copy of the merged centroid (the
    // identity cancels there), counts up to a million, magnitudes down to where squares underflow.
    Random rnd = new Random(17);
    for (int trial = 0; trial < 20000; trial++) {
      int dIn = 1 + rnd.nextInt(trial % 100 == 0 ? 3000 : 60);
      double scale =
          Math.pow(10, new int[] {0, 0, 0, -5, 5, -100, 100, -161, -162, 150}[trial % 10]);
      double cg = trial % 3 == 0 ? 1 : 1 + rnd.nextInt(1_000_000);
      double ch = trial % 5 == 0 ? 1 : 1 + rnd.nextInt(1_000_000);
      double[][] f = new double[3][dIn + 2];
      double nearness = Math.pow(10, -rnd.nextInt(14));
      for (int k = 0; k < dIn + 2; k++) {
        f[0][k] = scale * rnd.nextGaussian();
        f[1][k] =
            trial / 4 % 2 == 0
                ? f[0][k] + nearness * scale * rnd.nextGaussian()
                : scale * rnd.nextGaussian();
        double centre = (cg * f[0][k] + ch * f[1][k]) / (cg + ch);
        f[2][k] =
            switch (trial % 4) {
              case 0 -> centre + nearness * scale * rnd.nextGaussian();
              case 1 -> centre;
              case 2 -> f[0][k];
              default -> scale * rnd.nextGaussian();
            };
      }
      double x = IterativeFeatureMerging.squaredDistance(f[0], f[2]);
      double y = IterativeFeatureMerging.squaredDistance(f[1], f[2]);
      double z = IterativeFeatureMerging.squaredDistance(f[0], f[1]);
      IterativeFeatureMerging.Centroids centroids =
          new IterativeFeatureMerging.Centroids(layerOf(f));
      double eta = centroids.merge(0, 1, cg, ch);
      double[] m = new double[dIn + 2];
      centroids.copy(0, m);
      double expected = IterativeFeatureMerging.squaredDistance(m, f[2]);
      // The inputs may be brackets themselves (after earlier merges), around the true values.
      double widen = trial % 7 == 0 ? 1e-9 * rnd.nextDouble() : 0;
      IterativeFeatureMerging.MergeBounds bounds =
          new IterativeFeatureMerging.MergeBounds(cg, ch, z, eta, dIn + 2);
      bounds.bracket(x * (1 - widen), x * (1 + widen), y * (1 - widen), y * (1 + widen));
      assertThat(expected)
          .as("trial %d: D(m,k) = %s, bracket [%s, %s]", trial, expected, bounds.lo, bounds.hi)
          .isBetween(bounds.lo, bounds.hi);
      if (widen == 0 && Math.abs(Math.log10(scale)) < 10) {
        // Not vacuous: ~γ·D from the sums plus (√D + η)² − (√D − η)² = 4η√D from the rounded
        // centroid, which dominates when D is far below |F|² (near-copies).
        assertThat(bounds.hi - bounds.lo)
            .isLessThanOrEqualTo(1e-9 * (x + y + z) + 5 * eta * (Math.sqrt(x + y) + eta));
      }
    }
  }

  @Test
  void centroidErrorBoundCoversTheRoundedMerge() {
    // η from Centroids.merge against |F̂ − F*| computed in 50-digit decimal arithmetic.
    Random rnd = new Random(19);
    MathContext mc = new MathContext(50);
    for (int trial = 0; trial < 1000; trial++) {
      int len = 3 + rnd.nextInt(100);
      double scale = Math.pow(10, new int[] {0, -200, 150, -310}[trial % 4]);
      double[][] f = new double[3][len];
      for (int k = 0; k < len; k++) {
        f[0][k] = scale * rnd.nextGaussian();
        f[1][k] = scale * rnd.nextGaussian();
      }
      long cg = 1 + rnd.nextInt(trial % 2 == 0 ? 3 : 1_000_000);
      long ch = 1 + rnd.nextInt(trial % 3 == 0 ? 3 : 1_000_000);
      IterativeFeatureMerging.Centroids centroids =
          new IterativeFeatureMerging.Centroids(layerOf(f));
      double eta = centroids.merge(0, 1, cg, ch);
      double[] m = new double[len];
      centroids.copy(0, m);
      BigDecimal error = BigDecimal.ZERO;
      for (int k = 0; k < len; k++) {
        BigDecimal exact =
            new BigDecimal(f[0][k])
                .multiply(BigDecimal.valueOf(cg))
                .add(new BigDecimal(f[1][k]).multiply(BigDecimal.valueOf(ch)))
                .divide(BigDecimal.valueOf(cg + ch), mc);
        BigDecimal diff = new BigDecimal(m[k]).subtract(exact);
        error = error.add(diff.multiply(diff));
      }
      assertThat(new BigDecimal(eta).pow(2)).as("trial %d", trial).isGreaterThanOrEqualTo(error);
    }
  }

  /** A layer whose unit vectors are the rows of f (d_in = length − 2, d_out = 1). */
  private static IfmLayer layerOf(double[][] f) {
    int n = f.length;
    int dIn = f[0].length - 2;
    double[][] wIn = new double[n][];
    double[] bIn = new double[n];
    double[][] wOut = new double[1][n];
    for (int u = 0; u < n; u++) {
      wIn[u] = Arrays.copyOf(f[u], dIn);
      bIn[u] = f[u][dIn];
      wOut[0][u] = f[u][dIn + 1];
    }
    return new IfmLayer(wIn, bIn, wOut);
  }

  private static double spread(Random rnd) {
    return rnd.nextGaussian() * Math.pow(10, rnd.nextInt(12) - 6);
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
