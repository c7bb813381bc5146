package io.probestream.probes.multiplicity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * PROBES.md §3: the ε-set, its baseline and every metric, against the hand cases (PM-1) and closed
 * forms; the experiment state's bounds and its snapshot.
 */
class PredictiveMultiplicityTest {
  private static final ForkJoinPool POOL = new ForkJoinPool(2);

  @AfterAll
  static void stop() {
    POOL.shutdown();
  }

  /** A candidate whose logits are ln p (so its probabilities are p, up to float32 rounding). */
  static Candidate model(String run, long step, int[] labels, double[][] p) {
    int k = p[0].length;
    float[] logits = new float[p.length * k];
    for (int i = 0; i < p.length; i++) {
      for (int c = 0; c < k; c++) {
        logits[i * k + c] = (float) Math.log(p[i][c]);
      }
    }
    return Candidate.ofLogits(run, step, null, logits, k, labels);
  }

  private static final int[] Y = {0, 0, 1};
  private static final Candidate A =
      model("A", 1, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.5, 0.2}, {0.2, 0.7, 0.1}});
  private static final Candidate B =
      model("B", 2, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.2, 0.5}, {0.2, 0.65, 0.15}});
  private static final Candidate C =
      model("C", 3, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.5, 0.2}, {0.2, 0.65, 0.15}});
  private static final Candidate D =
      model("D", 4, Y, new double[][] {{0.2, 0.7, 0.1}, {0.1, 0.3, 0.6}, {0.3, 0.3, 0.4}});

  @Test
  void pm1HandCase() {
    PredictiveMultiplicity.Result r =
        PredictiveMultiplicity.compute(List.of(A, B, C, D), 0.05, 4, 0, POOL);
    Map<String, Double> m = r.metrics();
    assertThat(r.members()).containsExactly(A, B, C);
    assertThat(r.baseline()).isZero();
    assertThat(m.get("rashomon_set_size")).isEqualTo(3);
    assertThat(m.get("ambiguity")).isCloseTo(1.0 / 3, within(1e-12));
    assertThat(m.get("discrepancy")).isCloseTo(1.0 / 3, within(1e-12));
    assertThat(m.get("disagreement_mean")).isCloseTo(2.0 / 9, within(1e-12));
    assertThat(m.get("vpr_mean")).isCloseTo(0.1166667, within(1e-6));
    assertThat(m.get("rashomon_capacity_mean")).isCloseTo(1.0238854, within(1e-6));
    assertThat(m.get("baseline_loss")).isCloseTo(0.6391076, within(1e-6));
    assertThat(m.get("models_seen")).isEqualTo(4);
    assertThat(m.get("models_nonfinite")).isEqualTo(0);
    assertThat(m.get("samples")).isEqualTo(3);
    assertThat(A.loss()).isCloseTo(0.6391076, within(1e-6));
    assertThat(B.loss()).isCloseTo(0.6638102, within(1e-6));
    assertThat(D.loss()).isCloseTo(1.7053319, within(1e-6));
    assertThat(m.keySet())
        .containsExactly(
            "ambiguity",
            "discrepancy",
            "vpr_mean",
            "rashomon_capacity_mean",
            "disagreement_mean",
            "rashomon_set_size",
            "models_seen",
            "models_nonfinite",
            "samples",
            "baseline_loss");
    // A wider epsilon lets D in: it predicts 1, 2, 2 against A's 0, 1, 1, every sample.
    PredictiveMultiplicity.Result wide =
        PredictiveMultiplicity.compute(List.of(A, B, C, D), 2, 4, 0, POOL);
    assertThat(wide.members()).containsExactly(A, B, C, D);
    assertThat(wide.metrics().get("discrepancy")).isEqualTo(1.0);
    assertThat(wide.metrics().get("ambiguity")).isEqualTo(1.0);
    // Pairs AB, AC, AD, BC, BD, CD disagree on 1, 0, 3, 1, 2, 3 samples of 3.
    assertThat(wide.metrics().get("disagreement_mean"))
        .isCloseTo((1 + 0 + 3 + 1 + 2 + 3) / 18.0, within(1e-12));
  }

  @Test
  void identicalModelsSitAtTheZeroPoint() {
    double[][] p = {{0.6, 0.4}, {0.1, 0.9}, {0.5, 0.5}};
    int[] y = {0, 1, 1};
    List<Candidate> same = new ArrayList<>();
    for (int s = 0; s < 4; s++) {
      same.add(model("r" + s, s, y, p));
    }
    Map<String, Double> m = PredictiveMultiplicity.compute(same, 0.05, 4, 0, POOL).metrics();
    assertThat(m.get("rashomon_set_size")).isEqualTo(4);
    assertThat(m.get("ambiguity")).isZero();
    assertThat(m.get("discrepancy")).isZero();
    assertThat(m.get("vpr_mean")).isZero();
    assertThat(m.get("disagreement_mean")).isZero();
    assertThat(m.get("rashomon_capacity_mean")).isEqualTo(1.0);
  }

  @Test
  void twoDeterministicModelsThatDisagreeOnAKnownFraction() {
    // Near one-hot predictions; they disagree on samples 0 and 3 of 8 (a quarter). Capacity of a
    // disagreeing sample: two (almost) disjoint rows, RC → 2; agreeing samples RC = 1.
    int n = 8;
    int[] y = new int[n];
    double[][] p = new double[n][];
    double[][] q = new double[n][];
    double e = 1e-9;
    for (int i = 0; i < n; i++) {
      p[i] = new double[] {1 - e, e};
      q[i] = i == 0 || i == 3 ? new double[] {e, 1 - e} : new double[] {1 - e, e};
    }
    y[0] = 0;
    Candidate a = model("a", 1, y, p);
    Candidate b = model("b", 2, y, q);
    // b's loss on samples 0, 3 is ~ln(1e9)/8·2 ≈ 5.2 nats above a's: include it with a wide ε.
    PredictiveMultiplicity.Result r = PredictiveMultiplicity.compute(List.of(a, b), 10, 2, 0, POOL);
    assertThat(r.metrics().get("ambiguity")).isEqualTo(0.25);
    assertThat(r.metrics().get("discrepancy")).isEqualTo(0.25);
    assertThat(r.metrics().get("disagreement_mean")).isEqualTo(0.25);
    assertThat(r.metrics().get("vpr_mean")).isCloseTo(0.25, within(1e-6));
    assertThat(r.metrics().get("rashomon_capacity_mean"))
        .isCloseTo((6 + 2 * 2) / 8.0, within(1e-6));
    // With the default ε the worse model is outside the set and nothing counts.
    PredictiveMultiplicity.Result tight =
        PredictiveMultiplicity.compute(List.of(a, b), 0.05, 2, 0, POOL);
    assertThat(tight.members()).containsExactly(a);
    assertThat(tight.metrics().get("ambiguity")).isZero();
    assertThat(tight.metrics().get("rashomon_capacity_mean")).isEqualTo(1.0);
    assertThat(tight.notes()).contains("predictive_multiplicity: the Rashomon set has one member");
  }

  @Test
  void aNonFiniteModelIsNeverTheBaselineAndIsCounted() {
    float[] logits = {Float.NaN, 0, 0, -100, 0, 0, 0, 0, 0};
    Candidate bad = Candidate.ofLogits("bad", 0, null, logits, 3, Y);
    assertThat(bad.finite()).isFalse();
    PredictiveMultiplicity.Result r =
        PredictiveMultiplicity.compute(List.of(bad, A, B), 0.05, 3, 1, POOL);
    assertThat(r.members()).containsExactly(A, B);
    assertThat(r.metrics().get("models_nonfinite")).isEqualTo(1);
    PredictiveMultiplicity.Result none =
        PredictiveMultiplicity.compute(List.of(bad), 0.05, 1, 1, POOL);
    assertThat(none.members()).isEmpty();
    assertThat(none.metrics().get("ambiguity")).isNull();
    assertThat(none.notes())
        .containsExactly("predictive_multiplicity: no candidate has finite logits");
  }

  @Test
  void oneLogitColumnIsBinary() {
    // z = (0, z): p(1) = sigmoid(z).
    float[] z = {0, (float) Math.log(3)};
    Candidate c = Candidate.ofLogits("b", 0, null, z, 1, new int[] {0, 1});
    assertThat(c.classes()).isEqualTo(2);
    assertThat(c.probs()[0]).isCloseTo(0.5f, within(1e-7f));
    assertThat(c.probs()[3]).isCloseTo(0.75f, within(1e-7f));
    assertThat(c.loss()).isCloseTo((Math.log(2) - Math.log(0.75)) / 2, within(1e-7));
  }

  @Test
  void exactLossTiesKeepTheEarliestCandidateAsBaseline() {
    Candidate second =
        model("C", 3, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.2, 0.5}, {0.2, 0.65, 0.15}});
    // B and `second` have identical probabilities, so identical losses.
    PredictiveMultiplicity.Result r =
        PredictiveMultiplicity.compute(List.of(B, second), 0, 2, 0, POOL);
    assertThat(r.baseline()).isZero();
    assertThat(r.members()).containsExactly(B, second);
  }

  @Test
  void theStateKeepsOnlyWhatCanStillMatter() {
    MultiplicityState s = new MultiplicityState(0.05, 32, 0);
    s.add(D); // alone: it is the best so far
    assertThat(s.candidates()).containsExactly(D);
    s.add(C); // 0.66 < 1.71 − 0.05: D leaves for good
    s.add(B);
    s.add(A);
    assertThat(s.candidates()).containsExactly(A, B, C);
    s.add(A); // at-least-once delivery: counted once
    PredictiveMultiplicity.Result r = s.result(POOL);
    assertThat(r.metrics().get("models_seen")).isEqualTo(4);
    assertThat(r.metrics().get("rashomon_capacity_mean")).isCloseTo(1.0238854, within(1e-6));
    assertThat(s.bytes()).isEqualTo(3L * 3 * 3 * 4);
  }

  @Test
  void pastMaxModelsTheHighestLossMemberIsDroppedAndNoted() {
    MultiplicityState s = new MultiplicityState(0.05, 2, 0);
    s.add(A);
    s.add(B);
    s.add(C); // B and C tie on loss: the later (C) goes
    assertThat(s.candidates()).containsExactly(A, B);
    assertThat(s.result(POOL).notes())
        .contains(
            "1 member(s) with the highest loss dropped at max-models = 2"
                + " (probestream.multiplicity.max-models)");
  }

  @Test
  void aWindowKeepsTheLastCheckpointsOfARun() {
    MultiplicityState s = new MultiplicityState(10, 32, 2);
    s.add(model("r", 1, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.5, 0.2}, {0.2, 0.7, 0.1}}));
    s.add(model("r", 3, Y, new double[][] {{0.7, 0.2, 0.1}, {0.3, 0.2, 0.5}, {0.2, 0.65, 0.15}}));
    s.add(model("r", 2, Y, new double[][] {{0.2, 0.7, 0.1}, {0.1, 0.3, 0.6}, {0.3, 0.3, 0.4}}));
    assertThat(s.candidates()).extracting(Candidate::step).containsExactly(2L, 3L);
  }

  @Test
  void theStateSurvivesItsSnapshot() {
    MultiplicityState s = new MultiplicityState(0.05, 2, 0);
    s.add(A);
    s.add(B);
    s.add(C);
    s.add(
        Candidate.ofLogits("bad", 9, null, new float[] {Float.NaN, 0, 0, 0, 0, 0, 0, 0, 0}, 3, Y));
    MultiplicityState back = MultiplicityState.fromBytes(s.toBytes());
    assertThat(back.candidates()).hasSize(2);
    for (int i = 0; i < 2; i++) {
      Candidate x = s.candidates().get(i);
      Candidate y = back.candidates().get(i);
      assertThat(y.run()).isEqualTo(x.run());
      assertThat(y.step()).isEqualTo(x.step());
      assertThat(y.loss()).isEqualTo(x.loss());
      assertThat(y.probs()).containsExactly(x.probs());
    }
    assertThat(back.result(POOL)).usingRecursiveComparison().isEqualTo(s.result(POOL));
    assertThatThrownBy(() -> MultiplicityState.fromBytes(new byte[] {0, 0, 0, 7}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("multiplicity state format 7");
  }
}
