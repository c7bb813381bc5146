package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.FeatureBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** V-information complexity (PROBES.md §2.4) against VI-1, closed-form cases and a naive fit. */
class VinfoTest {
  private static final int MAX = EffectiveRank.DEFAULT_MAX_WIDTH;
  private static final double ALPHA = VinfoProbe.DEFAULT_ALPHA;

  /*
   * 1e-9 absolute on R² and complexities (values in [0, 1]) against the naive fit and between merge
   * orders: both sides are float64 from the same widened features; they differ by rounding in
   * eigenvectors and solves of well-conditioned systems of width ≤ 6 (≈1e-13), while a wrong sign,
   * weight or half in the closed form is off by more than 1e-3.
   */
  private static final double SAME = 1e-9;

  @Test
  void vi1() {
    float[] a = {2, 2, -2, -2, 1, 1, -1, -1};
    float[] b = {1, -1, 1, -1, -1, 1, -1, 1};
    float[][] l1 = new float[8][1];
    float[][] l2 = new float[8][2];
    for (int i = 0; i < 8; i++) {
      l1[i][0] = a[i] + b[i];
      l2[i][0] = a[i];
      l2[i][1] = b[i];
    }
    VinfoProbe.Result r = run(new float[][][] {l1, l2}, 1, 3, VinfoDirections.DEFAULT_K, MAX);
    // PROBES.md §2.5 VI-1, given to 7 decimals: 5e-8 is half a unit in the last place.
    assertThat(r.r2().get(0)).isCloseTo(0.4999995, within(5e-8));
    assertThat(r.r2().get(1)).isCloseTo(0.9999982, within(5e-8));
    assertThat(r.complexity()).isCloseTo(0.2500011, within(5e-8));
    assertThat(r.directions()).isEqualTo(2);
    assertThat(r.directionComplexity().get(0)).isCloseTo(0.1428577, within(5e-8));
    assertThat(r.directionComplexity().get(1)).isCloseTo(0.3571445, within(5e-8));
    assertThat(r.notes()).isEmpty();
  }

  @Test
  void targetLinearInALayerScoresOneAndIndependentNoiseScoresZero() {
    Random rnd = new Random(31);
    int n = 2000;
    float[][] h = new float[n][3];
    float[][] lin = new float[n][3];
    float[][] noise = new float[n][4];
    for (int i = 0; i < n; i++) {
      h[i][0] = (float) (3 * rnd.nextGaussian() + 5);
      h[i][1] = (float) (2 * rnd.nextGaussian() - 1);
      h[i][2] = (float) (1.5 * rnd.nextGaussian());
      lin[i][0] = (float) (2.0 * h[i][2] + 1); // an invertible map of h with equal variances (9)
      lin[i][1] = -h[i][0];
      lin[i][2] = (float) (1.5 * h[i][1] + 3);
      for (int j = 0; j < 4; j++) {
        noise[i][j] = (float) rnd.nextGaussian();
      }
    }
    VinfoProbe.Result r = run(new float[][][] {lin, noise, h}, 2, 128, 8, MAX);
    assertThat(r.directions()).isEqualTo(3);
    /*
     * Exactly linear: only the ridge separates R² from 1. Along an eigendirection of C_xx with
     * eigenvalue c, θ shrinks by λ/(c + λ), λ = alpha·tr(C_xx)/d, so the held-out residual is about
     * (λ/c)² of the target's variance: 1e-6 for `lin` (isotropic, c = 9) and ≤ 5.1e-6 for h
     * (c = 9, 4, 2.25, λ = 5.1e-3). float32 rounding of `lin` adds ≈1e-14. Hence 1e-5.
     */
    assertThat(r.r2().get(0)).isCloseTo(1.0, within(1e-5));
    assertThat(r.r2().get(2)).isCloseTo(1.0, within(1e-5));
    /*
     * Independent noise (p = 4 predictors, 1000 samples per half): the held-out R² of a fit to pure
     * noise is −p/n_even ≈ −0.004 on average, with a spread of order 2√p/n ≈ 0.004; clipped at 0,
     * 0.02 is five spreads above the mean.
     */
    assertThat(r.r2().get(1)).isBetween(0.0, 0.02);
    assertThat(r.complexity()).isCloseTo(1.0 / 3, within(0.01));
    NaiveComplexity.Vinfo naive = naive(new float[][][] {lin, noise, h}, 2, 8);
    for (int l = 0; l < 3; l++) {
      assertThat(r.r2().get(l)).isCloseTo(naive.r2()[l], within(SAME));
    }
  }

