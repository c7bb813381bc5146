package io.probestream.probes.collapse;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.FeatureBatch;
import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The pass-1 state's merge (PROBES.md §0): order-free, exact, and safe on offset data. */
class CollapseMergeTest {
  /*
   * 1e-12 relative for regrouped merges of unit-scale data: each way of grouping three states does
   * a handful of float64 operations per value, so the groupings differ by a few roundings (≈1e-15
   * of the value); the margin covers a change of seed, and a wrong weight in the update (n_A for
   * n_B, n for n − 1) is off by percents.
   */
  private static final double REGROUPED = 1e-12;

  private static final int D = 4;

  @Test
  void mergeIsAssociativeAndCommutative() {
    Random rnd = new Random(101);
    // Class 0 is in every state, class 1 only in a and b, class 2 only in c, class 3 only in a.
    CollapseMoments a = CollapseMoments.of(batch(rnd, 37, new int[] {0, 1, 3}, 0));
    CollapseMoments b = CollapseMoments.of(batch(rnd, 11, new int[] {0, 1}, 37));
    CollapseMoments c = CollapseMoments.of(batch(rnd, 53, new int[] {0, 2}, 48));

    CollapseMoments leftFirst = a.merge(b).merge(c);
    CollapseMoments rightFirst = a.merge(b.merge(c));
    CollapseMoments lastFirst = c.merge(a.merge(b));
    CollapseMoments swapped = b.merge(a).merge(c);

    assertThat(leftFirst.classes().keySet()).containsExactly(0, 1, 2, 3);
    assertThat(leftFirst.samples()).isEqualTo(101);
    for (CollapseMoments other : new CollapseMoments[] {rightFirst, lastFirst, swapped}) {
      assertSameMoments(other, leftFirst, REGROUPED);
    }
  }

  @Test
  void chanMergeMatchesOneTwoPassComputationOverTheUnion() {
    // The merged state must be the state of the concatenated batch, computed here by
    // CollapseMoments.of over one batch (two passes, no merge at all).
    Random rnd = new Random(102);
    FeatureBatch x = batch(rnd, 40, new int[] {0, 1, 2}, 0);
    FeatureBatch y = batch(rnd, 25, new int[] {1, 2}, 40);
    CollapseMoments merged = CollapseMoments.of(x).merge(CollapseMoments.of(y));
    assertSameMoments(merged, CollapseMoments.of(concat(x, y)), REGROUPED);
  }

  @Test
  void mergingWithTheEmptyStateIsTheIdentity() {
    Random rnd = new Random(103);
    FeatureBatch x = batch(rnd, 30, new int[] {0, 2, 5}, 0);
    float[] poisoned = x.features().clone();
    poisoned[3] = Float.NaN; // one non-finite row, so the count of dropped rows is carried too
    CollapseMoments a =
        CollapseMoments.of(FeatureBatch.of(x.rows(), D, poisoned, x.labels().clone()));
    CollapseMoments empty = CollapseMoments.empty(D);

    // Nothing is combined with an empty state, so the result is bit for bit the same.
    assertSameMoments(a.merge(empty), a, 0);
    assertSameMoments(empty.merge(a), a, 0);
    assertThat(a.merge(empty).nonfinite()).isEqualTo(1);
    assertThat(empty.merge(empty).classes()).isEmpty();
    assertThat(empty.merge(empty).samples()).isZero();
    CollapseMoments ofNothing = CollapseMoments.of(FeatureBatch.of(0, D, new float[0], new int[0]));
    assertSameMoments(ofNothing, empty, 0);
  }

  @Test
  void mergingStatesOfDifferentWidthsNamesBothWidths() {
    CollapseMoments five = CollapseMoments.empty(5);
    CollapseMoments seven = CollapseMoments.empty(7);
    assertThatThrownBy(() -> five.merge(seven))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageMatching(".*\\b5\\b.*\\b7\\b.*");
    assertThatThrownBy(() -> seven.merge(five))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageMatching(".*\\b7\\b.*\\b5\\b.*");

    ClassMoments narrow = ClassMoments.of(new double[] {1, 2, 3, 4, 5});
    ClassMoments wide = ClassMoments.of(new double[] {1, 2, 3, 4, 5, 6, 7});
    assertThatThrownBy(() -> narrow.merge(wide))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageMatching(".*\\b5\\b.*\\b7\\b.*");
  }

