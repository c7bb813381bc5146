package io.probestream.probes.complexity;

/**
 * The V-information targets of PROBES.md §2.4 step 1: the top k′ = min(k, kept) eigenvectors v_j of
 * the classifier-feeding layer's covariance, with z_j(h) = v_jᵀ(h − μ)/√λ_j. Immutable.
 */
public final class VinfoDirections {
  /** Default {@code k} (PROBES.md §0). */
  public static final int DEFAULT_K = 8;

  private final int width;
  private final double[] mean; // μ of the classifier-feeding layer
  private final double[][] weights; // weights[j] = v_j/√λ_j, so z_j = weights[j]ᵀ(h − μ)
  private final double[] eigenvalues; // covariance eigenvalues λ_j (M2/n) of the kept directions

  private VinfoDirections(int width, double[] mean, double[][] weights, double[] eigenvalues) {
    this.width = width;
    this.mean = mean;
    this.weights = weights;
    this.eigenvalues = eigenvalues;
  }

  /**
   * Directions from the merged pass-1 scatter of the classifier-feeding layer.
   *
   * @param k the requested number of directions, at least 1
   */
  public static VinfoDirections of(ScatterMoments classifier, int k) {
    if (k < 1) {
      throw new IllegalArgumentException("k = " + k + ": vinfo needs at least 1 direction");
    }
    int d = classifier.width();
    if (classifier.count() == 0) {
      return new VinfoDirections(d, new double[d], new double[0][], new double[0]);
    }
    ScatterEigen eig = ScatterEigen.of(classifier, true);
    // The cut is relative, so it is the same on M2 and on the covariance M2/n.
    int kept = Math.min(k, eig.kept(EffectiveRank.EIGEN_CUT));
    double n = classifier.count();
    double[][] weights = new double[kept][];
    double[] lambda = new double[kept];
    for (int j = 0; j < kept; j++) {
      lambda[j] = eig.value(j) / n; // biased covariance: VI-1's diag(2.5, 1)
      double scale = 1 / Math.sqrt(lambda[j]);
      double[] v = eig.vector(j);
      for (int a = 0; a < d; a++) {
        v[a] *= scale;
      }
      weights[j] = v;
    }
    return new VinfoDirections(d, classifier.mean(), weights, lambda);
  }

  /** Width of the classifier-feeding layer. */
  public int width() {
    return width;
  }

  /** k′, the number of directions (0 when the covariance is zero). */
  public int count() {
    return weights.length;
  }

  /** Covariance eigenvalue λ_j of direction j. */
  public double eigenvalue(int j) {
    return eigenvalues[j];
  }

  /**
   * z(h) for the classifier-feeding features {@code h[offset .. offset + width)}, into {@code z}.
   */
  void project(float[] h, int offset, double[] z) {
    for (int j = 0; j < weights.length; j++) {
      double[] w = weights[j];
      double s = 0;
      for (int a = 0; a < width; a++) {
        s += w[a] * ((double) h[offset + a] - mean[a]);
      }
      z[j] = s;
    }
  }

  /** Doubles held: d + k′·d + k′. */
  long storedDoubles() {
    return width + (long) weights.length * width + weights.length;
  }
}
