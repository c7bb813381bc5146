package io.probestream.probes.complexity;

/**
 * One hidden layer as Iterative Feature Merging sees it (PROBES.md §2.1): incoming weights {@code
 * wIn} (n0 × d_in, one row per unit), incoming bias {@code bIn} (n0) and outgoing weights {@code
 * wOut} (d_out × n0, one column per unit), all float64. The arrays are owned by the record and
 * never written after construction (they are not copied: a 4,096-unit layer is hundreds of MiB).
 *
 * @param wIn incoming rows, never null, n0 ≥ 1 rows of equal length d_in ≥ 1
 * @param bIn incoming bias, never null, length n0
 * @param wOut outgoing weights, never null, d_out ≥ 1 rows of length n0
 */
public record IfmLayer(double[][] wIn, double[] bIn, double[][] wOut) {

  public IfmLayer {
    if (wIn.length < 1) {
      throw new IllegalArgumentException("ifm layer needs at least 1 unit; W_in has 0 rows");
    }
    int dIn = wIn[0].length;
    if (dIn < 1) {
      throw new IllegalArgumentException("W_in rows have length 0; expected d_in ≥ 1");
    }
    for (int u = 0; u < wIn.length; u++) {
      if (wIn[u].length != dIn) {
        throw new IllegalArgumentException(
            "W_in row " + u + " has length " + wIn[u].length + "; expected d_in = " + dIn);
      }
    }
    if (bIn.length != wIn.length) {
      throw new IllegalArgumentException(
          "b_in has length " + bIn.length + "; expected n0 = " + wIn.length);
    }
    if (wOut.length < 1) {
      throw new IllegalArgumentException("W_out has 0 rows; expected d_out ≥ 1");
    }
    for (int o = 0; o < wOut.length; o++) {
      if (wOut[o].length != wIn.length) {
        throw new IllegalArgumentException(
            "W_out row " + o + " has length " + wOut[o].length + "; expected n0 = " + wIn.length);
      }
    }
  }

  /** Number of units n0. */
  public int units() {
    return bIn.length;
  }

  public int inputWidth() {
    return wIn[0].length;
  }

  public int outputWidth() {
    return wOut.length;
  }

  /** Length of a unit vector, d_in + 1 + d_out. */
  public int unitVectorLength() {
    return inputWidth() + 1 + outputWidth();
  }

  /** True when every weight and bias is finite; IFM is null otherwise (PROBES.md §0). */
  public boolean finite() {
    for (double[] row : wIn) {
      for (double v : row) {
        if (!Double.isFinite(v)) {
          return false;
        }
      }
    }
    for (double v : bIn) {
      if (!Double.isFinite(v)) {
        return false;
      }
    }
    for (double[] row : wOut) {
      for (double v : row) {
        if (!Double.isFinite(v)) {
          return false;
        }
      }
    }
    return true;
  }

  /** f_u = [W_in[u,:], b_in[u], W_out[:,u]] of PROBES.md §2.1, a new array. */
  public double[] unitVector(int u) {
    int dIn = inputWidth();
    double[] f = new double[unitVectorLength()];
    System.arraycopy(wIn[u], 0, f, 0, dIn);
    f[dIn] = bIn[u];
    for (int o = 0; o < wOut.length; o++) {
      f[dIn + 1 + o] = wOut[o][u];
    }
    return f;
  }

  /**
   * This layer with a {@code BatchNormalization} after the producer folded in (PROBES.md §2.1): w′
   * = γ·w/√(var+eps), b′ = γ·(b − mean)/√(var+eps) + β. Arguments are per unit (length n0); W_out
   * is shared with this layer, not copied.
   */
  public IfmLayer foldBatchNorm(
      double[] gamma, double[] beta, double[] mean, double[] var, double eps) {
    int n = units();
    for (double[] a : new double[][] {gamma, beta, mean, var}) {
      if (a.length != n) {
        throw new IllegalArgumentException(
            "batch-norm parameter has length " + a.length + "; expected n0 = " + n);
      }
    }
    double[][] w = new double[n][];
    double[] b = new double[n];
    for (int u = 0; u < n; u++) {
      double s = gamma[u] / Math.sqrt(var[u] + eps);
      double[] row = wIn[u].clone();
      for (int j = 0; j < row.length; j++) {
        row[j] *= s;
      }
      w[u] = row;
      b[u] = s * (bIn[u] - mean[u]) + beta[u];
    }
    return new IfmLayer(w, b, wOut);
  }
}
