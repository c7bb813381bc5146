package io.probestream.probes.complexity;

import java.util.Arrays;
import java.util.Comparator;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * Eigenvalues (descending) and, when asked for, unit eigenvectors of a {@link ScatterMoments}'s
 * symmetric scatter M2. Immutable.
 */
final class ScatterEigen {
  private final double[] values;
  private final double[][] vectors; // vectors[r] = eigenvector of values[r]; null when not asked

  private ScatterEigen(double[] values, double[][] vectors) {
    this.values = values;
    this.vectors = vectors;
  }

  static ScatterEigen of(ScatterMoments moments, boolean withVectors) {
    int d = moments.width();
    DMatrixRMaj m2 = moments.scatterMatrix();
    EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(d, withVectors, true);
    if (!eig.decompose(m2)) {
      throw new ArithmeticException(
          "eigendecomposition of a " + d + "×" + d + " scatter did not converge");
    }
    int n = eig.getNumberOfEigenvalues();
    double[] raw = new double[n];
    for (int j = 0; j < n; j++) {
      raw[j] = eig.getEigenvalue(j).getReal(); // symmetric input: every eigenvalue is real
    }
    Integer[] order = new Integer[n];
    for (int j = 0; j < n; j++) {
      order[j] = j;
    }
    Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -raw[j]));
    double[] values = new double[n];
    double[][] vectors = withVectors ? new double[n][] : null;
    for (int r = 0; r < n; r++) {
      values[r] = raw[order[r]];
      if (withVectors) {
        DMatrixRMaj v = eig.getEigenVector(order[r]);
        vectors[r] = v.data.clone();
      }
    }
    return new ScatterEigen(values, vectors);
  }

  int size() {
    return values.length;
  }

  /** The r-th largest eigenvalue of M2 (may be a rounding-level negative). */
  double value(int r) {
    return values[r];
  }

  /** Unit eigenvector of the r-th largest eigenvalue; a copy. */
  double[] vector(int r) {
    return vectors[r].clone();
  }

  /**
   * How many leading eigenvalues are above {@code cut}·λ_max (PROBES.md §0, "covariance eigenvalue
   * cut"); 0 when λ_max ≤ 0.
   */
  int kept(double cut) {
    if (values.length == 0 || !(values[0] > 0)) {
      return 0;
    }
    double threshold = cut * values[0];
    int k = 0;
    while (k < values.length && values[k] > threshold) {
      k++;
    }
    return k;
  }
}