  @Test
  void matchesANaiveFitOnRandomData() {
    Random rnd = new Random(32);
    for (int k : new int[] {1, 3, 8}) {
      float[][][] layers = correlatedLayers(rnd, 203);
      VinfoProbe.Result r = run(layers, 2, 17, k, MAX);
      NaiveComplexity.Vinfo naive = naive(layers, 2, k);
      assertThat(r.directions()).isEqualTo(naive.perDirection().length);
      for (int l = 0; l < layers.length; l++) {
        assertThat(r.r2().get(l)).as("k=%d layer %d", k, l).isCloseTo(naive.r2()[l], within(SAME));
      }
      assertThat(r.complexity()).isCloseTo(naive.complexity(), within(SAME));
      for (int j = 0; j < naive.perDirection().length; j++) {
        assertThat(r.directionComplexity().get(j)).isCloseTo(naive.perDirection()[j], within(SAME));
      }
    }
  }

  @Test
  void mergeIsAssociativeAndBatchOrderFree() {
    Random rnd = new Random(33);
    float[][][] layers = correlatedLayers(rnd, 150);
    VinfoDirections dirs = directions(layers, 2, 10, 3);
    List<VinfoState> parts = new ArrayList<>();
    int from = 0;
    while (from < 150) {
      int to = Math.min(150, from + 1 + rnd.nextInt(20));
      parts.add(VinfoState.of(dirs, batches(layers, from, to), 2, MAX));
      from = to;
    }
    VinfoState forward = foldState(dirs, layers, parts);
    VinfoState grouped =
        parts.get(0).merge(foldState(dirs, layers, parts.subList(1, parts.size())));
    List<VinfoState> shuffled = new ArrayList<>(parts);
    Collections.shuffle(shuffled, new Random(34));
    VinfoState reordered = foldState(dirs, layers, shuffled);
    for (VinfoState s : new VinfoState[] {grouped, reordered}) {
      assertSameState(s, forward);
      VinfoProbe.Result a = VinfoProbe.finish(s, ALPHA, names(3));
      VinfoProbe.Result b = VinfoProbe.finish(forward, ALPHA, names(3));
      for (int l = 0; l < 3; l++) {
        assertThat(a.r2().get(l)).isCloseTo(b.r2().get(l), within(SAME));
      }
      assertThat(a.complexity()).isCloseTo(b.complexity(), within(SAME));
    }
  }

  @Test
  void aSampleNonFiniteInAnyProbedLayerIsLeftOutEverywhere() {
    Random rnd = new Random(35);
    float[][][] layers = correlatedLayers(rnd, 41);
    float[][][] clean = new float[3][][];
    for (int l = 0; l < 3; l++) {
      clean[l] = Arrays.copyOf(layers[l], 40);
    }
    layers[0][40] = layers[0][40].clone();
    layers[0][40][1] = Float.NaN; // not the classifier-feeding layer
    VinfoDirections dirs = directions(clean, 2, 40, 3);
    VinfoState dirty = VinfoState.of(dirs, batches(layers, 0, 41), 2, MAX);
    VinfoState reference = VinfoState.of(dirs, batches(clean, 0, 40), 2, MAX);
    assertThat(dirty.skipped()).isEqualTo(1);
    assertThat(dirty.evenCount()).isEqualTo(20);
    assertThat(dirty.oddCount()).isEqualTo(20);
    assertSameState(dirty, reference);
  }

  @Test
  void fewerThanTwoSamplesInAHalfIsNull() {
    float[][] h = {{1, 0}, {0, 2}, {3, 1}};
    VinfoProbe.Result r = run(new float[][][] {h}, 0, 3, 8, MAX);
    assertThat(r.r2()).containsExactly((Double) null);
    assertThat(r.complexity()).isNull();
    assertThat(r.directions()).isNull();
    assertThat(r.notes())
        .containsExactly("vinfo: 2 even-index and 1 odd-index samples; each half needs at least 2");
  }

  @Test
  void aConstantClassifierLayerHasNoUsableDirection() {
    float[][] h = {{1, 2}, {1, 2}, {1, 2}, {1, 2}};
    float[][] x = {{1}, {2}, {3}, {4}};
    VinfoProbe.Result r = run(new float[][][] {x, h}, 1, 2, 8, MAX);
    assertThat(r.r2()).containsExactly(null, null);
    assertThat(r.complexity()).isNull();
    assertThat(r.notes())
        .containsExactly("vinfo: no usable direction (the classifier-feeding covariance is zero)");
  }

