package io.probestream.probes.complexity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.complexity.IterativeFeatureMerging.Merge;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import org.junit.jupiter.api.Test;

/**
 * The IFM hand cases of PROBES.md §2.5. Distances of these small decimal vectors are exact to a few
 * ulps (tolerance 1e-12); values PROBES.md prints with 6 decimals get half a unit of the last digit
 * (5e-7).
 */
class IfmHandCasesTest {
  private static final double EXACT = 1e-12;
  private static final double PRINTED = 5e-7;
  private static final double[][] X = {{1, 2}, {-1, 3}, {0.5, -2}, {2, 2}};

  private static MergeSequence full(IfmLayer layer) {
    return IterativeFeatureMerging.mergeSequence(layer);
  }

  private static IfmDataMoments data(IfmLayer layer) {
    return new DataAwareIfm(layer, full(layer)).moments(X);
  }

  private static void assertStep(Merge m, int first, int second, double dmin, double dmax) {
    assertThat(m.first()).isEqualTo(first);
    assertThat(m.second()).isEqualTo(second);
    assertThat(m.dmin()).isCloseTo(dmin, within(EXACT));
    assertThat(m.dmax()).isCloseTo(dmax, within(EXACT));
  }

  // IFM-A: f = (1,0,0,1), (1,0,0,1), (0,1,0,1); D = 0, 2, 2.
  private static final IfmLayer A =
      new IfmLayer(
          new double[][] {{1, 0}, {1, 0}, {0, 1}}, new double[3], new double[][] {{1, 1, 1}});

  @Test
  void ifmATwoIdenticalUnits() {
    MergeSequence s = full(A);
    assertThat(s.steps()).hasSize(2);
    assertStep(s.steps().get(0), 0, 1, 0, 2); // 0 ≤ 0.1·2: merge
    assertStep(s.steps().get(1), 0, 2, 2, 2); // two left, 2 > 0.2: stop
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(2);
    assertThat(IterativeFeatureMerging.units(A, 0.1)).isEqualTo(2);
    assertThat(IterativeFeatureMerging.units(s, 0.1) / 3.0).isCloseTo(0.6666667, within(5e-8));

    IfmLayer compact = IterativeFeatureMerging.compactLayer(A, s, 1);
    assertThat(compact.wIn()).isDeepEqualTo(new double[][] {{2, 0}, {0, 1}});
    assertThat(compact.bIn()).containsExactly(0, 0);
    assertThat(compact.wOut()).isDeepEqualTo(new double[][] {{1, 1}});

    // Merging two copies changes nothing: relu(2x)·1 = 2·relu(x). Merging all three:
    // Y_2 = relu(2x1 + x2)·1 vs Y = 2 relu(x1) + relu(x2); on X this is 4|1|0|6 vs 4|3|1|6,
    // change = √(0+4+1+0)/√(16+9+1+36) = √5/√62 = 0.283981.
    IfmDataMoments d = data(A);
    assertThat(d.change(1)).isCloseTo(0, within(EXACT));
    assertThat(d.change(2)).isCloseTo(Math.sqrt(5.0 / 62), within(EXACT));
    assertThat(d.change(2)).isCloseTo(0.283981, within(PRINTED));
    assertThat(d.ifmDataUnits(0.01)).isEqualTo(2);
    assertThat(d.ifmDataRatio(0.01)).isCloseTo(2.0 / 3, within(EXACT));
    assertThat(d.samples()).isEqualTo(4);
  }

  @Test
  void ifmBThreeIdenticalUnitsCollapseToOne() {
    IfmLayer b =
        new IfmLayer(
            new double[][] {{1, 0}, {1, 0}, {1, 0}, {0, 1}},
            new double[4],
            new double[][] {{1, 1, 1, 1}});
    MergeSequence s = full(b);
    assertStep(s.steps().get(0), 0, 1, 0, 2);
    assertStep(s.steps().get(1), 0, 2, 0, 2); // the centroid of {0,1} is the copy itself
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(2);
    assertThat(s.groupsAfter(2)).containsExactly(0, 0, 0, 3);
  }

  @Test
  void ifmCBiasIsPartOfTheUnitVector() {
    IfmLayer c =
        new IfmLayer(
            new double[][] {{1, 0}, {1, 0}, {0, 1}},
            new double[] {0, 1, 0},
            new double[][] {{1, 1, 1}});
    MergeSequence s = full(c);
    // D(0,1) = 1, D(0,2) = 2, D(1,2) = 3.
    assertStep(s.steps().get(0), 0, 1, 1, 3);
    // Centroid (1,0,0.5,1) against (0,1,0,1): 1 + 1 + 0.25 = 2.25 = dmax.
    assertStep(s.steps().get(1), 0, 2, 2.25, 2.25);
    assertThat(IterativeFeatureMerging.units(s, 0.1)).isEqualTo(3); // 1 > 0.3
    assertThat(IterativeFeatureMerging.units(s, 0.4)).isEqualTo(2); // 1 ≤ 1.2, then 2.25 > 0.9
    assertThat(IterativeFeatureMerging.units(c, 0.1)).isEqualTo(3);
    assertThat(IterativeFeatureMerging.units(c, 0.4)).isEqualTo(2);
  }

