package io.probestream.probes.complexity;

import io.probestream.probes.FeatureBatch;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * One layer's finite features as count n, mean μ and d×d scatter M2 = Σ (h − μ)(h − μ)ᵀ, plus the
 * count of rows dropped as non-finite (PROBES.md §2.3). Immutable; {@link #merge} is Chan's
 * pairwise update (PROBES.md §0), so batches and instances combine in any order. Holds d² + d
 * doubles whatever the number of samples.
 */
public final class ScatterMoments {
  private final int width;
  private final long count;
  private final double[] mean; // owned; never mutated after construction
  private final double[] scatter; // d×d row-major, symmetric; owned, never mutated
  private final long nonfinite;

  private ScatterMoments(int width, long count, double[] mean, double[] scatter, long nonfinite) {
    this.width = width;
    this.count = count;
    this.mean = mean;
    this.scatter = scatter;
    this.nonfinite = nonfinite;
  }

  /** The state before any sample. */
  public static ScatterMoments empty(int width) {
    if (width < 1) {
      throw new IllegalArgumentException("width = " + width + ": must be at least 1");
    }
    return new ScatterMoments(width, 0, new double[width], new double[width * width], 0);
  }

  /**
   * Moments of one batch. A row with a non-finite feature (or logit, when the batch carries logits)
   * is counted in {@link #nonfinite} and left out (PROBES.md §0). Two passes over the batch, so the
   * batch-local scatter is exact before it is merged.
   */
  public static ScatterMoments of(FeatureBatch batch) {
    int d = batch.width();
    float[] h = batch.features();
    int used = 0;
    boolean[] keep = new boolean[batch.rows()];
    for (int i = 0; i < batch.rows(); i++) {
      keep[i] = batch.finite(i);
      if (keep[i]) {
        used++;
      }
    }
    double[][] rows = new double[used][];
    int r = 0;
    for (int i = 0; i < batch.rows(); i++) {
      if (keep[i]) {
        double[] row = new double[d];
        for (int j = 0; j < d; j++) {
          row[j] = h[i * d + j];
        }
        rows[r++] = row;
      }
    }
    return fromFiniteRows(d, rows, batch.rows() - used);
  }

  /**
   * Moments of rows already widened to float64, each {@code width} long; a row with a NaN or ±Inf
   * is counted in {@link #nonfinite} and left out.
   */
  public static ScatterMoments of(int width, double[]... rows) {
    int used = 0;
    for (double[] row : rows) {
      if (row.length != width) {
        throw new IllegalArgumentException(
            "row has " + row.length + " values; expected width = " + width);
      }
      if (finite(row)) {
        used++;
      }
    }
    double[][] kept = new double[used][];
    int r = 0;
    for (double[] row : rows) {
      if (finite(row)) {
        kept[r++] = row;
      }
    }
    return fromFiniteRows(width, kept, rows.length - used);
  }

  private static ScatterMoments fromFiniteRows(int d, double[][] rows, long nonfinite) {
    ScatterMoments empty = empty(d);
    if (rows.length == 0) {
      return new ScatterMoments(d, 0, empty.mean, empty.scatter, nonfinite);
    }
    double[] mean = columnMean(d, rows);
    DMatrixRMaj centred = centred(d, rows, mean);
    DMatrixRMaj m2 = new DMatrixRMaj(d, d);
    CommonOps_DDRM.multInner(centred, m2);
    return new ScatterMoments(d, rows.length, mean, m2.data, nonfinite);
  }

  static double[] columnMean(int d, double[][] rows) {
    double[] mean = new double[d];
    for (double[] row : rows) {
      for (int j = 0; j < d; j++) {
        mean[j] += row[j];
      }
    }
    for (int j = 0; j < d; j++) {
      mean[j] /= rows.length;
    }
    return mean;
  }

  static DMatrixRMaj centred(int d, double[][] rows, double[] mean) {
    DMatrixRMaj c = new DMatrixRMaj(rows.length, d);
    for (int i = 0; i < rows.length; i++) {
      for (int j = 0; j < d; j++) {
        c.data[i * d + j] = rows[i][j] - mean[j];
      }
    }
    return c;
  }

  static boolean finite(double[] row) {
    for (double v : row) {
      if (!Double.isFinite(v)) {
        return false;
      }
    }
    return true;
  }

  /** Chan et al.'s pairwise update; unlike raw Σhhᵀ − nμμᵀ it does not cancel on offset data. */
  public ScatterMoments merge(ScatterMoments other) {
    if (other.width != width) {
      throw new IllegalArgumentException(
          "cannot merge scatter moments of width " + width + " and " + other.width);
    }
    long nf = nonfinite + other.nonfinite;
    if (other.count == 0) {
      return new ScatterMoments(width, count, mean, scatter, nf);
    }
    if (count == 0) {
      return new ScatterMoments(width, other.count, other.mean, other.scatter, nf);
    }
    long n = count + other.count;
    double wB = (double) other.count / n;
    double between = (double) count * other.count / n;
    double[] delta = new double[width];
    double[] mu = new double[width];
    for (int j = 0; j < width; j++) {
      delta[j] = other.mean[j] - mean[j];
      mu[j] = mean[j] + delta[j] * wB;
    }
    double[] m2 = new double[width * width];
    for (int a = 0; a < width; a++) {
      double da = delta[a] * between;
      int base = a * width;
      for (int b = 0; b < width; b++) {
        m2[base + b] = scatter[base + b] + other.scatter[base + b] + da * delta[b];
      }
    }
    return new ScatterMoments(width, n, mu, m2, nf);
  }

  public int width() {
    return width;
  }

  /** Samples that entered the statistics. */
  public long count() {
    return count;
  }

  /** Rows left out because a feature (or logit) was NaN or ±Inf. */
  public long nonfinite() {
    return nonfinite;
  }

  /** The mean μ; a copy. */
  public double[] mean() {
    return mean.clone();
  }

  /** M2[a][b] = Σ (h_a − μ_a)(h_b − μ_b). */
  public double scatterAt(int a, int b) {
    return scatter[a * width + b];
  }

  /** M2 as a fresh EJML matrix (the caller may modify it). */
  DMatrixRMaj scatterMatrix() {
    return DMatrixRMaj.wrap(width, width, scatter.clone());
  }

  double meanAt(int j) {
    return mean[j];
  }

  /** Doubles held by this state: d² + d, independent of the sample count. */
  long storedDoubles() {
    return (long) width * width + width;
  }
}
