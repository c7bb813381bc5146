package io.probestream.probes.complexity;

/**
 * Streaming state of data-aware IFM (PROBES.md §2.2) for one layer: Σ_i‖y_t(x_i) − y(x_i)‖² for
 * every prefix t = 1..n0−1 of the merge order, Σ_i‖y(x_i)‖², and the samples used and dropped.
 * Immutable; {@link #merge} adds plain sums, so batches combine in any order.
 */
public final class IfmDataMoments {
  /** Note for a layer whose output is zero on every used sample (PROBES.md §2.2). */
  public static final String NOTE_ZERO_OUTPUT =
      "ifm_data: layer output is zero on the reference set";

  private final int n0;
  private final long samples;
  private final long nonfinite;
  private final double[] changeSq; // owned; index t-1 holds the sum for prefix t
  private final double outputSq;

  IfmDataMoments(int n0, long samples, long nonfinite, double[] changeSq, double outputSq) {
    this.n0 = n0;
    this.samples = samples;
    this.nonfinite = nonfinite;
    this.changeSq = changeSq;
    this.outputSq = outputSq;
  }

  /** The state before any sample, for a layer of {@code n0} units. */
  public static IfmDataMoments empty(int n0) {
    return new IfmDataMoments(n0, 0, 0, new double[Math.max(0, n0 - 1)], 0);
  }

  public IfmDataMoments merge(IfmDataMoments other) {
    if (other.n0 != n0) {
      throw new IllegalArgumentException(
          "cannot merge ifm_data states of " + n0 + " and " + other.n0 + " units");
    }
    double[] sum = changeSq.clone();
    for (int t = 0; t < sum.length; t++) {
      sum[t] += other.changeSq[t];
    }
    return new IfmDataMoments(
        n0, samples + other.samples, nonfinite + other.nonfinite, sum, outputSq + other.outputSq);
  }

  /** change_t = ‖Y_t − Y‖_F / ‖Y‖_F for t = 1..n0−1; NaN when ‖Y‖ = 0. */
  public double change(int t) {
    return Math.sqrt(changeSq[t - 1] / outputSq);
  }

  /**
   * {@code ifm_data_units} = n0 − t*, t* the largest t with change_1..change_t all ≤ tau; null when
   * ‖Y‖ = 0 (then {@link #NOTE_ZERO_OUTPUT}).
   */
  public Integer ifmDataUnits(double tau) {
    if (!(outputSq > 0)) {
      return null;
    }
    int t = 0;
    while (t < changeSq.length && change(t + 1) <= tau) {
      t++;
    }
    return n0 - t;
  }

  /** {@code ifm_data_ratio} = ifm_data_units / n0, or null when ‖Y‖ = 0. */
  public Double ifmDataRatio(double tau) {
    Integer u = ifmDataUnits(tau);
    return u == null ? null : (double) u / n0;
  }

  public int n0() {
    return n0;
  }

  public long samples() {
    return samples;
  }

  public long nonfinite() {
    return nonfinite;
  }

  /** Σ_i‖y(x_i)‖² over the used samples. */
  public double outputSq() {
    return outputSq;
  }
}
