package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@code effective_rank} (PROBES.md §2.3) against hand cases, closed forms and a direct SVD. */
class EffectiveRankTest {
  private static final int MAX = EffectiveRank.DEFAULT_MAX_WIDTH;

  @Test
  void er1() {
    // s = (√8, √2), p = (2/3, 1/3): exp(−⅔ ln ⅔ − ⅓ ln ⅓) = 1.8898816 (PROBES.md §2.5)
    ScatterMoments m =
        ScatterMoments.of(
            2,
            new double[] {2, 0},
            new double[] {-2, 0},
            new double[] {0, 1},
            new double[] {0, -1});
    double expected = Math.exp(-(2.0 / 3) * Math.log(2.0 / 3) - (1.0 / 3) * Math.log(1.0 / 3));
    assertThat(EffectiveRank.of(m, MAX).value()).isCloseTo(expected, within(1e-12));
    assertThat(EffectiveRank.of(m, MAX).value()).isCloseTo(1.8898816, within(5e-8));
  }

  @Test
  void er2DropsTheZeroSingularValue() {
    ScatterMoments m =
        ScatterMoments.of(
            3,
            new double[] {6, 5, 5},
            new double[] {4, 5, 5},
            new double[] {5, 6, 5},
            new double[] {5, 4, 5});
    assertThat(EffectiveRank.of(m, MAX).value()).isCloseTo(2.0, within(1e-12));
  }

  @Test
  void er3OneWideLayer() {
    ScatterMoments spread =
        ScatterMoments.of(1, new double[] {1}, new double[] {2}, new double[] {3});
    assertThat(EffectiveRank.of(spread, MAX).value()).isEqualTo(1.0);
    EffectiveRank.Result constant =
        EffectiveRank.of(ScatterMoments.of(1, new double[] {1}, new double[] {1}), MAX);
    assertThat(constant.value()).isNull();
    assertThat(constant.note())
        .isEqualTo("effective_rank: every feature is constant (all singular values are 0)");
  }

  @Test
  void fewerThanTwoSamplesIsNull() {
    EffectiveRank.Result r = EffectiveRank.of(ScatterMoments.of(2, new double[] {1, 2}), MAX);
    assertThat(r.value()).isNull();
    assertThat(r.note()).isEqualTo("effective_rank: 1 finite samples; needs at least 2");
  }

  @Test
  void tooWideIsNullWithANote() {
    ScatterMoments m = ScatterMoments.of(3, new double[] {1, 2, 3}, new double[] {0, 0, 1});
    EffectiveRank.Result r = EffectiveRank.of(m, 2);
    assertThat(r.value()).isNull();
    assertThat(r.note()).isEqualTo("effective_rank: layer width 3 exceeds max_width = 2");
    assertThat(EffectiveRank.fits(4096, MAX)).isTrue();
    assertThat(EffectiveRank.fits(4097, MAX)).isFalse();
  }

  @Test
  void knownSpectrumGivesTheClosedForm() {
    // X = Q·diag(s)·Vᵀ + offset with Q (N×r) orthonormal and centred, V (d×r) orthonormal: the
    // centred matrix is Q·diag(s)·Vᵀ, whose singular values are exactly s.
    double[][] spectra = {{5, 3, 1, 0.5}, {1, 1, 1, 1, 1}, {10, 1e-3}, {7}, {4, 2, 1e-7}};
    Random rnd = new Random(21);
    for (double[] s : spectra) {
      int n = 40;
      int d = 6;
      double[][] q = orthonormalCentredColumns(rnd, n, s.length);
      double[][] v = orthonormalColumns(rnd, d, s.length);
      double[][] x = new double[n][d];
      for (int i = 0; i < n; i++) {
        for (int a = 0; a < d; a++) {
          x[i][a] = 100 + a; // an offset the centring must remove
          for (int r = 0; r < s.length; r++) {
            x[i][a] += q[i][r] * s[r] * v[a][r];
          }
        }
      }
      double total = 0;
      for (double sj : s) {
        total += s[0] > 0 && sj * sj > 1e-12 * s[0] * s[0] ? sj : 0;
      }
      double h = 0;
      for (double sj : s) {
        if (sj * sj > 1e-12 * s[0] * s[0]) {
          h -= (sj / total) * Math.log(sj / total);
        }
      }
      // Streamed in batches of 7 to exercise the merge as well.
      ScatterMoments m = ScatterMoments.empty(d);
      for (int i = 0; i < n; i += 7) {
        m = m.merge(ScatterMoments.of(d, Arrays.copyOfRange(x, i, Math.min(n, i + 7))));
      }
      // 1e-9: rounding of the 1e2 offset (≈1e-14 relative) through an eigensolve, which moves
      // λ = 1e-6 (s = 1e-3) by ≈1e-8 relative. s = 1e-7 has s² = 6e-16·s_max², under the cut, so
      // it must not count; counting it would move the value by ≈1e-7.
      assertThat(EffectiveRank.of(m, MAX).value())
          .as("spectrum %s", Arrays.toString(s))
          .isCloseTo(Math.exp(h), within(1e-9));
    }
  }

  @Test
  void matchesTheSingularValuesOfTheCentredMatrixOnRandomData() {
    Random rnd = new Random(22);
    for (int trial = 0; trial < 10; trial++) {
      int n = 3 + rnd.nextInt(40);
      int d = 1 + rnd.nextInt(12);
      double[][] x = new double[n][d];
      for (double[] r : x) {
        for (int a = 0; a < d; a++) {
          r[a] = rnd.nextGaussian() * (a + 1) + 3 * a;
        }
      }
      if (d > 2) {
        for (double[] r : x) {
          r[d - 1] = r[0] - 2 * r[1]; // a zero singular value to drop
        }
      }
      Double expected = NaiveComplexity.effectiveRank(x);
      assertThat(EffectiveRank.of(ScatterMoments.of(d, x), MAX).value())
          .isCloseTo(expected, within(1e-9 * expected));
    }
  }

  private static double[][] orthonormalCentredColumns(Random rnd, int n, int r) {
    double[][] a = new double[n][r];
    for (double[] row : a) {
      for (int j = 0; j < r; j++) {
        row[j] = rnd.nextGaussian();
      }
    }
    for (int j = 0; j < r; j++) {
      double m = 0;
      for (double[] row : a) {
        m += row[j] / n;
      }
      for (double[] row : a) {
        row[j] -= m;
      }
    }
    return gramSchmidt(a);
  }

  private static double[][] orthonormalColumns(Random rnd, int n, int r) {
    double[][] a = new double[n][r];
    for (double[] row : a) {
      for (int j = 0; j < r; j++) {
        row[j] = rnd.nextGaussian();
      }
    }
    return gramSchmidt(a);
  }

  /** Modified Gram–Schmidt on the columns, twice for orthogonality to rounding. */
  private static double[][] gramSchmidt(double[][] a) {
    int n = a.length;
    int r = a[0].length;
    for (int pass = 0; pass < 2; pass++) {
      for (int j = 0; j < r; j++) {
        for (int p = 0; p < j; p++) {
          double dot = 0;
          for (double[] row : a) {
            dot += row[p] * row[j];
          }
          for (double[] row : a) {
            row[j] -= dot * row[p];
          }
        }
        double norm = 0;
        for (int i = 0; i < n; i++) {
          norm += a[i][j] * a[i][j];
        }
        norm = Math.sqrt(norm);
        for (int i = 0; i < n; i++) {
          a[i][j] /= norm;
        }
      }
    }
    return a;
  }
}