  @Test
  void aTargetConstantOnTheOddHalfIsDropped() {
    float[][] h = {{1}, {0}, {-1}, {0}, {2}, {0}};
    VinfoProbe.Result r = run(new float[][][] {h}, 0, 6, 8, MAX);
    assertThat(r.complexity()).isNull();
    assertThat(r.notes())
        .containsExactly("vinfo: no usable direction (every target is constant on the odd half)");
  }

  @Test
  void aTooWideLayerIsNullAndLeftOutOfTheMean() {
    Random rnd = new Random(36);
    float[][][] layers = correlatedLayers(rnd, 60); // widths 4, 6, 5
    VinfoProbe.Result narrow = run(layers, 2, 13, 3, MAX);
    VinfoProbe.Result limited = run(layers, 2, 13, 3, 5);
    assertThat(limited.r2().get(1)).isNull();
    assertThat(limited.r2().get(0)).isCloseTo(narrow.r2().get(0), within(SAME));
    assertThat(limited.r2().get(2)).isCloseTo(narrow.r2().get(2), within(SAME));
    assertThat(limited.complexity())
        .isCloseTo(1 - (narrow.r2().get(0) + narrow.r2().get(2)) / 2, within(SAME));
    assertThat(limited.notes())
        .containsExactly(
            "vinfo: layer L1 width 6 exceeds max_width = 5; left out of vinfo_complexity");

    VinfoProbe.Result wideClassifier = run(layers, 1, 13, 3, 5);
    assertThat(wideClassifier.r2()).containsExactly(null, null, null);
    assertThat(wideClassifier.directions()).isNull();
    assertThat(wideClassifier.notes())
        .containsExactly("vinfo: classifier-feeding layer width 6 exceeds max_width = 5");
  }

