package io.probestream.probes.complexity;

/**
 * {@code effective_rank} of PROBES.md §2.3 (Roy and Vetterli 2007): exp of the entropy of the
 * normalised singular values of the centred feature matrix, from its streamed scatter. Stateless.
 */
public final class EffectiveRank {
  public static final String NAME = "effective_rank";

  /** Default {@code max_width}: wider layers would need a d×d state (PROBES.md §0). */
  public static final int DEFAULT_MAX_WIDTH = 4096;

  /** λ_j ≤ 1e-12·λ_max of M2 (s_j² ≤ 1e-12·s_max²) counts as 0 (PROBES.md §0). */
  static final double EIGEN_CUT = 1e-12;

  private EffectiveRank() {}

  /**
   * The value, or null with the reason.
   *
   * @param value effective rank in [1, min(N − 1, d)], or null
   * @param note why {@code value} is null, or null when it is not
   */
  public record Result(Double value, String note) {}

  /**
   * Whether a layer of this width gets an effective rank at all; callers check it before allocating
   * a d×d {@link ScatterMoments}.
   */
  public static boolean fits(int width, int maxWidth) {
    return width <= maxWidth;
  }

  /** The null result of a layer too wide for the d×d state. */
  public static Result tooWide(int width, int maxWidth) {
    return new Result(null, NAME + ": layer width " + width + " exceeds max_width = " + maxWidth);
  }

  /** PROBES.md §2.3 from the merged scatter of the layer's finite samples. */
  public static Result of(ScatterMoments moments, int maxWidth) {
    if (!fits(moments.width(), maxWidth)) {
      return tooWide(moments.width(), maxWidth);
    }
    if (moments.count() < 2) {
      return new Result(null, NAME + ": " + moments.count() + " finite samples; needs at least 2");
    }
    ScatterEigen eig = ScatterEigen.of(moments, false);
    int kept = eig.kept(EIGEN_CUT);
    if (kept == 0) {
      return new Result(null, NAME + ": every feature is constant (all singular values are 0)");
    }
    // Singular values of the centred N×d matrix are √λ(M2); not covariance eigenvalues (§2.3).
    double[] s = new double[kept];
    double total = 0;
    for (int j = 0; j < kept; j++) {
      s[j] = Math.sqrt(eig.value(j));
      total += s[j];
    }
    double entropy = 0;
    for (int j = 0; j < kept; j++) {
      double p = s[j] / total;
      entropy -= p * Math.log(p);
    }
    return new Result(Math.exp(entropy), null);
  }
}