  /*
   * Two batches of one class at 1e8 plus noise of up to ±0.1, on a grid of 2^-10 so that every
   * batch-local quantity is exact in float64: the values, their sums (below 2^43), the means (n
   * is a power of two) and the within-batch scatters. What is left is the merge itself: δ is exact,
   * so n_A·n_B/n·δ² and two additions cost a few roundings: 1e-14 relative. The raw formula
   * Σh² − n·μ² on the same numbers is off by more than ten times the scatter itself (asserted
   * below, so the test keeps its teeth): its terms are 1e16 per value, where a float64 rounding is
   * about 1, against a scatter of about 1.
   */
  @Test
  void chanMergeOnOffsetDataMatchesExactTwoPassScatter() {
    Random rnd = new Random(104);
    double offset = 1e8;
    double grid = 0x1p-10;
    int d = 3;
    double[][] first = new double[64][d];
    double[][] second = new double[32][d];
    for (double[] row : first) {
      for (int j = 0; j < d; j++) {
        row[j] = offset + grid * (rnd.nextInt(205) - 102);
      }
    }
    for (double[] row : second) {
      for (int j = 0; j < d; j++) {
        row[j] = offset + grid * (51 + rnd.nextInt(205) - 102); // shifted by about 0.05
      }
    }
    ClassMoments merged = ClassMoments.of(first).merge(ClassMoments.of(second));

    double[][] all = new double[96][];
    System.arraycopy(first, 0, all, 0, 64);
    System.arraycopy(second, 0, all, 64, 32);
    BigDecimal[] exactMean = exactMean(all);
    BigDecimal exactScatter = exactScatter(all, exactMean);

    assertThat(merged.count()).isEqualTo(96);
    for (int j = 0; j < d; j++) {
      assertThat(merged.mean()[j]).isCloseTo(exactMean[j].doubleValue(), within(Math.ulp(offset)));
    }
    double want = exactScatter.doubleValue();
    assertThat(merged.scatter()).isCloseTo(want, within(1e-14 * want));

    double raw = 0;
    for (int j = 0; j < d; j++) {
      double sum = 0;
      double sumSq = 0;
      for (double[] row : all) {
        sum += row[j];
        sumSq += row[j] * row[j];
      }
      raw += sumSq - sum * sum / all.length;
    }
    assertThat(Math.abs(raw - want)).isGreaterThan(10 * want);
  }

  /*
   * The same through the float32 path (FeatureBatch → CollapseMoments): float32 at 1e8 has a
   * spacing of 8, so the noise is 8·k, |k| ≤ 4, and the batches have 50 and 70 rows, so the means
   * are rounded. Each batch sum is exact (multiples of 8 below 2^53); each mean is within half an
   * ulp(1e8) = 7.45e-9 of the truth, so δ is within ulp(1e8) = 1.49e-8, and n_A·n_B/n·δ² with
   * |δ| ≈ 16 (the second batch is shifted by 16) is within 2·1.49e-8/16 ≈ 2e-9 of itself; the
   * within-batch scatters are exact to rounding. Hence 1e-8 relative. The raw formula is off by
   * more than 1e-4 here.
   */
  @Test
  void chanMergeOfFloatBatchesAtOneE8MatchesExactTwoPassScatter() {
    Random rnd = new Random(105);
    int d = 2;
    float[] first = new float[50 * d];
    float[] second = new float[70 * d];
    for (int i = 0; i < first.length; i++) {
      first[i] = (float) (1e8 + 8 * (rnd.nextInt(9) - 4));
    }
    for (int i = 0; i < second.length; i++) {
      second[i] = (float) (1e8 + 16 + 8 * (rnd.nextInt(9) - 4));
    }
    CollapseMoments merged =
        CollapseMoments.of(FeatureBatch.of(50, d, first, new int[50]))
            .merge(CollapseMoments.of(FeatureBatch.of(70, d, second, new int[70])));

    double[][] all = new double[120][d];
    for (int i = 0; i < 120; i++) {
      for (int j = 0; j < d; j++) {
        all[i][j] = i < 50 ? first[i * d + j] : second[(i - 50) * d + j];
      }
    }
    BigDecimal[] exactMean = exactMean(all);
    double want = exactScatter(all, exactMean).doubleValue();

    ClassMoments only = merged.classes().get(0);
    assertThat(only.count()).isEqualTo(120);
    for (int j = 0; j < d; j++) {
      assertThat(only.mean()[j]).isCloseTo(exactMean[j].doubleValue(), within(2 * Math.ulp(1e8)));
    }
    assertThat(only.scatter()).isCloseTo(want, within(1e-8 * want));

    double raw = 0;
    for (int j = 0; j < d; j++) {
      double sum = 0;
      double sumSq = 0;
      for (double[] row : all) {
        sum += row[j];
        sumSq += row[j] * row[j];
      }
      raw += sumSq - sum * sum / all.length;
    }
    assertThat(Math.abs(raw - want)).isGreaterThan(1e-4 * want);
  }

