package io.probestream.probes.complexity;

import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;

/**
 * Pass-2 state of V-information for one probed layer and one half of the reference set (PROBES.md
 * §2.4): n, x̄ (d), z̄ (k), M2_xx (d×d), M2_xz (d×k) and the diagonal of M2_zz (k), where x are the
 * layer's features and z the targets of the same samples. Only the diagonal of M2_zz is kept
 * because R²_ℓj never uses the cross-moments between directions. Immutable; {@link #merge} is
 * Chan's update (PROBES.md §0).
 */
public final class VinfoMoments {
  private final int width;
  private final int k;
  private final long count;
  private final double[] xMean;
  private final double[] zMean;
  private final double[] xx; // d×d row-major
  private final double[] xz; // d×k row-major
  private final double[] zz; // k

  private VinfoMoments(
      int width,
      int k,
      long count,
      double[] xMean,
      double[] zMean,
      double[] xx,
      double[] xz,
      double[] zz) {
    this.width = width;
    this.k = k;
    this.count = count;
    this.xMean = xMean;
    this.zMean = zMean;
    this.xx = xx;
    this.xz = xz;
    this.zz = zz;
  }

  /** The state before any sample. */
  public static VinfoMoments empty(int width, int k) {
    return new VinfoMoments(
        width,
        k,
        0,
        new double[width],
        new double[k],
        new double[width * width],
        new double[width * k],
        new double[k]);
  }

  /**
   * Moments of paired rows (two passes, exact): {@code x[i]} the layer's features and {@code z[i]}
   * the targets of sample i, all finite.
   */
  static VinfoMoments of(int width, int k, double[][] x, double[][] z) {
    if (x.length == 0) {
      return empty(width, k);
    }
    double[] xm = ScatterMoments.columnMean(width, x);
    double[] zm = ScatterMoments.columnMean(k, z);
    DMatrixRMaj xc = ScatterMoments.centred(width, x, xm);
    DMatrixRMaj zc = ScatterMoments.centred(k, z, zm);
    DMatrixRMaj mxx = new DMatrixRMaj(width, width);
    CommonOps_DDRM.multInner(xc, mxx);
    DMatrixRMaj mxz = new DMatrixRMaj(width, k);
    CommonOps_DDRM.multTransA(xc, zc, mxz);
    double[] zz = new double[k];
    for (int i = 0; i < z.length; i++) {
      for (int j = 0; j < k; j++) {
        double t = zc.data[i * k + j];
        zz[j] += t * t;
      }
    }
    return new VinfoMoments(width, k, x.length, xm, zm, mxx.data, mxz.data, zz);
  }

  /** Chan's pairwise update for means, scatter and co-moment (δ_x δ_zᵀ). */
  public VinfoMoments merge(VinfoMoments other) {
    if (other.width != width || other.k != k) {
      throw new IllegalArgumentException(
          "cannot merge vinfo moments of width "
              + width
              + ", k "
              + k
              + " with width "
              + other.width
              + ", k "
              + other.k);
    }
    if (other.count == 0) {
      return this;
    }
    if (count == 0) {
      return other;
    }
    long n = count + other.count;
    double wB = (double) other.count / n;
    double between = (double) count * other.count / n;
    double[] dx = new double[width];
    double[] xm = new double[width];
    for (int a = 0; a < width; a++) {
      dx[a] = other.xMean[a] - xMean[a];
      xm[a] = xMean[a] + dx[a] * wB;
    }
    double[] dz = new double[k];
    double[] zm = new double[k];
    double[] mzz = new double[k];
    for (int j = 0; j < k; j++) {
      dz[j] = other.zMean[j] - zMean[j];
      zm[j] = zMean[j] + dz[j] * wB;
      mzz[j] = zz[j] + other.zz[j] + between * dz[j] * dz[j];
    }
    double[] mxx = new double[width * width];
    double[] mxz = new double[width * k];
    for (int a = 0; a < width; a++) {
      double da = dx[a] * between;
      for (int b = 0; b < width; b++) {
        mxx[a * width + b] = xx[a * width + b] + other.xx[a * width + b] + da * dx[b];
      }
      for (int j = 0; j < k; j++) {
        mxz[a * k + j] = xz[a * k + j] + other.xz[a * k + j] + da * dz[j];
      }
    }
    return new VinfoMoments(width, k, n, xm, zm, mxx, mxz, mzz);
  }

  public int width() {
    return width;
  }

  /** Number of target directions k′. */
  public int directions() {
    return k;
  }

  public long count() {
    return count;
  }

  double xMean(int a) {
    return xMean[a];
  }

  double zMean(int j) {
    return zMean[j];
  }

  /** M2_xx[a][b]. */
  public double xx(int a, int b) {
    return xx[a * width + b];
  }

  /** M2_xz[a][j]. */
  public double xz(int a, int j) {
    return xz[a * k + j];
  }

  /** M2_zz[j][j] = Σ (z_j − z̄_j)². */
  public double zz(int j) {
    return zz[j];
  }

  /** Doubles held: d² + d·k + d + 2k, independent of the sample count. */
  long storedDoubles() {
    return (long) width * width + (long) width * k + width + 2L * k;
  }
}
