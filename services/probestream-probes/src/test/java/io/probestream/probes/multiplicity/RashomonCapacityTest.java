package io.probestream.probes.multiplicity;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * Rashomon capacity of one sample (PROBES.md §3.3) against closed forms, the hand cases of §3.5, a
 * 1-D search, a plain Blahut–Arimoto written here, and an independent recomputation of both bounds
 * from the input distribution returned.
 *
 * <p>Tolerances: a certified result has upper − lower ≤ 1e-8 nats, so C lies within 1e-8 nats of
 * the lower bound and RC = exp(C) within 1e-8 relative. The bounds themselves are sums of ≤ a few
 * hundred float64 terms of size ≤ 5, so they carry rounding of order 1e-15; {@link #SLACK} = 1e-12
 * covers that with room, and is what a bound may miss the true C by.
 */
class RashomonCapacityTest {
  private static final double LN2 = Math.log(2);
  private static final double GAP = RashomonCapacity.TOLERANCE_NATS;
  private static final double SLACK = 1e-12;

  // ---------------------------------------------------------------------------------------------
  // Independent references

  /** Binary entropy in bits. */
  private static double h2(double p) {
    return p == 0 || p == 1 ? 0 : -(p * Math.log(p) + (1 - p) * Math.log(1 - p)) / LN2;
  }

  /** Entropy in nats, 0·ln 0 = 0. */
  private static double entropy(double[] p) {
    double h = 0;
    for (double v : p) {
      if (v > 0) {
        h -= v * Math.log(v);
      }
    }
    return h;
  }

  /** I(r, Q) in nats, straight from the definition H(rᵀQ) − Σ_m r_m H(Q_m). */
  private static double mutualInformation(double[][] q, double[] r) {
    double[] out = new double[q[0].length];
    double conditional = 0;
    for (int m = 0; m < q.length; m++) {
      for (int k = 0; k < out.length; k++) {
        out[k] += r[m] * q[m][k];
      }
      conditional += r[m] * entropy(q[m]);
    }
    return entropy(out) - conditional;
  }

  /** max_m KL(Q_m ‖ rᵀQ) in nats: the upper bound that r certifies. */
  private static double maxDivergence(double[][] q, double[] r) {
    double[] out = new double[q[0].length];
    for (int m = 0; m < q.length; m++) {
      for (int k = 0; k < out.length; k++) {
        out[k] += r[m] * q[m][k];
      }
    }
    double max = Double.NEGATIVE_INFINITY;
    for (double[] row : q) {
      double kl = 0;
      for (int k = 0; k < row.length; k++) {
        if (row[k] > 0) {
          kl += row[k] * Math.log(row[k] / out[k]);
        }
      }
      max = Math.max(max, kl);
    }
    return max;
  }

  /** Plain Blahut–Arimoto (r ← r·exp(D), normalised), from uniform, until max D − I ≤ tol. */
  private static double[] plainBlahutArimoto(double[][] q, double tol, int maxIterations) {
    int s = q.length;
    double[] r = new double[s];
    Arrays.fill(r, 1.0 / s);
    for (int it = 0; ; it++) {
      double[] out = new double[q[0].length];
      for (int m = 0; m < s; m++) {
        for (int k = 0; k < out.length; k++) {
          out[k] += r[m] * q[m][k];
        }
      }
      double[] d = new double[s];
      double info = 0;
      double max = Double.NEGATIVE_INFINITY;
      for (int m = 0; m < s; m++) {
        for (int k = 0; k < out.length; k++) {
          if (q[m][k] > 0) {
            d[m] += q[m][k] * Math.log(q[m][k] / out[k]);
          }
        }
        info += r[m] * d[m];
        max = Math.max(max, d[m]);
      }
      if (max - info <= tol || it == maxIterations) {
        return new double[] {info, max, it};
      }
      double sum = 0;
      for (int m = 0; m < s; m++) {
        r[m] *= Math.exp(d[m]);
        sum += r[m];
      }
      for (int m = 0; m < s; m++) {
        r[m] /= sum;
      }
    }
  }

  /** max over t ∈ [0, 1] of I((t, 1 − t), {a, b}) by golden-section search (I is concave in t). */
  private static double twoRowCapacity(double[] a, double[] b) {
    double lo = 0;
    double hi = 1;
    double g = (Math.sqrt(5) - 1) / 2;
    for (int i = 0; i < 200; i++) {
      double x1 = hi - g * (hi - lo);
      double x2 = lo + g * (hi - lo);
      if (mutualInformation(new double[][] {a, b}, new double[] {x1, 1 - x1})
          < mutualInformation(new double[][] {a, b}, new double[] {x2, 1 - x2})) {
        lo = x1;
      } else {
        hi = x2;
      }
    }
    double t = (lo + hi) / 2;
    return mutualInformation(new double[][] {a, b}, new double[] {t, 1 - t});
  }

  // ---------------------------------------------------------------------------------------------
  // Assertions

  /** The result is certified and brackets the true capacity {@code nats}. */
  private static void assertCapacity(RashomonCapacity.Result r, double nats) {
    assertThat(r.converged()).as("converged").isTrue();
    assertThat(r.upperNats() - r.capacityNats()).as("certified gap").isLessThanOrEqualTo(GAP);
    assertThat(r.capacityNats()).as("lower bound").isLessThanOrEqualTo(nats + SLACK);
    assertThat(r.upperNats()).as("upper bound").isGreaterThanOrEqualTo(nats - SLACK);
    assertThat(r.rc()).isCloseTo(Math.exp(nats), within(1e-8 * Math.exp(nats)));
  }

  /** The input distribution reproduces both bounds when they are recomputed from scratch here. */
  private static void assertBoundsFromInput(double[][] q, RashomonCapacity.Result r) {
    double[] input = r.input().stream().mapToDouble(Double::doubleValue).toArray();
    assertThat(input).hasSize(q.length);
    double total = 0;
    for (double w : input) {
      assertThat(w).isGreaterThanOrEqualTo(0);
      total += w;
    }
    assertThat(total).isCloseTo(1, within(1e-14));
    assertThat(mutualInformation(q, input)).isCloseTo(r.capacityNats(), within(SLACK));
    assertThat(maxDivergence(q, input)).isCloseTo(r.upperNats(), within(SLACK));
  }

  private static CapacitySolver solved(double[][] q, CapacitySolver.Method method) {
    CapacitySolver solver = new CapacitySolver(method);
    int cols = q[0].length;
    double[] raw = solver.load(q.length, cols);
    for (int m = 0; m < q.length; m++) {
      System.arraycopy(q[m], 0, raw, m * cols, cols);
      assertThat(solver.checkRow(m, cols)).isNull();
    }
    solver.solve(q.length, cols);
    return solver;
  }

  // ---------------------------------------------------------------------------------------------
  // Hand cases (PROBES.md §3.5)

  @Test
  void pm2TwoOneHotRowsGiveTwo() {
    // Two distinguishable inputs: C = 1 bit.
    RashomonCapacity.Result r = RashomonCapacity.of(new double[][] {{1, 0}, {0, 1}});
    assertCapacity(r, LN2);
    assertThat(r.rc()).isCloseTo(2, within(2e-8));
  }

  @Test
  void pm2ThreeOneHotRowsGiveThree() {
    RashomonCapacity.Result r =
        RashomonCapacity.of(new double[][] {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}});
    assertCapacity(r, Math.log(3));
    assertThat(r.rc()).isCloseTo(3, within(3e-8));
  }

  @Test
  void pm2ZChannelAtOneHalfGivesOnePointTwoFive() {
    // Z-channel with crossover p = ½: log2(1 + (1 − p)·p^{p/(1−p)}) = log2(1 + ½·½) bits.
    RashomonCapacity.Result r = RashomonCapacity.of(new double[][] {{1, 0}, {0.5, 0.5}});
    assertCapacity(r, Math.log(1.25));
    assertThat(r.rc()).isCloseTo(1.25, within(2e-8));
  }

  @Test
  void pm2DuplicatesDoNotCount() {
    RashomonCapacity.Result r =
        RashomonCapacity.of(new double[][] {{1, 0}, {1, 0}, {1, 0}, {0, 1}});
    assertCapacity(r, LN2);
    assertThat(r.rc()).isCloseTo(2, within(2e-8));
  }

  @Test
  void pm2BinarySymmetricChannel() {
    // BSC(0.1): 1 − H(0.1) bits, RC = 2^{1 − H(0.1)} = 1.4449348.
    RashomonCapacity.Result r = RashomonCapacity.of(new double[][] {{0.9, 0.1}, {0.1, 0.9}});
    assertCapacity(r, (1 - h2(0.1)) * LN2);
    assertThat(r.rc()).isCloseTo(1.4449348, within(5e-8));
  }

  @Test
  void pm2CyclicShiftsFormASymmetricChannel() {
    // Symmetric channel: C = ln K − H(row), RC = 3·2^{−H(0.8, 0.1, 0.1)} = 1.5834095.
    double[] row = {0.8, 0.1, 0.1};
    RashomonCapacity.Result r =
        RashomonCapacity.of(new double[][] {{0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.1, 0.1, 0.8}});
    assertCapacity(r, Math.log(3) - entropy(row));
    assertThat(r.rc()).isCloseTo(1.5834095, within(5e-8));
  }

  @Test
  void pm2TheMiddleMemberGetsNoWeight() {
    // r = (½, 0, ½) reaches 1 bit, the most two output classes allow.
    RashomonCapacity.Result r = RashomonCapacity.of(new double[][] {{1, 0}, {0.5, 0.5}, {0, 1}});
    assertCapacity(r, LN2);
    assertThat(r.rc()).isCloseTo(2, within(2e-8));
    assertThat(r.input().get(1)).isLessThan(1e-6);
  }

  @Test
  void pm1PerSampleCapacities() {
    // Sample 0: A, B, C agree.
    RashomonCapacity.Result s0 =
        RashomonCapacity.of(new double[][] {{0.7, 0.2, 0.1}, {0.7, 0.2, 0.1}, {0.7, 0.2, 0.1}});
    assertThat(s0.rc()).isEqualTo(1.0);
    assertThat(s0.iterations()).isZero();
    // Sample 1: A = C and B are mirror images (classes 1 and 2 swapped), so equal weights on the
    // two distinct rows are optimal: C = H(0.3, 0.35, 0.35) − H(0.3, 0.5, 0.2).
    double[] a1 = {0.3, 0.5, 0.2};
    double[] b1 = {0.3, 0.2, 0.5};
    RashomonCapacity.Result s1 = RashomonCapacity.of(new double[][] {a1, b1, a1});
    assertCapacity(s1, entropy(new double[] {0.3, 0.35, 0.35}) - entropy(a1));
    assertThat(s1.rc()).isCloseTo(1.0686694, within(5e-8));
    // Sample 2: B = C, so one free weight; maximise I by a 1-D search.
    double[] a2 = {0.2, 0.7, 0.1};
    double[] b2 = {0.2, 0.65, 0.15};
    RashomonCapacity.Result s2 = RashomonCapacity.of(new double[][] {a2, b2, b2});
    assertCapacity(s2, twoRowCapacity(a2, b2));
    assertThat(s2.rc()).isCloseTo(1.0029867, within(5e-8));
  }

  @Test
  void pm1BatchMeanFromFloat32Probabilities() {
    float[][][] p = { // [member][sample][class]
      {{0.7f, 0.2f, 0.1f}, {0.3f, 0.5f, 0.2f}, {0.2f, 0.7f, 0.1f}},
      {{0.7f, 0.2f, 0.1f}, {0.3f, 0.2f, 0.5f}, {0.2f, 0.65f, 0.15f}},
      {{0.7f, 0.2f, 0.1f}, {0.3f, 0.5f, 0.2f}, {0.2f, 0.65f, 0.15f}}
    };
    List<float[]> probs = new ArrayList<>();
    for (float[][] member : p) {
      float[] flat = new float[9];
      for (int i = 0; i < 3; i++) {
        System.arraycopy(member[i], 0, flat, 3 * i, 3);
      }
      probs.add(flat);
    }
    RashomonCapacity.BatchResult r = RashomonCapacity.batch(probs, 3, 3, ForkJoinPool.commonPool());
    // float32 storage moves each row by ≤ 6e-8 relative, the capacity by less than that.
    assertThat(r.rc()).containsExactly(new double[] {1, 1.0686694, 1.0029867}, within(2e-7));
    assertThat(r.rc()[0]).isEqualTo(1.0);
    assertThat(r.meanRc()).isCloseTo(1.0238854, within(2e-7));
    assertThat(r.notConverged()).isZero();
  }

  // ---------------------------------------------------------------------------------------------
  // Properties and closed forms

  @Test
  void identicalRowsGiveExactlyOneWithoutIterating() {
    double[] row = {0.25, 0.5, 0.125, 0.125};
    for (int copies = 1; copies <= 5; copies++) {
      double[][] q = new double[copies][];
      Arrays.fill(q, row);
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertThat(r.capacityNats()).isEqualTo(0.0);
      assertThat(r.upperNats()).isEqualTo(0.0);
      assertThat(r.rc()).isEqualTo(1.0);
      assertThat(r.iterations()).isZero();
      assertThat(r.converged()).isTrue();
      assertThat(r.input().get(0)).isEqualTo(1.0);
    }
  }

  @Test
  void duplicateRowsDoNotChangeTheCapacity() {
    Random rnd = new Random(5);
    for (int trial = 0; trial < 50; trial++) {
      double[][] q = randomChannel(rnd, 2 + rnd.nextInt(6), 2 + rnd.nextInt(8), 1.0);
      RashomonCapacity.Result once = RashomonCapacity.of(q);
      // Copies appended: the distinct rows and their order are unchanged, so is every bit.
      List<double[]> rows = new ArrayList<>(Arrays.asList(q));
      for (int extra = 0; extra < 4; extra++) {
        rows.add(q[rnd.nextInt(q.length)].clone());
      }
      RashomonCapacity.Result appended = RashomonCapacity.of(rows.toArray(new double[0][]));
      assertThat(appended.capacityNats()).isEqualTo(once.capacityNats());
      assertThat(appended.upperNats()).isEqualTo(once.upperNats());
      // Shuffled: another order of the same channel, so the same C within the certificate.
      Collections.shuffle(rows, rnd);
      RashomonCapacity.Result shuffled = RashomonCapacity.of(rows.toArray(new double[0][]));
      assertThat(shuffled.capacityNats()).isLessThanOrEqualTo(once.upperNats() + SLACK);
      assertThat(once.capacityNats()).isLessThanOrEqualTo(shuffled.upperNats() + SLACK);
      assertThat(shuffled.capacityNats()).isCloseTo(once.capacityNats(), within(GAP));
    }
  }

  @Test
  void binarySymmetricChannelSweep() {
    // Rows (1 − p, p) and (p, 1 − p): C = 1 − H(p) bits, at r = (½, ½).
    for (double p :
        new double[] {1e-6, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.49, 0.499, 0.4999}) {
      double[][] q = {{1 - p, p}, {p, 1 - p}};
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertCapacity(r, (1 - h2(p)) * LN2);
      assertBoundsFromInput(q, r);
    }
  }

  @Test
  void zChannelSweep() {
    // Rows (1, 0) and (p, 1 − p): C = log2(1 + (1 − p)·p^{p/(1−p)}) bits.
    for (double p : new double[] {1e-4, 0.01, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.99, 0.999}) {
      double[][] q = {{1, 0}, {p, 1 - p}};
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertCapacity(r, Math.log(1 + (1 - p) * Math.pow(p, p / (1 - p))));
      assertBoundsFromInput(q, r);
    }
  }

  @Test
  void binaryMembersBetweenTheExtremesChangeNothing() {
    // K = 2: every row (p, 1 − p) is a mixture of the rows with the smallest and the largest p,
    // and by concavity of entropy a mixture row never helps, so C is the two-row capacity of the
    // extremes, found here by a 1-D search.
    Random rnd = new Random(6);
    for (int trial = 0; trial < 20; trial++) {
      int s = 3 + rnd.nextInt(30);
      double[][] q = new double[s][];
      double lo = 1;
      double hi = 0;
      for (int m = 0; m < s; m++) {
        double p = rnd.nextDouble();
        q[m] = new double[] {p, 1 - p};
        lo = Math.min(lo, p);
        hi = Math.max(hi, p);
      }
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertCapacity(r, twoRowCapacity(new double[] {lo, 1 - lo}, new double[] {hi, 1 - hi}));
      assertBoundsFromInput(q, r);
      for (int m = 0; m < s; m++) {
        if (q[m][0] != lo && q[m][0] != hi) {
          assertThat(r.input().get(m)).isEqualTo(0.0);
        }
      }
    }
  }

  @Test
  void columnsEveryRowLeavesEmptyChangeNothing() {
    double[][] narrow = {{0.5, 0.5}, {0.2, 0.8}, {0.9, 0.1}};
    double[][] wide = {{0, 0.5, 0, 0.5, 0}, {0, 0.2, 0, 0.8, 0}, {0, 0.9, 0, 0.1, 0}};
    RashomonCapacity.Result a = RashomonCapacity.of(narrow);
    RashomonCapacity.Result b = RashomonCapacity.of(wide);
    assertThat(b.capacityNats()).isEqualTo(a.capacityNats());
    assertThat(b.upperNats()).isEqualTo(a.upperNats());
    assertBoundsFromInput(wide, b);
  }

  @Test
  void entriesBelowTheFlushThresholdCountAsZero() {
    RashomonCapacity.Result r = RashomonCapacity.of(new double[][] {{1, 1e-250}, {0, 1}});
    assertCapacity(r, LN2);
  }

  @Test
  void agreesWithPlainBlahutArimotoOnRandomChannels() {
    Random rnd = new Random(11);
    for (int trial = 0; trial < 60; trial++) {
      double[][] q = randomChannel(rnd, 2 + rnd.nextInt(6), 2 + rnd.nextInt(7), 1.5);
      double[] ba = plainBlahutArimoto(q, 1e-10, 2_000_000);
      assertThat(ba[1] - ba[0]).as("plain BA reached its 1e-10 gap").isLessThanOrEqualTo(1e-10);
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertThat(r.converged()).isTrue();
      // Each method's lower bound is below the other's upper bound, and the values agree to the
      // sum of the two gaps.
      assertThat(r.capacityNats()).isLessThanOrEqualTo(ba[1] + SLACK);
      assertThat(ba[0]).isLessThanOrEqualTo(r.upperNats() + SLACK);
      assertThat(r.capacityNats()).isCloseTo(ba[0], within(GAP + 1e-10));
      assertBoundsFromInput(q, r);
    }
  }

  @Test
  void certifiesOnAThousandNearAgreeingSets() {
    Random rnd = new Random(12);
    double[] noises = {1e-4, 1e-3, 0.01, 0.05, 0.2, 1};
    for (int trial = 0; trial < 1000; trial++) {
      int s = 2 + rnd.nextInt(39);
      int k = 2 + rnd.nextInt(119);
      double[][] q = nearAgreeing(rnd, s, k, noises[trial % noises.length]);
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertThat(r.converged()).as("trial %d (%d × %d)", trial, s, k).isTrue();
      assertThat(r.upperNats() - r.capacityNats()).isLessThanOrEqualTo(GAP);
      assertThat(r.capacityNats()).isGreaterThanOrEqualTo(0);
      assertThat(r.rc()).isBetween(1.0, (double) Math.min(s, k));
      assertBoundsFromInput(q, r);
    }
  }

  @Test
  void referenceMethodAsWrittenAgrees() {
    // PROBES.md §3.3's loop, kept as the baseline: it certifies on the closed forms too, and
    // agrees with the default method on near-agreeing sets.
    double[][] bsc = {{0.9, 0.1}, {0.1, 0.9}};
    CapacitySolver ref = solved(bsc, CapacitySolver.Method.REFERENCE);
    assertThat(ref.converged).isTrue();
    assertThat(ref.lower).isCloseTo((1 - h2(0.1)) * LN2, within(GAP));
    Random rnd = new Random(13);
    for (int trial = 0; trial < 20; trial++) {
      double[][] q = nearAgreeing(rnd, 2 + rnd.nextInt(8), 2 + rnd.nextInt(20), 0.05);
      CapacitySolver a = solved(q, CapacitySolver.Method.REFERENCE);
      CapacitySolver b = solved(q, CapacitySolver.Method.NEWTON);
      assertThat(a.converged && b.converged).isTrue();
      assertThat(a.lower).isLessThanOrEqualTo(b.upper + SLACK);
      assertThat(b.lower).isLessThanOrEqualTo(a.upper + SLACK);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Errors

  @Test
  void invalidChannelsAreRejectedNamingTheRow() {
    assertThatThrownBy(() -> RashomonCapacity.of(new double[0][]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("a channel needs at least one row (member); got none");
    assertThatThrownBy(() -> RashomonCapacity.of(new double[][] {{}}))
        .hasMessage("row 0 has no entries; a row needs at least one class");
    assertThatThrownBy(() -> RashomonCapacity.of(new double[][] {{0.5, 0.5}, {1, 0, 0}}))
        .hasMessage("row 1 has 3 entries; row 0 has 2");
    assertThatThrownBy(() -> RashomonCapacity.of(new double[][] {{0.5, 0.5}, {1.5, -0.5}}))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("row 1: entry 1 = -0.5; a probability must be finite and ≥ 0");
    assertThatThrownBy(() -> RashomonCapacity.of(new double[][] {{Double.NaN, 1}}))
        .hasMessage("row 0: entry 0 = NaN; a probability must be finite and ≥ 0");
    assertThatThrownBy(
            () -> RashomonCapacity.of(new double[][] {{1, 0}, {0, Double.POSITIVE_INFINITY}}))
        .hasMessage("row 1: entry 1 = Infinity; a probability must be finite and ≥ 0");
    assertThatThrownBy(() -> RashomonCapacity.of(new double[][] {{1, 0}, {0.5, 0.25}}))
        .hasMessage("row 1: entries sum to 0.75; a probability vector sums to 1 within 1e-6");
    // Within the tolerance: accepted (float32 storage rounds sums by up to 6e-8).
    assertThat(RashomonCapacity.of(new double[][] {{1 + 5e-7, 0}, {0, 1}}).converged()).isTrue();
  }

  @Test
  void invalidBatchesAreRejectedNamingMemberAndSample() {
    ForkJoinPool pool = ForkJoinPool.commonPool();
    assertThatThrownBy(() -> RashomonCapacity.batch(List.of(), 1, 2, pool))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("the Rashomon set has no members");
    assertThatThrownBy(() -> RashomonCapacity.batch(List.of(new float[4]), 2, 0, pool))
        .hasMessage("2 samples × 0 classes; need N ≥ 0 and K ≥ 1");
    assertThatThrownBy(
            () -> RashomonCapacity.batch(List.of(new float[] {1, 0}, new float[3]), 1, 2, pool))
        .hasMessage("member 1 has 3 probabilities; expected N·K = 1·2 = 2");
    // Two bad rows in different chunks; the lowest sample is named, whatever ran first.
    int n = 3 * RashomonCapacity.CHUNK;
    float[] good = new float[2 * n];
    float[] bad = new float[2 * n];
    for (int i = 0; i < n; i++) {
      good[2 * i] = 1;
      bad[2 * i + 1] = 1;
    }
    bad[2 * (2 * RashomonCapacity.CHUNK + 5)] = -1;
    bad[2 * 300] = 0.5f;
    assertThatThrownBy(() -> RashomonCapacity.batch(List.of(good, bad), n, 2, pool))
        .hasMessage(
            "member 1, sample 300: entries sum to 1.5; a probability vector sums to 1 within 1e-6");
  }

  // ---------------------------------------------------------------------------------------------
  // Batch

  @Test
  void batchIsTheSameBitForBitOnOneAndTwoThreads() {
    int n = 1000;
    int s = 8;
    int k = 10;
    List<float[]> probs = RashomonCapacityTiming.nearAgreeing(n, s, k, 0.05, 3);
    // Make every tenth sample unanimous, and sample 7 two-valued.
    for (int i = 0; i < n; i += 10) {
      for (int m = 1; m < s; m++) {
        System.arraycopy(probs.get(0), i * k, probs.get(m), i * k, k);
      }
    }
    for (int m = 0; m < s; m++) {
      System.arraycopy(probs.get(m % 2), 7 * k, probs.get(m), 7 * k, k);
    }
    RashomonCapacity.BatchResult one;
    RashomonCapacity.BatchResult two;
    RashomonCapacity.BatchResult three;
    ForkJoinPool p1 = new ForkJoinPool(1);
    ForkJoinPool p2 = new ForkJoinPool(2);
    ForkJoinPool p3 = new ForkJoinPool(3);
    try {
      one = RashomonCapacity.batch(probs, n, k, p1);
      two = RashomonCapacity.batch(probs, n, k, p2);
      three = RashomonCapacity.batch(probs, n, k, p3);
    } finally {
      p1.shutdown();
      p2.shutdown();
      p3.shutdown();
    }
    assertThat(two).isEqualTo(one);
    assertThat(three).isEqualTo(one);
    assertThat(Double.doubleToRawLongBits(two.meanRc()))
        .isEqualTo(Double.doubleToRawLongBits(one.meanRc()));

    // Each sample is what of() gives on the widened rows; the mean is their sum in order / N.
    double sum = 0;
    for (int i = 0; i < n; i++) {
      double[][] q = new double[s][k];
      for (int m = 0; m < s; m++) {
        for (int c = 0; c < k; c++) {
          q[m][c] = probs.get(m)[i * k + c];
        }
      }
      RashomonCapacity.Result r = RashomonCapacity.of(q);
      assertThat(one.capacityNats()[i]).isEqualTo(r.capacityNats());
      assertThat(one.rc()[i]).isEqualTo(r.rc());
      assertThat(one.iterations()[i]).isEqualTo(r.iterations());
      sum += r.rc();
    }
    assertThat(one.meanRc()).isEqualTo(sum / n);
    assertThat(one.rc()[0]).isEqualTo(1.0);
    assertThat(one.iterations()[0]).isZero();
    assertThat(one.notConverged()).isZero();
    assertThat(one.samples()).isEqualTo(n);

    // Nearest-rank statistics of the iteration counts.
    int[] sorted = one.iterations();
    Arrays.sort(sorted);
    assertThat(one.iterationsMedian()).isEqualTo(sorted[n / 2 - 1]);
    assertThat(one.iterationsP90()).isEqualTo(sorted[9 * n / 10 - 1]);
    assertThat(one.iterationsMax()).isEqualTo(sorted[n - 1]);
  }

  @Test
  void emptyBatchHasNoMean() {
    RashomonCapacity.BatchResult r =
        RashomonCapacity.batch(
            List.of(new float[0], new float[0]), 0, 3, ForkJoinPool.commonPool());
    assertThat(r.samples()).isZero();
    assertThat(r.meanRc()).isNaN();
    assertThat(r.iterationsMax()).isZero();
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  /** Rows softmax(scale·ε) with ε standard normal: members that disagree a lot. */
  private static double[][] randomChannel(Random rnd, int s, int k, double scale) {
    double[][] q = new double[s][k];
    for (int m = 0; m < s; m++) {
      for (int c = 0; c < k; c++) {
        q[m][c] = scale * rnd.nextGaussian();
      }
      softmaxInPlace(q[m]);
    }
    return q;
  }

  /**
   * Rows softmax(base + noise·ε_m) with a shared standard normal base: members that nearly agree.
   */
  private static double[][] nearAgreeing(Random rnd, int s, int k, double noise) {
    double[] base = new double[k];
    for (int c = 0; c < k; c++) {
      base[c] = 2 * rnd.nextGaussian();
    }
    double[][] q = new double[s][k];
    for (int m = 0; m < s; m++) {
      for (int c = 0; c < k; c++) {
        q[m][c] = base[c] + noise * rnd.nextGaussian();
      }
      softmaxInPlace(q[m]);
    }
    return q;
  }

  private static void softmaxInPlace(double[] z) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : z) {
      max = Math.max(max, v);
    }
    double sum = 0;
    for (int c = 0; c < z.length; c++) {
      z[c] = Math.exp(z[c] - max);
      sum += z[c];
    }
    for (int c = 0; c < z.length; c++) {
      z[c] /= sum;
    }
  }
}
