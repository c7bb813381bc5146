package io.probestream.probes.linalg;

import java.util.Arrays;
import java.util.Comparator;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.SingularValueDecomposition_F64;

/**
 * Thin singular value decomposition of a small dense matrix (rows × cols), singular values in
 * descending order with their right singular vectors. Immutable.
 */
public final class ThinSvd {
  private final double[] values;
  private final double[][] right; // right[j] = v_j, length cols

  private ThinSvd(double[] values, double[][] right) {
    this.values = values;
    this.right = right;
  }

  /** Decomposes {@code a} (not modified). */
  public static ThinSvd of(double[][] a) {
    int rows = a.length;
    int cols = a[0].length;
    DMatrixRMaj m = new DMatrixRMaj(a);
    SingularValueDecomposition_F64<DMatrixRMaj> svd =
        DecompositionFactory_DDRM.svd(rows, cols, false, true, true);
    if (!svd.decompose(m)) {
      throw new ArithmeticException("SVD of a " + rows + "×" + cols + " matrix did not converge");
    }
    double[] s = svd.getSingularValues();
    int n = svd.numberOfSingularValues();
    DMatrixRMaj v = svd.getV(null, true); // transposed: row j is v_j
    Integer[] order = new Integer[n];
    for (int j = 0; j < n; j++) {
      order[j] = j;
    }
    Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -s[j]));
    double[] values = new double[n];
    double[][] right = new double[n][cols];
    for (int r = 0; r < n; r++) {
      int j = order[r];
      values[r] = s[j];
      for (int c = 0; c < cols; c++) {
        right[r][c] = v.get(j, c);
      }
    }
    return new ThinSvd(values, right);
  }

  /** Number of singular values, min(rows, cols). */
  public int rank() {
    return values.length;
  }

  /** The j-th largest singular value. */
  public double singularValue(int j) {
    return values[j];
  }

  /** The right singular vector of the j-th largest singular value; a copy. */
  public double[] rightVector(int j) {
    return right[j].clone();
  }
}
