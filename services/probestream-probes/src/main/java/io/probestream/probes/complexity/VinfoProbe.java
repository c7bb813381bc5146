package io.probestream.probes.complexity;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.LinearSolverFactory_DDRM;
import org.ejml.interfaces.linsol.LinearSolverDense;

/**
 * {@code vinfo_r2}, {@code vinfo_complexity} and {@code vinfo_directions} of PROBES.md §2.4 from a
 * merged {@link VinfoState}: per layer a ridge fit on the even half, scored on the odd half from
 * moments alone. Stateless; results are immutable.
 */
public final class VinfoProbe {
  /** Default ridge {@code alpha} (PROBES.md §0). */
  public static final double DEFAULT_ALPHA = 1e-3;

  /**
   * A direction whose odd-half variance is at most this counts as constant there and is dropped. z
   * is standardised to variance 1 over the direction samples, so this is the covariance cut of
   * PROBES.md §0 (1e-12 relative) applied to the target; an exact-zero test would keep a constant
   * target whose batch means left rounding residue (≈1e-34) in M2_zz.
   */
  static final double ZERO_TARGET_VARIANCE = 1e-12;

  private VinfoProbe() {}

  /**
   * What §2.4 reports.
   *
   * @param r2 {@code vinfo_r2} per probed layer, in probe order; an entry is null for a layer wider
   *     than {@code max_width} or when every key is null
   * @param complexity {@code vinfo_complexity} of the classifier-feeding layer, or null
   * @param directions {@code vinfo_directions}, the number of directions used, or null whenever
   *     {@code complexity} is null
   * @param directionComplexity 1 − mean_ℓ R²⁺_ℓj for each direction used; empty when null
   * @param notes the reason for every null, never null
   */
  public record Result(
      List<Double> r2,
      Double complexity,
      Integer directions,
      List<Double> directionComplexity,
      List<String> notes) {
    public Result {
      r2 = Collections.unmodifiableList(new ArrayList<>(r2)); // entries may be null
      directionComplexity = List.copyOf(directionComplexity);
      notes = List.copyOf(notes);
    }

    static Result allNull(int layers, String note) {
      return new Result(Collections.nCopies(layers, null), null, null, List.of(), List.of(note));
    }
  }

  /** Every key null: the classifier-feeding layer is too wide for the d×d direction state. */
  public static Result classifierTooWide(int layers, int width, int maxWidth) {
    return Result.allNull(
        layers,
        "vinfo: classifier-feeding layer width " + width + " exceeds max_width = " + maxWidth);
  }

  /**
   * PROBES.md §2.4 steps 2–4.
   *
   * @param layerNames names of the probed layers, in the state's order, for the notes
   * @param alpha ridge strength, positive
   */
  public static Result finish(VinfoState state, double alpha, List<String> layerNames) {
    int layers = state.layers();
    if (layerNames.size() != layers) {
      throw new IllegalArgumentException(
          layerNames.size() + " layer names for " + layers + " probed layers");
    }
    if (!(alpha > 0) || !Double.isFinite(alpha)) {
      throw new IllegalArgumentException("alpha = " + alpha + ": must be positive and finite");
    }
    int c = state.classifierLayer();
    if (state.even(c) == null) {
      return classifierTooWide(layers, state.width(c), state.maxWidth());
    }
    if (state.evenCount() < 2 || state.oddCount() < 2) {
      return Result.allNull(
          layers,
          "vinfo: "
              + state.evenCount()
              + " even-index and "
              + state.oddCount()
              + " odd-index samples; each half needs at least 2");
    }
    if (state.directions() == 0) {
      return Result.allNull(
          layers, "vinfo: no usable direction (the classifier-feeding covariance is zero)");
    }
    // z is the same for every layer, so the classifier layer's odd half decides for all.
    VinfoMoments target = state.odd(c);
    List<Integer> used = new ArrayList<>();
    for (int j = 0; j < state.directions(); j++) {
      if (target.zz(j) > ZERO_TARGET_VARIANCE * target.count()) {
        used.add(j);
      }
    }
    if (used.isEmpty()) {
      return Result.allNull(
          layers, "vinfo: no usable direction (every target is constant on the odd half)");
    }
    List<Double> r2 = new ArrayList<>();
    List<String> notes = new ArrayList<>();
    double[] sumR2 = new double[used.size()];
    int scored = 0;
    for (int l = 0; l < layers; l++) {
      if (state.even(l) == null) {
        r2.add(null);
        notes.add(
            "vinfo: layer "
                + layerNames.get(l)
                + " width "
                + state.width(l)
                + " exceeds max_width = "
                + state.maxWidth()
                + "; left out of vinfo_complexity");
        continue;
      }
      double[] r = layerR2(state.even(l), state.odd(l), used, alpha);
      double mean = 0;
      for (int u = 0; u < r.length; u++) {
        sumR2[u] += r[u];
        mean += r[u];
      }
      r2.add(mean / r.length);
      scored++;
    }
    List<Double> perDirection = new ArrayList<>();
    double complexity = 0;
    for (int u = 0; u < used.size(); u++) {
      double cj = 1 - sumR2[u] / scored;
      perDirection.add(cj);
      complexity += cj;
    }
    return new Result(r2, complexity / used.size(), used.size(), perDirection, notes);
  }