  private static final IfmLayer D =
      new IfmLayer(
          new double[][] {{1, 0}, {1, 0.2}, {0, 1}, {0.1, 1}, {-1, -1}},
          new double[5],
          new double[][] {{1, 2, 1, 1, 1}});

  @Test
  void ifmDMergeTable() {
    MergeSequence s = full(D);
    assertThat(s.complete()).isTrue();
    assertThat(s.steps()).hasSize(4);
    // f = (1,0,0,1), (1,.2,0,2), (0,1,0,1), (.1,1,0,1), (−1,−1,0,1).
    assertStep(s.steps().get(0), 2, 3, 0.01, 6.44); // dmax = D(1,4) = 4 + 1.44 + 1
    assertStep(s.steps().get(1), 0, 1, 1.04, 6.44);
    // {0,1} = (1,.1,0,1.5), {2,3} = (.05,1,0,1): .9025 + .81 + .25 = 1.9625; dmax to {4}
    // = 4 + 1.21 + .25 = 5.46.
    assertStep(s.steps().get(2), 0, 2, 1.9625, 5.46);
    // {0,1,2,3} = (.525,.55,0,1.25) vs (−1,−1,0,1): 2.325625 + 2.4025 + .0625 = 4.790625.
    assertStep(s.steps().get(3), 0, 4, 4.790625, 4.790625);
    double[] ratio = {0.001553, 0.161491, 0.359432, 1};
    for (int t = 0; t < 4; t++) {
      Merge m = s.steps().get(t);
      assertThat(m.dmin() / m.dmax()).as("ratio %d", t + 1).isCloseTo(ratio[t], within(PRINTED));
    }
    double[] beta = {0.001, 0.01, 0.1, 0.2, 0.5, 1.0};
    int[] units = {5, 4, 4, 3, 2, 1};
    for (int i = 0; i < beta.length; i++) {
      assertThat(IterativeFeatureMerging.units(s, beta[i]))
          .as("beta %s", beta[i])
          .isEqualTo(units[i]);
      assertThat(IterativeFeatureMerging.units(D, beta[i]))
          .as("beta %s", beta[i])
          .isEqualTo(units[i]);
    }

    IfmDataMoments d = data(D);
    double[] change = {0, 0.023194, 0.055163, 0.505375};
    for (int t = 1; t <= 4; t++) {
      assertThat(d.change(t)).as("change_%d", t).isCloseTo(change[t - 1], within(PRINTED));
    }
    assertThat(d.ifmDataUnits(0.01)).isEqualTo(4);

    IfmLayer compact = IterativeFeatureMerging.compactLayer(D, s, 2);
    assertThat(compact.wIn()).isDeepEqualTo(new double[][] {{2, 0.2}, {0.1, 2}, {-1, -1}});
    assertThat(compact.bIn()).containsExactly(0, 0, 0);
    assertThat(compact.wOut()).isDeepEqualTo(new double[][] {{1.5, 1, 1}});
  }

  @Test
  void ifmDChangeMatchesTheCompactLayerComputedDirectly() {
    // Second derivation of change_t: evaluate Y and Y_t with the compact layers themselves.
    MergeSequence s = full(D);
    IfmDataMoments d = data(D);
    for (int t = 1; t <= 4; t++) {
      IfmLayer compact = IterativeFeatureMerging.compactLayer(D, s, t);
      double num = 0;
      double den = 0;
      for (double[] x : X) {
        double[] y = forward(D, x);
        double[] yt = forward(compact, x);
        for (int o = 0; o < y.length; o++) {
          num += (yt[o] - y[o]) * (yt[o] - y[o]);
          den += y[o] * y[o];
        }
      }
      assertThat(d.change(t)).isCloseTo(Math.sqrt(num / den), within(EXACT));
    }
  }

  static double[] forward(IfmLayer layer, double[] x) {
    double[] y = new double[layer.outputWidth()];
    for (int u = 0; u < layer.units(); u++) {
      double z = layer.bIn()[u];
      for (int j = 0; j < x.length; j++) {
        z += layer.wIn()[u][j] * x[j];
      }
      double a = Math.max(0, z);
      for (int o = 0; o < y.length; o++) {
        y[o] += a * layer.wOut()[o][u];
      }
    }
    return y;
  }
}
