package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Data-aware IFM (PROBES.md §2.2): streaming sums against a direct evaluation. */
class DataAwareIfmTest {

  @Test
  void incrementalChangeMatchesCompactLayersEvaluatedDirectly() {
    // Second derivation: for every prefix t, build the compact layer (rows summed, columns
    // averaged) and evaluate Y_t from scratch. 1e-9 relative: the incremental y_t − y adds up to
    // n0 rounded terms of size ‖y‖.
    Random rnd = new Random(17);
    for (int trial = 0; trial < 10; trial++) {
      IfmLayer layer =
          IterativeFeatureMergingTest.randomLayer(rnd, 2 + rnd.nextInt(20), 5, 3, trial % 3);
      MergeSequence s = IterativeFeatureMerging.mergeSequence(layer);
      double[][] x = IterativeFeatureMergingTest.randomRows(rnd, 30, 5);
      IfmDataMoments d = new DataAwareIfm(layer, s).moments(x);
      double den = 0;
      for (double[] row : x) {
        for (double v : IfmHandCasesTest.forward(layer, row)) {
          den += v * v;
        }
      }
      assertThat(d.outputSq()).isCloseTo(den, within(1e-12 * den));
      for (int t = 1; t < layer.units(); t++) {
        IfmLayer compact = IterativeFeatureMerging.compactLayer(layer, s, t);
        double num = 0;
        for (double[] row : x) {
          double[] y = IfmHandCasesTest.forward(layer, row);
          double[] yt = IfmHandCasesTest.forward(compact, row);
          for (int o = 0; o < y.length; o++) {
            num += (yt[o] - y[o]) * (yt[o] - y[o]);
          }
        }
        double expected = den == 0 ? Double.NaN : Math.sqrt(num / den);
        if (den > 0) {
          assertThat(d.change(t))
              .as("trial %d, t %d", trial, t)
              .isCloseTo(expected, within(1e-9 * (1 + expected)));
        }
      }
    }
  }

  @Test
  void batchesMergeByAdditionAndFloatRowsMatchDoubleRows() {
    Random rnd = new Random(23);
    IfmLayer layer = IterativeFeatureMergingTest.randomLayer(rnd, 12, 4, 3, 0);
    DataAwareIfm ifm = new DataAwareIfm(layer, IterativeFeatureMerging.mergeSequence(layer));
    double[][] x = IterativeFeatureMergingTest.randomRows(rnd, 40, 4);
    for (double[] row : x) {
      for (int j = 0; j < row.length; j++) {
        row[j] = (float) row[j]; // representable in float32, so both paths see the same input
      }
    }
    float[] flat = new float[40 * 4];
    for (int i = 0; i < 40; i++) {
      for (int j = 0; j < 4; j++) {
        flat[i * 4 + j] = (float) x[i][j];
      }
    }
    IfmDataMoments whole = ifm.moments(x);
    IfmDataMoments split =
        IfmDataMoments.empty(12)
            .merge(ifm.moments(Arrays.copyOfRange(x, 0, 13)))
            .merge(ifm.moments(Arrays.copyOfRange(flat, 13 * 4, 40 * 4), 27));
    IfmDataMoments fromFloat = ifm.moments(flat, 40);
    assertThat(split.samples()).isEqualTo(40);
    assertThat(fromFloat.outputSq()).isEqualTo(whole.outputSq());
    assertThat(split.outputSq()).isCloseTo(whole.outputSq(), within(1e-12 * whole.outputSq()));
    for (int t = 1; t < 12; t++) {
      assertThat(fromFloat.change(t)).isEqualTo(whole.change(t));
      assertThat(split.change(t)).isCloseTo(whole.change(t), within(1e-12));
    }
    assertThat(split.ifmDataUnits(0.05)).isEqualTo(whole.ifmDataUnits(0.05));
  }

  @Test
  void nonFiniteRowsAreCountedAndLeftOut() {
    IfmLayer a =
        new IfmLayer(
            new double[][] {{1, 0}, {1, 0}, {0, 1}}, new double[3], new double[][] {{1, 1, 1}});
    DataAwareIfm ifm = new DataAwareIfm(a, IterativeFeatureMerging.mergeSequence(a));
    float[] x = {1, 2, Float.NaN, 0, -1, 3, 0.5f, -2, 2, Float.POSITIVE_INFINITY, 2, 2};
    IfmDataMoments d = ifm.moments(x, 6);
    assertThat(d.samples()).isEqualTo(4);
    assertThat(d.nonfinite()).isEqualTo(2);
    assertThat(d.change(2)).isCloseTo(Math.sqrt(5.0 / 62), within(1e-12)); // IFM-A's value
  }

  @Test
  void zeroOutputGivesNull() {
    // Positive incoming weights, zero bias, inputs ≤ 0: every unit is off, Y = 0.
    IfmLayer layer =
        new IfmLayer(new double[][] {{1, 1}, {2, 1}}, new double[2], new double[][] {{1, 1}});
    IfmDataMoments d =
        new DataAwareIfm(layer, IterativeFeatureMerging.mergeSequence(layer))
            .moments(new double[][] {{-1, -1}, {0, -3}});
    assertThat(d.ifmDataUnits(0.01)).isNull();
    assertThat(d.ifmDataRatio(0.01)).isNull();
    assertThat(IfmDataMoments.empty(2).ifmDataUnits(0.01)).isNull();
    assertThat(IfmDataMoments.NOTE_ZERO_OUTPUT).startsWith("ifm_data:");
  }
}