  /** R²⁺_ℓj for the directions {@code used}: ridge on {@code even}, scored on {@code odd}. */
  static double[] layerR2(VinfoMoments even, VinfoMoments odd, List<Integer> used, double alpha) {
    int d = even.width();
    int m = used.size();
    double[][] theta = ridge(even, used, alpha);
    double nOdd = odd.count();
    double[] r2 = new double[m];
    for (int u = 0; u < m; u++) {
      int j = used.get(u);
      double[] t = theta[u];
      double cross = 0; // θᵀ M2_xz,odd[:, j]
      double quad = 0; // θᵀ M2_xx,odd θ
      double shift = 0; // θᵀ (x̄_odd − x̄)
      for (int a = 0; a < d; a++) {
        cross += t[a] * odd.xz(a, j);
        shift += t[a] * (odd.xMean(a) - even.xMean(a));
        double row = 0;
        for (int b = 0; b < d; b++) {
          row += odd.xx(a, b) * t[b];
        }
        quad += t[a] * row;
      }
      double offset = odd.zMean(j) - even.zMean(j) - shift;
      double total = odd.zz(j);
      // PROBES.md §2.4 closed form; a sum of squares, so a rounding-level negative is 0.
      double residual = Math.max(0, total - 2 * cross + quad + nOdd * offset * offset);
      r2[u] = Math.max(0, 1 - residual / total);
    }
    return r2;
  }

  /** θ_j = (C_xx + λI)⁻¹ c_xz,j with λ = alpha·tr(C_xx)/d; all zero when tr C_xx = 0. */
  private static double[][] ridge(VinfoMoments even, List<Integer> used, double alpha) {
    int d = even.width();
    int m = used.size();
    double n = even.count();
    double[][] theta = new double[m][d];
    double trace = 0;
    for (int a = 0; a < d; a++) {
      trace += even.xx(a, a) / n;
    }
    if (!(trace > 0)) {
      return theta;
    }
    double lambda = alpha * trace / d;
    DMatrixRMaj lhs = new DMatrixRMaj(d, d);
    DMatrixRMaj rhs = new DMatrixRMaj(d, m);
    for (int a = 0; a < d; a++) {
      for (int b = 0; b < d; b++) {
        lhs.unsafe_set(a, b, even.xx(a, b) / n + (a == b ? lambda : 0));
      }
      for (int u = 0; u < m; u++) {
        rhs.unsafe_set(a, u, even.xz(a, used.get(u)) / n);
      }
    }
    DMatrixRMaj solution = new DMatrixRMaj(d, m);
    LinearSolverDense<DMatrixRMaj> chol = LinearSolverFactory_DDRM.symmPosDef(d);
    if (chol.setA(chol.modifiesA() ? lhs.copy() : lhs)) {
      chol.solve(rhs, solution);
    } else {
      // λ > 0 makes the system positive definite; only rounding on a near-constant layer lands
      // here.
      LinearSolverDense<DMatrixRMaj> pinv = LinearSolverFactory_DDRM.pseudoInverse(true);
      pinv.setA(lhs);
      pinv.solve(rhs, solution);
    }
    for (int u = 0; u < m; u++) {
      for (int a = 0; a < d; a++) {
        theta[u][a] = solution.unsafe_get(a, u);
      }
    }
    return theta;
  }
}
