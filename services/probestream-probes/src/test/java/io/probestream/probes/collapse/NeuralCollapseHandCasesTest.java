package io.probestream.probes.collapse;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The hand cases of PROBES.md §1.6 and the edge cases of §1.5. Expected values are exact fractions
 * or closed forms worked out in the comments, or the 7-digit values printed in PROBES.md (then the
 * tolerance is half a unit in the 7th digit).
 */
class NeuralCollapseHandCasesTest {
  private static final double EXACT = 1e-12; // float64 rounding over a handful of operations
  private static final double PRINTED = 5e-8; // PROBES.md prints 7 significant digits
  private static final double S = Math.sqrt(3) / 2;

  /** Runs both passes over the rows, as one batch, and returns the metrics. */
  private static ProbeOutput probe(
      double[][] h, int[] y, double[][] w, double[] b, boolean classifierLayer) {
    int n = h.length;
    int d = h[0].length;
    float[] f = new float[n * d];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < d; j++) {
        f[i * d + j] = (float) h[i][j];
      }
    }
    float[] logits = null;
    int c = 0;
    if (w != null) {
      c = w.length;
      logits = new float[n * c];
      for (int i = 0; i < n; i++) {
        for (int k = 0; k < c; k++) {
          double z = b == null ? 0 : b[k];
          for (int j = 0; j < d; j++) {
            z += w[k][j] * f[i * d + j];
          }
          logits[i * c + k] = (float) z;
        }
      }
    }
    FeatureBatch batch = new FeatureBatch(n, d, f, y, logits, c, 0);
    NeuralCollapseProbe.Frozen frozen =
        NeuralCollapseProbe.freeze(CollapseMoments.of(batch), classifierLayer, w);
    return frozen.finish(frozen.pass2(batch), Map.of("reduction", "none"));
  }

  private static double m(ProbeOutput out, String key) {
    assertThat(out.metrics()).containsKey(key);
    assertThat(out.metrics().get(key)).as(key).isNotNull();
    return out.metrics().get(key);
  }

  // NC-A: class means on the unit circle 120° apart, two samples each at μ_c ± (0, 0.3).
  private static final double[][] NCA_H = {
    {1, 0.3}, {1, -0.3}, {-0.5, S + 0.3}, {-0.5, S - 0.3}, {-0.5, -S + 0.3}, {-0.5, -S - 0.3}
  };
  private static final int[] NCA_Y = {0, 0, 1, 1, 2, 2};
  private static final double[][] NCA_W = {{1, 0}, {-0.5, S}, {-0.5, -S}};

  @Test
  void ncaBalancedSimplex() {
    ProbeOutput out = probe(NCA_H, NCA_Y, NCA_W, null, true);
    // Σ_W = diag(0, 0.09) and Σ_B = diag(½, ½): nc1 = tr(Σ_W Σ_B⁺)/K = 0.18/3 = 0.06;
    // nc1_trace = 0.09/0.5... summed over classes: Σ V_c / Σ ‖m_c‖² = 3·0.09 / 3 = 0.09;
    // cdnv: every pair is √3 apart, (0.09 + 0.09)/(2·3) = 0.03.
    // √3/2 is rounded to float32 (relative error 3e-8), so the tolerances here are 1e-7.
    assertThat(m(out, "nc1")).isCloseTo(0.06, within(1e-7));
    assertThat(m(out, "nc1_trace")).isCloseTo(0.09, within(1e-7));
    assertThat(m(out, "cdnv")).isCloseTo(0.03, within(1e-7));
    for (String zero :
        new String[] {"nc2_equinorm", "nc2_equiangular", "nc2_etf_distance", "nc3_self_duality"}) {
      assertThat(m(out, zero)).as(zero).isCloseTo(0, within(1e-7));
    }
    assertThat(m(out, "nc4_ncc_mismatch")).isEqualTo(0);
    assertThat(m(out, "sb_rank")).isEqualTo(2);
    assertThat(m(out, "samples")).isEqualTo(6);
    assertThat(m(out, "classes_seen")).isEqualTo(3);
    assertThat(m(out, "nonfinite")).isEqualTo(0);
    assertThat(out.notes()).isEmpty();
  }

  @Test
  void ncaWithBiasAgainstClassZeroMismatchesAThird() {
    // b = (−10, 0, 0): class 0's logit 1 − 10 loses to −0.5·1 ± …, so both class-0 samples are
    // predicted elsewhere while their nearest mean is class 0: 2 of 6 = 1/3.
    ProbeOutput out = probe(NCA_H, NCA_Y, NCA_W, new double[] {-10, 0, 0}, true);
    assertThat(m(out, "nc4_ncc_mismatch")).isCloseTo(1.0 / 3, within(EXACT));
  }

  @Test
  void ncbImbalanced() {
    double[][] h = {{2, 0}, {4, 0}, {0, 2}, {0, 4}, {0, 3}, {-1, -1}, {-3, -3}};
    int[] y = {0, 0, 1, 1, 1, 2, 2};
    double[][] w = {{1, 0}, {0, 1}, {-1, -1}};
    ProbeOutput out = probe(h, y, w, new double[] {0, -2.5, 0}, true);
    // Integers are exact in float32, so the exact fractions of PROBES.md §1.6 hold to 1e-12.
    assertThat(m(out, "nc1")).isCloseTo(352.0 / 3969, within(EXACT));
    assertThat(m(out, "nc1_trace")).isCloseTo(11.0 / 76, within(EXACT));
    assertThat(m(out, "cdnv")).isCloseTo((5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3, within(EXACT));
    assertThat(m(out, "nc4_ncc_mismatch")).isCloseTo(1.0 / 7, within(EXACT));
    // m_c = (8/3, −1/3), (−1/3, 8/3), (−7/3, −7/3): norms √65/3, √65/3, 7√2/3.
    double a = Math.sqrt(65) / 3;
    double c = 7 * Math.sqrt(2) / 3;
    double mean = (2 * a + c) / 3;
    double std = Math.sqrt((2 * (a - mean) * (a - mean) + (c - mean) * (c - mean)) / 2);
    assertThat(m(out, "nc2_equinorm")).isCloseTo(std / mean, within(EXACT));
    assertThat(m(out, "nc2_equinorm")).isCloseTo(0.1222789, within(PRINTED));
    // cos(m0,m1) = −16/65 and cos(m0,m2) = cos(m1,m2) = −7/√130; shift 1/(K−1) = ½.
    double equiangular = (Math.abs(-16.0 / 65 + 0.5) + 2 * Math.abs(-7 / Math.sqrt(130) + 0.5)) / 3;
    assertThat(m(out, "nc2_equiangular")).isCloseTo(equiangular, within(EXACT));
    assertThat(m(out, "nc2_etf_distance")).isCloseTo(0.2808407, within(PRINTED));
    assertThat(m(out, "nc3_self_duality")).isCloseTo(0.0132015, within(PRINTED));
    assertThat(m(out, "sb_rank")).isEqualTo(2);
  }

  @Test
  void nccDropsTheNonFiniteSample() {
    // d = 1: class 0 = {−1, 1} (NaN dropped), class 1 = {3, 5, 4}. μ = 0 and 4, μ_G = 2,
    // V = 1 and 2/3. Σ_W = (1 + 2/3)/2 = 5/6, Σ_B = (4 + 4)/2 = 4: nc1 = (5/6)/4/2 = 5/48;
    // nc1_trace = (5/3)/8 = 5/24; cdnv = (5/3)/(2·16) = 5/96.
    double[][] h = {{-1}, {3}, {1}, {Double.NaN}, {5}, {4}};
    int[] y = {0, 1, 0, 0, 1, 1};
    ProbeOutput out = probe(h, y, null, null, false);
    assertThat(m(out, "samples")).isEqualTo(5);
    assertThat(m(out, "nonfinite")).isEqualTo(1);
    assertThat(m(out, "nc1")).isCloseTo(5.0 / 48, within(EXACT));
    assertThat(m(out, "nc1_trace")).isCloseTo(5.0 / 24, within(EXACT));
    assertThat(m(out, "cdnv")).isCloseTo(5.0 / 96, within(EXACT));
    for (String zero : new String[] {"nc2_equinorm", "nc2_equiangular", "nc2_etf_distance"}) {
      assertThat(m(out, zero)).as(zero).isCloseTo(0, within(EXACT)); // K = 2: m_1 = −m_0
    }
    assertThat(m(out, "sb_rank")).isEqualTo(1);
    assertThat(out.metrics()).doesNotContainKeys("nc3_self_duality", "nc4_ncc_mismatch");
  }

  @Test
  void ncdZeroNormCentredMean() {
    double[][] h = {{1, 0}, {1, 0.5}, {-1, 0}, {-1, 0.5}, {0, 0}, {0, 0.5}};
    int[] y = {0, 0, 1, 1, 2, 2};
    ProbeOutput out = probe(h, y, null, null, false);
    assertThat(out.metrics()).containsEntry("nc2_equiangular", null);
    // Within-class spread is along y, the between-class span along x: nc1 = 0 exactly.
    assertThat(m(out, "nc1")).isCloseTo(0, within(EXACT));
    // V_c = 1/16 each, Σ‖m_c‖² = 2: (3/16)/2 = 0.09375.
    assertThat(m(out, "nc1_trace")).isCloseTo(0.09375, within(EXACT));
    // norms 1, 1, 0: mean 2/3, sample std √(1/3), ratio √3/2.
    assertThat(m(out, "nc2_equinorm")).isCloseTo(S, within(EXACT));
    assertThat(m(out, "nc2_etf_distance")).isCloseTo(0.7653669, within(PRINTED));
    // pairs: (1/16+1/16)/(2·4), (1/8)/(2·1), (1/8)/(2·1) → (1/64 + 1/16 + 1/16)/3 = 0.046875.
    assertThat(m(out, "cdnv")).isCloseTo(0.046875, within(EXACT));
    assertThat(m(out, "sb_rank")).isEqualTo(1);
    assertThat(out.joinedNotes())
        .isEqualTo("class 2 has a zero centred mean, so nc2_equiangular is undefined");
  }

  @Test
  void noFiniteSampleMakesEveryMetricNull() {
    double[][] h = {{Double.NaN, 1}, {1, Double.POSITIVE_INFINITY}};
    ProbeOutput out = probe(h, new int[] {0, 1}, new double[][] {{1, 0}, {0, 1}}, null, true);
    assertThat(m(out, "samples")).isEqualTo(0);
    assertThat(m(out, "classes_seen")).isEqualTo(0);
    assertThat(m(out, "nonfinite")).isEqualTo(2);
    for (String k :
        new String[] {
          "nc1",
          "nc1_trace",
          "nc2_equinorm",
          "nc2_equiangular",
          "nc2_etf_distance",
          "cdnv",
          "nc3_self_duality",
          "nc4_ncc_mismatch",
          "sb_rank"
        }) {
      assertThat(out.metrics()).as(k).containsEntry(k, null);
    }
    assertThat(out.joinedNotes()).isEqualTo("no finite sample");
  }

  @Test
  void oneClassKeepsOnlyNc4() {
    // Both samples are class 1; logits pick class 0 for the first ((2,0)·W = (2, 0)) and class 1
    // for the second ((0,3)·W = (0, 3)); the only candidate mean is class 1: mismatch 1/2.
    double[][] h = {{2, 0}, {0, 3}};
    ProbeOutput out = probe(h, new int[] {1, 1}, new double[][] {{1, 0}, {0, 1}}, null, true);
    for (String k :
        new String[] {
          "nc1",
          "nc1_trace",
          "nc2_equinorm",
          "nc2_equiangular",
          "nc2_etf_distance",
          "cdnv",
          "nc3_self_duality"
        }) {
      assertThat(out.metrics()).as(k).containsEntry(k, null);
    }
    assertThat(m(out, "nc4_ncc_mismatch")).isCloseTo(0.5, within(EXACT));
    assertThat(m(out, "sb_rank")).isEqualTo(0);
    assertThat(out.joinedNotes()).isEqualTo("fewer than 2 classes seen");
  }

  @Test
  void equalClassMeansLeaveOnlyCountsAndNc4() {
    double[][] h = {{1, 1}, {3, 3}, {2, 2}, {2, 2}};
    ProbeOutput out = probe(h, new int[] {0, 0, 1, 1}, new double[][] {{1, 0}, {0, 1}}, null, true);
    for (String k : new String[] {"nc1", "nc1_trace", "nc2_equinorm", "cdnv", "nc3_self_duality"}) {
      assertThat(out.metrics()).as(k).containsEntry(k, null);
    }
    assertThat(m(out, "sb_rank")).isEqualTo(0);
    // Nearest mean ties between the two identical means resolve to class 0; logits: (1,1) and
    // (2,2) tie → class 0, (3,3) → 0. Every sample is predicted 0 and its nearest mean is 0,
    // while labels are 0,0,1,1: nc4 counts prediction vs nearest mean, not labels, so 0.
    assertThat(m(out, "nc4_ncc_mismatch")).isEqualTo(0);
    assertThat(out.joinedNotes()).isEqualTo("all class means are equal");
  }

  @Test
  void coincidingMeansNullOnlyCdnv() {
    // Classes 0 and 1 share the mean (0, 0); class 2 sits at (3, 0).
    double[][] h = {{0, 1}, {0, -1}, {1, 0}, {-1, 0}, {3, 0}, {3, 0}};
    ProbeOutput out = probe(h, new int[] {0, 0, 1, 1, 2, 2}, null, null, false);
    assertThat(out.metrics()).containsEntry("cdnv", null);
    assertThat(out.metrics().get("nc1_trace")).isNotNull();
    assertThat(out.joinedNotes())
        .isEqualTo("classes 0 and 1 have the same mean, so cdnv is undefined");
  }

  @Test
  void zeroClassifierWeightNullsNc3() {
    double[][] h = {{1, 0}, {-1, 0}};
    ProbeOutput out = probe(h, new int[] {0, 1}, new double[][] {{0, 0}, {0, 0}}, null, true);
    assertThat(out.metrics()).containsEntry("nc3_self_duality", null);
    assertThat(out.metrics().get("nc1_trace")).isCloseTo(0, within(EXACT));
  }

  @Test
  void absentClassIsLeftOutOfKAndW() {
    // Classes 0 and 2 seen out of C = 3. μ = (1,0), (−1,0): m = ±(1,0). W_S = rows 0 and 2 =
    // (1,0), (−1,0): W_S/‖W_S‖ = M̃/‖M̃‖, so nc3 = 0. Logits argmax ranges over all 3 classes:
    // row 1 of W = (0, 5) wins for (1, 0)? z = (1, 0, −1) → class 0; for (−1, 0): z = (−1, 0, 1)
    // → class 2. No mismatch.
    double[][] h = {{1, 0}, {-1, 0}};
    double[][] w = {{1, 0}, {0, 5}, {-1, 0}};
    ProbeOutput out = probe(h, new int[] {0, 2}, w, null, true);
    assertThat(m(out, "classes_seen")).isEqualTo(2);
    assertThat(m(out, "nc3_self_duality")).isCloseTo(0, within(EXACT));
    assertThat(m(out, "nc4_ncc_mismatch")).isEqualTo(0);
  }

  @Test
  void classifierWeightOfTheWrongWidthIsRejected() {
    FeatureBatch batch = FeatureBatch.of(2, 2, new float[] {1, 0, -1, 0}, new int[] {0, 1});
    CollapseMoments moments = CollapseMoments.of(batch);
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> NeuralCollapseProbe.freeze(moments, true, new double[][] {{1, 0, 0}, {0, 1, 0}}))
        .hasMessage("classifier weight has 3 columns but the classifier-feeding layer is 2 wide");
  }

  @Test
  void tiesGoToTheLowestIndexOnBothSides() {
    // Means (1,0) for class 0 and (−1,0) for class 1; the two samples at (0,0) are equidistant
    // from both means and get equal logits (0, 0) from W = [[1,0],[−1,0]]. Lowest index on both
    // sides: class 0 and class 0, no mismatch. Either tie-break flipped gives 2 of 4 = 0.5.
    double[][] h = {{2, 0}, {0, 0}, {-2, 0}, {0, 0}};
    ProbeOutput out =
        probe(h, new int[] {0, 0, 1, 1}, new double[][] {{1, 0}, {-1, 0}}, null, true);
    assertThat(m(out, "nc4_ncc_mismatch")).isEqualTo(0);
  }

  @Test
  void nonFiniteClassifierWeightMakesNc3NullInsteadOfFailing() {
    double[][] h = {{2, 0}, {4, 0}, {0, 2}, {0, 4}, {0, 3}, {-1, -1}, {-3, -3}};
    int[] y = {0, 0, 1, 1, 1, 2, 2};
    double[][] w = {{1, 0}, {0, Double.NaN}, {-1, -1}};
    // Logits come from a finite W so that only nc3 sees the NaN.
    double[][] finite = {{1, 0}, {0, 1}, {-1, -1}};
    int n = h.length;
    float[] f = new float[n * 2];
    float[] z = new float[n * 3];
    for (int i = 0; i < n; i++) {
      f[2 * i] = (float) h[i][0];
      f[2 * i + 1] = (float) h[i][1];
      for (int k = 0; k < 3; k++) {
        z[3 * i + k] =
            (float) (finite[k][0] * h[i][0] + finite[k][1] * h[i][1] + (k == 1 ? -2.5 : 0));
      }
    }
    FeatureBatch batch = new FeatureBatch(n, 2, f, y, z, 3, 0);
    NeuralCollapseProbe.Frozen frozen =
        NeuralCollapseProbe.freeze(CollapseMoments.of(batch), true, w);
    ProbeOutput out = frozen.finish(frozen.pass2(batch), Map.of("reduction", "none"));
    assertThat(out.metrics()).containsEntry("nc3_self_duality", null);
    assertThat(m(out, "nc1")).isCloseTo(352.0 / 3969, within(EXACT));
    assertThat(out.joinedNotes())
        .isEqualTo(
            "the classifier weight of class 1 is not finite, so nc3_self_duality is undefined");
  }
}