  @Test
  void stateSizeAtFiftyThousandSamplesIsIndependentOfN() {
    Random rnd = new Random(37);
    int[] widths = {16, 8};
    VinfoDirections dirs = null;
    VinfoState state = null;
    for (int batch = 0; batch < 100; batch++) { // 100 × 500 = 50,000 samples
      float[][][] layers = new float[2][500][];
      for (int i = 0; i < 500; i++) {
        for (int l = 0; l < 2; l++) {
          layers[l][i] = new float[widths[l]];
          for (int a = 0; a < widths[l]; a++) {
            layers[l][i][a] = (float) rnd.nextGaussian();
          }
        }
      }
      List<FeatureBatch> b = new ArrayList<>();
      for (int l = 0; l < 2; l++) {
        b.add(batch(layers[l], 0, 500, batch * 500L));
      }
      if (dirs == null) {
        dirs = VinfoDirections.of(ScatterMoments.of(b.get(1)), 4);
        state = VinfoState.empty(dirs, widths, 1, MAX);
      }
      state = state.merge(VinfoState.of(dirs, b, 1, MAX));
    }
    assertThat(state.evenCount() + state.oddCount()).isEqualTo(50_000);
    // Per layer and half d² + d·k′ + d + 2k′ doubles: 2·(256 + 64 + 16 + 8) + 2·(64 + 32 + 8 + 8).
    assertThat(state.storedDoubles()).isEqualTo(912);
    assertThat(dirs.storedDoubles()).isEqualTo(8 + 4 * 8 + 4);
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Pass 1 over the classifier layer, then pass 2 over every layer, in batches of {@code size}. */
  private static VinfoProbe.Result run(
      float[][][] layers, int classifier, int size, int k, int maxWidth) {
    int n = layers[0].length;
    int[] widths = new int[layers.length];
    for (int l = 0; l < layers.length; l++) {
      widths[l] = layers[l][0].length;
    }
    VinfoDirections dirs = directions(layers, classifier, size, k);
    VinfoState state = VinfoState.empty(dirs, widths, classifier, maxWidth);
    for (int from = 0; from < n; from += size) {
      int to = Math.min(n, from + size);
      state = state.merge(VinfoState.of(dirs, batches(layers, from, to), classifier, maxWidth));
    }
    return VinfoProbe.finish(state, ALPHA, names(layers.length));
  }

  private static VinfoDirections directions(float[][][] layers, int classifier, int size, int k) {
    int n = layers[0].length;
    ScatterMoments m = ScatterMoments.empty(layers[classifier][0].length);
    for (int from = 0; from < n; from += size) {
      m =
          m.merge(
              ScatterMoments.of(batch(layers[classifier], from, Math.min(n, from + size), from)));
    }
    return VinfoDirections.of(m, k);
  }

  private static VinfoState foldState(
      VinfoDirections dirs, float[][][] layers, List<VinfoState> parts) {
    int[] widths = new int[layers.length];
    for (int l = 0; l < layers.length; l++) {
      widths[l] = layers[l][0].length;
    }
    VinfoState s = VinfoState.empty(dirs, widths, 2, MAX);
    for (VinfoState p : parts) {
      s = s.merge(p);
    }
    return s;
  }

  private static List<FeatureBatch> batches(float[][][] layers, int from, int to) {
    List<FeatureBatch> out = new ArrayList<>();
    for (float[][] layer : layers) {
      out.add(batch(layer, from, to, from));
    }
    return out;
  }

  private static FeatureBatch batch(float[][] rows, int from, int to, long firstIndex) {
    int d = rows[0].length;
    float[] f = new float[(to - from) * d];
    for (int i = from; i < to; i++) {
      System.arraycopy(rows[i], 0, f, (i - from) * d, d);
    }
    return new FeatureBatch(to - from, d, f, new int[to - from], null, 0, firstIndex);
  }

  private static List<String> names(int layers) {
    List<String> names = new ArrayList<>();
    for (int l = 0; l < layers; l++) {
      names.add("L" + l);
    }
    return names;
  }

  private static NaiveComplexity.Vinfo naive(float[][][] layers, int classifier, int k) {
    double[][][] x = new double[layers.length][][];
    for (int l = 0; l < layers.length; l++) {
      x[l] = new double[layers[l].length][];
      for (int i = 0; i < layers[l].length; i++) {
        x[l][i] = new double[layers[l][i].length];
        for (int a = 0; a < layers[l][i].length; a++) {
          x[l][i][a] = layers[l][i][a];
        }
      }
    }
    return NaiveComplexity.vinfo(x, classifier, k, ALPHA);
  }

  /** Layers of widths 4, 6 and 5 (the last feeds the classifier), partly explained by it. */
  private static float[][][] correlatedLayers(Random rnd, int n) {
    float[][][] layers = {new float[n][4], new float[n][6], new float[n][5]};
    for (int i = 0; i < n; i++) {
      double[] h = new double[5];
      for (int a = 0; a < 5; a++) {
        h[a] = (a + 1) * rnd.nextGaussian() + a;
        layers[2][i][a] = (float) h[a];
      }
      for (int a = 0; a < 4; a++) {
        layers[0][i][a] = (float) (h[a] - 0.5 * h[a + 1] + 0.7 * rnd.nextGaussian());
      }
      for (int a = 0; a < 6; a++) {
        layers[1][i][a] = (float) (Math.tanh(0.3 * h[a % 5]) + 0.2 * rnd.nextGaussian() + 10);
      }
    }
    return layers;
  }

  private static void assertSameState(VinfoState actual, VinfoState expected) {
    assertThat(actual.evenCount()).isEqualTo(expected.evenCount());
    assertThat(actual.oddCount()).isEqualTo(expected.oddCount());
    for (int l = 0; l < expected.layers(); l++) {
      for (boolean isEven : new boolean[] {true, false}) {
        VinfoMoments a = isEven ? actual.even(l) : actual.odd(l);
        VinfoMoments e = isEven ? expected.even(l) : expected.odd(l);
        double scale = 0;
        for (int p = 0; p < e.width(); p++) {
          scale = Math.max(scale, e.xx(p, p));
        }
        for (int j = 0; j < e.directions(); j++) {
          scale = Math.max(scale, e.zz(j));
        }
        for (int p = 0; p < e.width(); p++) {
          assertThat(a.xMean(p)).isCloseTo(e.xMean(p), within(1e-9 * (1 + Math.abs(e.xMean(p)))));
          for (int q = 0; q < e.width(); q++) {
            assertThat(a.xx(p, q)).isCloseTo(e.xx(p, q), within(1e-9 * scale));
          }
          for (int j = 0; j < e.directions(); j++) {
            assertThat(a.xz(p, j)).isCloseTo(e.xz(p, j), within(1e-9 * scale));
          }
        }
        for (int j = 0; j < e.directions(); j++) {
          assertThat(a.zMean(j)).isCloseTo(e.zMean(j), within(1e-9));
          assertThat(a.zz(j)).isCloseTo(e.zz(j), within(1e-9 * scale));
        }
      }
    }
  }
}
