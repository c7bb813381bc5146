package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.FeatureBatch;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The d×d scatter state of PROBES.md §2.3: Chan merge, order freedom, non-finite rows. */
class ScatterMomentsTest {
  /*
   * 1e-9 relative (the brief's bound) for regrouped merges of unit-scale data; each grouping does a
   * few float64 operations per entry, so groupings differ by ≈1e-15 of the value, and a wrong
   * weight (n_A for n_B, n for n − 1) is off by percents.
   */
  private static final double REGROUPED = 1e-9;

  private static final int D = 5;

  @Test
  void mergeIsAssociativeCommutativeAndMatchesOnePassOverTheUnion() {
    Random rnd = new Random(11);
    double[][] x = gaussian(rnd, 37, D, 3.0);
    double[][] y = gaussian(rnd, 11, D, 3.0);
    double[][] z = gaussian(rnd, 53, D, 3.0);
    ScatterMoments a = ScatterMoments.of(D, x);
    ScatterMoments b = ScatterMoments.of(D, y);
    ScatterMoments c = ScatterMoments.of(D, z);
    ScatterMoments whole = ScatterMoments.of(D, concat(x, y, z));
    for (ScatterMoments m :
        new ScatterMoments[] {
          a.merge(b).merge(c), a.merge(b.merge(c)), c.merge(a.merge(b)), b.merge(a).merge(c)
        }) {
      assertSame(m, whole, REGROUPED);
    }
  }

  @Test
  void batchOrderDoesNotMatter() {
    Random rnd = new Random(12);
    List<double[][]> batches = new ArrayList<>();
    for (int b = 0; b < 20; b++) {
      batches.add(gaussian(rnd, 1 + rnd.nextInt(30), D, 1.0));
    }
    ScatterMoments forward = fold(batches);
    Collections.shuffle(batches, new Random(13));
    assertSame(fold(batches), forward, REGROUPED);
    Collections.reverse(batches);
    assertSame(fold(batches), forward, REGROUPED);
  }

  @Test
  void offsetDataKeepsItsSmallSpread() {
    // Features near 1e6 with spread 1e-3: Σhhᵀ − nμμᵀ would lose every digit (1e12 vs 1e-6 per
    // entry), Chan's update loses almost none. Reference: two passes over the union.
    Random rnd = new Random(14);
    List<double[][]> batches = new ArrayList<>();
    for (int b = 0; b < 10; b++) {
      double[][] rows = gaussian(rnd, 17, D, 1e-3);
      for (double[] r : rows) {
        for (int j = 0; j < D; j++) {
          r[j] += 1e6;
        }
      }
      batches.add(rows);
    }
    ScatterMoments whole = ScatterMoments.of(D, concat(batches.toArray(new double[0][][])));
    assertSame(fold(batches), whole, 1e-6);
  }

  @Test
  void nonFiniteRowsAreCountedAndSkipped() {
    float nan = Float.NaN;
    float inf = Float.POSITIVE_INFINITY;
    float[] h = {2, 0, nan, 1, -2, 0, 0, 1, 5, inf, 0, -1};
    ScatterMoments m = ScatterMoments.of(FeatureBatch.of(6, 2, h, new int[6]));
    assertThat(m.count()).isEqualTo(4);
    assertThat(m.nonfinite()).isEqualTo(2);
    // The finite rows are ER-1's (2,0), (−2,0), (0,1), (0,−1): M2 = diag(8, 2).
    assertThat(m.scatterAt(0, 0)).isEqualTo(8.0);
    assertThat(m.scatterAt(1, 1)).isEqualTo(2.0);
    assertThat(m.scatterAt(0, 1)).isEqualTo(0.0);
    ScatterMoments merged = m.merge(ScatterMoments.of(2, new double[] {Double.NaN, 0}));
    assertThat(merged.nonfinite()).isEqualTo(3);
    assertThat(merged.count()).isEqualTo(4);
  }

  @Test
  void logitsThatAreNotFiniteDropTheRow() {
    FeatureBatch b =
        new FeatureBatch(
            2, 1, new float[] {1, 2}, new int[2], new float[] {0, Float.NaN, 1, 1}, 2, 0);
    ScatterMoments m = ScatterMoments.of(b);
    assertThat(m.count()).isEqualTo(1);
    assertThat(m.nonfinite()).isEqualTo(1);
    assertThat(m.mean()).containsExactly(2.0);
  }

  @Test
  void emptyIsTheIdentity() {
    ScatterMoments a = ScatterMoments.of(D, gaussian(new Random(15), 9, D, 1.0));
    assertSame(ScatterMoments.empty(D).merge(a), a, 0);
    assertSame(a.merge(ScatterMoments.empty(D)), a, 0);
  }

  @Test
  void widthsMustAgree() {
    assertThatThrownBy(() -> ScatterMoments.empty(2).merge(ScatterMoments.empty(3)))
        .hasMessageContaining("width 2 and 3");
  }

  @Test
  void stateSizeDoesNotGrowWithSamples() {
    Random rnd = new Random(16);
    ScatterMoments m = ScatterMoments.empty(16);
    for (int b = 0; b < 100; b++) { // 50,000 samples
      m = m.merge(ScatterMoments.of(16, gaussian(rnd, 500, 16, 1.0)));
    }
    assertThat(m.count()).isEqualTo(50_000);
    assertThat(m.storedDoubles()).isEqualTo(16 * 16 + 16);
  }

  private static ScatterMoments fold(List<double[][]> batches) {
    ScatterMoments m = ScatterMoments.empty(D);
    for (double[][] b : batches) {
      m = m.merge(ScatterMoments.of(D, b));
    }
    return m;
  }

  static void assertSame(ScatterMoments actual, ScatterMoments expected, double rel) {
    assertThat(actual.count()).isEqualTo(expected.count());
    assertThat(actual.nonfinite()).isEqualTo(expected.nonfinite());
    int d = expected.width();
    double scale = 0;
    for (int a = 0; a < d; a++) {
      scale = Math.max(scale, Math.abs(expected.scatterAt(a, a)));
    }
    for (int a = 0; a < d; a++) {
      double mu = expected.meanAt(a);
      assertThat(actual.meanAt(a)).isCloseTo(mu, within(rel * Math.max(1, Math.abs(mu))));
      for (int b = 0; b < d; b++) {
        assertThat(actual.scatterAt(a, b)).isCloseTo(expected.scatterAt(a, b), within(rel * scale));
      }
    }
  }

  static double[][] gaussian(Random rnd, int n, int d, double scale) {
    double[][] rows = new double[n][d];
    for (double[] r : rows) {
      for (int j = 0; j < d; j++) {
        r[j] = scale * rnd.nextGaussian() + j;
      }
    }
    return rows;
  }

  static double[][] concat(double[][]... parts) {
    List<double[]> all = new ArrayList<>();
    for (double[][] p : parts) {
      Collections.addAll(all, p);
    }
    return all.toArray(new double[0][]);
  }
}