  // ---- helpers ----

  /** Unit-scale features around per-class centres, labels drawn from {@code classes}. */
  private static FeatureBatch batch(Random rnd, int rows, int[] classes, long firstIndex) {
    float[] h = new float[rows * D];
    int[] y = new int[rows];
    for (int i = 0; i < rows; i++) {
      y[i] = classes[i < classes.length ? i : rnd.nextInt(classes.length)];
      for (int j = 0; j < D; j++) {
        h[i * D + j] = (float) (3 + y[i] - j + rnd.nextGaussian());
      }
    }
    return new FeatureBatch(rows, D, h, y, null, 0, firstIndex);
  }

  private static FeatureBatch concat(FeatureBatch x, FeatureBatch y) {
    int rows = x.rows() + y.rows();
    float[] h = new float[rows * D];
    System.arraycopy(x.features(), 0, h, 0, x.features().length);
    System.arraycopy(y.features(), 0, h, x.features().length, y.features().length);
    int[] labels = new int[rows];
    System.arraycopy(x.labels(), 0, labels, 0, x.rows());
    System.arraycopy(y.labels(), 0, labels, x.rows(), y.rows());
    return FeatureBatch.of(rows, D, h, labels);
  }

  /**
   * Same classes and counts; each mean within {@code relative}·‖μ‖∞ (element-wise relative error
   * means nothing for a coordinate near 0), each scatter within {@code relative} of the other's.
   */
  private static void assertSameMoments(
      CollapseMoments actual, CollapseMoments expected, double relative) {
    assertThat(actual.width()).isEqualTo(expected.width());
    assertThat(actual.nonfinite()).isEqualTo(expected.nonfinite());
    assertThat(actual.classes().keySet()).containsExactlyElementsOf(expected.classes().keySet());
    for (Map.Entry<Integer, ClassMoments> e : expected.classes().entrySet()) {
      ClassMoments want = e.getValue();
      ClassMoments got = actual.classes().get(e.getKey());
      String what = "class " + e.getKey();
      assertThat(got.count()).as(what + " count").isEqualTo(want.count());
      double[] mu = want.mean();
      double scale = 0;
      for (double v : mu) {
        scale = Math.max(scale, Math.abs(v));
      }
      for (int j = 0; j < mu.length; j++) {
        assertThat(got.mean()[j])
            .as(what + " mean[" + j + "]")
            .isCloseTo(mu[j], within(relative * scale));
      }
      assertThat(got.scatter())
          .as(what + " scatter")
          .isCloseTo(want.scatter(), within(relative * want.scatter()));
    }
  }

  private static BigDecimal[] exactMean(double[][] rows) {
    int d = rows[0].length;
    BigDecimal[] mean = new BigDecimal[d];
    BigDecimal n = BigDecimal.valueOf(rows.length);
    for (int j = 0; j < d; j++) {
      BigDecimal sum = BigDecimal.ZERO;
      for (double[] row : rows) {
        sum = sum.add(new BigDecimal(row[j])); // the binary value, exactly
      }
      mean[j] = sum.divide(n, new MathContext(60));
    }
    return mean;
  }

  /** Σ_i ‖h_i − μ‖² with μ to 60 digits: the second pass of an exact two-pass computation. */
  private static BigDecimal exactScatter(double[][] rows, BigDecimal[] mean) {
    BigDecimal s = BigDecimal.ZERO;
    for (double[] row : rows) {
      for (int j = 0; j < row.length; j++) {
        BigDecimal t = new BigDecimal(row[j]).subtract(mean[j]);
        s = s.add(t.multiply(t));
      }
    }
    return s;
  }
}
