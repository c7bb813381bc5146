package io.probestream.probes.collapse;

/**
 * One class's features as count, mean and scatter (sum of squared distances to the mean), in
 * float64. Immutable; merges exactly, in any order (PROBES.md §0, Chan's pairwise update).
 */
public final class ClassMoments {
  private final long count;
  private final double[] mean; // owned; never mutated after construction
  private final double scatter;

  ClassMoments(long count, double[] mean, double scatter) {
    if (count < 1) {
      throw new IllegalArgumentException("a class moment needs at least one sample, got " + count);
    }
    this.count = count;
    this.mean = mean;
    this.scatter = scatter;
  }

  /** Moments of the given rows, each a feature vector of the same width (two-pass, exact). */
  public static ClassMoments of(double[]... rows) {
    int d = rows[0].length;
    double[] mean = new double[d];
    for (double[] r : rows) {
      for (int j = 0; j < d; j++) {
        mean[j] += r[j];
      }
    }
    for (int j = 0; j < d; j++) {
      mean[j] /= rows.length;
    }
    double scatter = 0;
    for (double[] r : rows) {
      scatter += squaredDistance(r, mean);
    }
    return new ClassMoments(rows.length, mean, scatter);
  }

  /** Chan et al.'s pairwise update; unlike sums of squares it does not cancel on offset data. */
  public ClassMoments merge(ClassMoments other) {
    if (other.mean.length != mean.length) {
      throw new IllegalArgumentException(
          "cannot merge class moments of width " + mean.length + " and " + other.mean.length);
    }
    long n = count + other.count;
    double[] merged = new double[mean.length];
    double wB = (double) other.count / n;
    for (int j = 0; j < mean.length; j++) {
      merged[j] = mean[j] + (other.mean[j] - mean[j]) * wB;
    }
    double between = squaredDistance(mean, other.mean) * ((double) count * other.count / n);
    return new ClassMoments(n, merged, scatter + other.scatter + between);
  }

  public long count() {
    return count;
  }

  /** The class mean μ_c; a copy. */
  public double[] mean() {
    return mean.clone();
  }

  double meanAt(int j) {
    return mean[j];
  }

  int width() {
    return mean.length;
  }

  /** Σ ‖h − μ_c‖² over the class. */
  public double scatter() {
    return scatter;
  }

  /** V_c = scatter / n_c, the biased within-class variance of PROBES.md §1.1. */
  public double variance() {
    return scatter / count;
  }

  static double squaredDistance(double[] a, double[] b) {
    double s = 0;
    for (int j = 0; j < a.length; j++) {
      double t = a[j] - b[j];
      s += t * t;
    }
    return s;
  }
}
