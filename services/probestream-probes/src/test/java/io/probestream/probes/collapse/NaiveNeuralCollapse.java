package io.probestream.probes.collapse;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Test oracle: PROBES.md §1 written out in the most direct, non-streaming float64 form, sharing no
 * code with the production probe. All finite rows are held at once; Σ_W and Σ_B are full d×d
 * matrices and Σ_B⁺ comes from a cyclic Jacobi eigen-decomposition written here. Meant for d up to
 * a few tens. Stateless.
 */
final class NaiveNeuralCollapse {
  private static final double SB_EIGEN_CUT = 1e-10; // PROBES.md §0, "Σ_B eigenvalue cut"
  private static final double ZERO_NORM = 1e-12; // PROBES.md §0, "zero norm"

  private NaiveNeuralCollapse() {}

  /**
   * The metrics of one layer: a null value is "undefined", an absent key "not applicable".
   *
   * @param width d, given separately so that an input without finite rows still has one
   * @param rows N feature vectors, finite or not
   * @param labels N class indices
   * @param logits N logit vectors on the classifier-feeding layer, else null
   * @param classifierLayer whether nc3 and nc4 apply
   * @param weight W (C × d, rows = classes) or null when unknown (nc3 is then omitted)
   */
  static Map<String, Double> compute(
      int width,
      double[][] rows,
      int[] labels,
      double[][] logits,
      boolean classifierLayer,
      double[][] weight) {
    int d = width;
    List<double[]> h = new ArrayList<>();
    List<Integer> y = new ArrayList<>();
    List<double[]> z = new ArrayList<>();
    long nonfinite = 0;
    for (int i = 0; i < rows.length; i++) {
      if (!allFinite(rows[i]) || (logits != null && !allFinite(logits[i]))) {
        nonfinite++;
        continue;
      }
      h.add(rows[i]);
      y.add(labels[i]);
      z.add(logits == null ? null : logits[i]);
    }
    int n = h.size();
    TreeSet<Integer> seen = new TreeSet<>(y);
    int k = seen.size();
    int[] ids = seen.stream().mapToInt(Integer::intValue).toArray();
    Map<Integer, Integer> pos = new HashMap<>();
    for (int p = 0; p < k; p++) {
      pos.put(ids[p], p);
    }
    boolean nc3Applies = classifierLayer && weight != null;

    Map<String, Double> out = new LinkedHashMap<>();
    out.put("samples", (double) n);
    out.put("classes_seen", (double) k);
    out.put("nonfinite", (double) nonfinite);
    if (k == 0) {
      for (String key :
          List.of(
              "nc1",
              "nc1_trace",
              "nc2_equinorm",
              "nc2_equiangular",
              "nc2_etf_distance",
              "cdnv",
              "sb_rank")) {
        out.put(key, null);
      }
      if (nc3Applies) {
        out.put("nc3_self_duality", null);
      }
      if (classifierLayer) {
        out.put("nc4_ncc_mismatch", null);
      }
      return out;
    }

    // Class counts and means. The mean gets one correction pass (mean += Σ(h − mean)/n) so that
    // the oracle's means are accurate to about one rounding even on offset data.
    long[] count = new long[k];
    double[][] mu = new double[k][d];
    for (int i = 0; i < n; i++) {
      int c = pos.get(y.get(i));
      count[c]++;
      for (int j = 0; j < d; j++) {
        mu[c][j] += h.get(i)[j];
      }
    }
    for (int c = 0; c < k; c++) {
      for (int j = 0; j < d; j++) {
        mu[c][j] /= count[c];
      }
    }
    double[][] correction = new double[k][d];
    for (int i = 0; i < n; i++) {
      int c = pos.get(y.get(i));
      for (int j = 0; j < d; j++) {
        correction[c][j] += h.get(i)[j] - mu[c][j];
      }
    }
    for (int c = 0; c < k; c++) {
      for (int j = 0; j < d; j++) {
        mu[c][j] += correction[c][j] / count[c];
      }
    }

    // V_c (biased) and the class-balanced Σ_W, both from the final means.
    double[] v = new double[k];
    double[][] sw = new double[d][d];
    for (int i = 0; i < n; i++) {
      int c = pos.get(y.get(i));
      double[] delta = new double[d];
      for (int j = 0; j < d; j++) {
        delta[j] = h.get(i)[j] - mu[c][j];
      }
      for (int a = 0; a < d; a++) {
        v[c] += delta[a] * delta[a] / count[c];
        for (int b = 0; b < d; b++) {
          sw[a][b] += delta[a] * delta[b] / (count[c] * (double) k);
        }
      }
    }

    // Class-balanced global mean, centred means M̃ and Σ_B = M̃ᵀM̃ / K.
    double[] muG = new double[d];
    for (int c = 0; c < k; c++) {
      for (int j = 0; j < d; j++) {
        muG[j] += mu[c][j];
      }
    }
    for (int j = 0; j < d; j++) {
      muG[j] /= k;
    }
    double[][] m = new double[k][d];
    double[] norm = new double[k];
    double maxNorm = 0;
    double maxMeanNorm = 0;
    for (int c = 0; c < k; c++) {
      for (int j = 0; j < d; j++) {
        m[c][j] = mu[c][j] - muG[j];
      }
      norm[c] = Math.sqrt(dot(m[c], m[c]));
      maxNorm = Math.max(maxNorm, norm[c]);
      maxMeanNorm = Math.max(maxMeanNorm, Math.sqrt(dot(mu[c], mu[c])));
    }
    double[][] sb = new double[d][d];
    for (int c = 0; c < k; c++) {
      for (int a = 0; a < d; a++) {
        for (int b = 0; b < d; b++) {
          sb[a][b] += m[c][a] * m[c][b] / k;
        }
      }
    }
    // PROBES.md §1.5: fewer than 2 classes, or all class means equal (s_1 = 0, up to the zero-norm
    // tolerance relative to the size of the means themselves).
    boolean between = k >= 2 && maxNorm > 0 && maxNorm > ZERO_NORM * maxMeanNorm;

    // nc1 = tr(Σ_W Σ_B⁺) / K with Σ_B⁺ = Σ_{kept} v vᵀ / λ.
    Double nc1 = null;
    int rank = 0;
    if (between) {
      double[][] vectors = new double[d][d];
      double[] lambda = symmetricEigen(sb, vectors);
      double lambdaMax = 0;
      for (double l : lambda) {
        lambdaMax = Math.max(lambdaMax, l);
      }
      double[][] pinv = new double[d][d];
      for (int e = 0; e < d; e++) {
        if (lambda[e] > SB_EIGEN_CUT * lambdaMax) {
          rank++;
          for (int a = 0; a < d; a++) {
            for (int b = 0; b < d; b++) {
              pinv[a][b] += vectors[a][e] * vectors[b][e] / lambda[e];
            }
          }
        }
      }
      double trace = 0;
      for (int a = 0; a < d; a++) {
        for (int b = 0; b < d; b++) {
          trace += sw[a][b] * pinv[b][a];
        }
      }
      nc1 = trace / k;
    }
    out.put("nc1", nc1);

    if (between) {
      double sumV = 0;
      double sumM2 = 0;
      for (int c = 0; c < k; c++) {
        sumV += v[c];
        sumM2 += norm[c] * norm[c];
      }
      out.put("nc1_trace", sumV / sumM2);
      out.put("nc2_equinorm", equinorm(norm));
      out.put("nc2_equiangular", equiangular(m, norm, maxNorm));
      out.put("nc2_etf_distance", etfDistance(m));
      out.put("cdnv", cdnv(mu, v, maxNorm));
    } else {
      out.put("nc1_trace", null);
      out.put("nc2_equinorm", null);
      out.put("nc2_equiangular", null);
      out.put("nc2_etf_distance", null);
      out.put("cdnv", null);
    }
    if (nc3Applies) {
      out.put("nc3_self_duality", between ? selfDuality(weight, ids, m) : null);
    }
    if (classifierLayer) {
      long mismatches = 0;
      for (int i = 0; i < n; i++) {
        double[] zi = z.get(i);
        int argmax = 0;
        for (int q = 1; q < zi.length; q++) {
          if (zi[q] > zi[argmax]) {
            argmax = q;
          }
        }
        int nearest = -1;
        double best = Double.POSITIVE_INFINITY;
        for (int c = 0; c < k; c++) {
          double dist = 0;
          for (int j = 0; j < d; j++) {
            double t = h.get(i)[j] - mu[c][j];
            dist += t * t;
          }
          if (dist < best) {
            best = dist;
            nearest = ids[c];
          }
        }
        if (nearest != argmax) {
          mismatches++;
        }
      }
      out.put("nc4_ncc_mismatch", (double) mismatches / n);
    }
    out.put("sb_rank", (double) rank);
    return out;
  }

  private static double equinorm(double[] norm) {
    int k = norm.length;
    double mean = 0;
    for (double x : norm) {
      mean += x / k;
    }
    double ss = 0;
    for (double x : norm) {
      ss += (x - mean) * (x - mean);
    }
    return Math.sqrt(ss / (k - 1)) / mean;
  }

  private static Double equiangular(double[][] m, double[] norm, double maxNorm) {
    int k = m.length;
    for (double x : norm) {
      if (x <= ZERO_NORM * maxNorm) {
        return null;
      }
    }
    double sum = 0;
    long pairs = 0;
    for (int a = 0; a < k; a++) {
      for (int b = 0; b < k; b++) {
        if (a != b) {
          double cos = dot(m[a], m[b]) / (norm[a] * norm[b]);
          sum += Math.abs(cos + 1.0 / (k - 1));
          pairs++;
        }
      }
    }
    return sum / pairs;
  }

  private static double etfDistance(double[][] m) {
    int k = m.length;
    double[][] g = new double[k][k];
    double fro2 = 0;
    for (int a = 0; a < k; a++) {
      for (int b = 0; b < k; b++) {
        g[a][b] = dot(m[a], m[b]);
        fro2 += g[a][b] * g[a][b];
      }
    }
    double fro = Math.sqrt(fro2);
    double sum = 0;
    for (int a = 0; a < k; a++) {
      for (int b = 0; b < k; b++) {
        double target = ((a == b ? 1.0 : 0.0) - 1.0 / k) / Math.sqrt(k - 1.0);
        double t = g[a][b] / fro - target;
        sum += t * t;
      }
    }
    return Math.sqrt(sum);
  }

  private static Double cdnv(double[][] mu, double[] v, double maxNorm) {
    int k = mu.length;
    double sum = 0;
    long pairs = 0;
    for (int a = 0; a < k; a++) {
      for (int b = a + 1; b < k; b++) {
        double dist2 = 0;
        for (int j = 0; j < mu[a].length; j++) {
          double t = mu[a][j] - mu[b][j];
          dist2 += t * t;
        }
        if (Math.sqrt(dist2) <= ZERO_NORM * maxNorm) {
          return null;
        }
        sum += (v[a] + v[b]) / (2 * dist2);
        pairs++;
      }
    }
    return sum / pairs;
  }

  private static Double selfDuality(double[][] weight, int[] ids, double[][] m) {
    double w2 = 0;
    double m2 = 0;
    for (int p = 0; p < ids.length; p++) {
      w2 += dot(weight[ids[p]], weight[ids[p]]);
      m2 += dot(m[p], m[p]);
    }
    if (w2 == 0) {
      return null;
    }
    double wn = Math.sqrt(w2);
    double mn = Math.sqrt(m2);
    double sum = 0;
    for (int p = 0; p < ids.length; p++) {
      for (int j = 0; j < m[p].length; j++) {
        double t = weight[ids[p]][j] / wn - m[p][j] / mn;
        sum += t * t;
      }
    }
    return sum;
  }

  /**
   * Eigenvalues of the symmetric matrix {@code a} (not modified) by cyclic Jacobi rotations; the
   * eigenvector of eigenvalue e is column e of {@code vectors} (d×d, overwritten).
   */
  static double[] symmetricEigen(double[][] a, double[][] vectors) {
    int d = a.length;
    double[][] s = new double[d][];
    for (int i = 0; i < d; i++) {
      s[i] = a[i].clone();
      vectors[i] = new double[d];
      vectors[i][i] = 1;
    }
    double total = 0;
    for (double[] row : s) {
      total += dot(row, row);
    }
    for (int sweep = 0; sweep < 100; sweep++) {
      double off = 0;
      for (int p = 0; p < d; p++) {
        for (int q = p + 1; q < d; q++) {
          off += 2 * s[p][q] * s[p][q];
        }
      }
      // Quadratic convergence: a handful of sweeps reach this relative level.
      if (off <= 1e-32 * total) {
        break;
      }
      for (int p = 0; p < d; p++) {
        for (int q = p + 1; q < d; q++) {
          if (s[p][q] == 0) {
            continue;
          }
          // Rotation J (J_pp = J_qq = c, J_pq = s, J_qp = −s) that zeroes s_pq in JᵀSJ; t is the
          // smaller root of t² + 2θt − 1 = 0.
          double theta = (s[q][q] - s[p][p]) / (2 * s[p][q]);
          double t =
              Math.abs(theta) > 1e150
                  ? 1 / (2 * theta)
                  : Math.signum(theta == 0 ? 1 : theta)
                      / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          double cos = 1 / Math.sqrt(t * t + 1);
          double sin = t * cos;
          for (int r = 0; r < d; r++) {
            double rp = s[r][p];
            double rq = s[r][q];
            s[r][p] = cos * rp - sin * rq;
            s[r][q] = sin * rp + cos * rq;
          }
          for (int r = 0; r < d; r++) {
            double pr = s[p][r];
            double qr = s[q][r];
            s[p][r] = cos * pr - sin * qr;
            s[q][r] = sin * pr + cos * qr;
          }
          for (int r = 0; r < d; r++) {
            double rp = vectors[r][p];
            double rq = vectors[r][q];
            vectors[r][p] = cos * rp - sin * rq;
            vectors[r][q] = sin * rp + cos * rq;
          }
        }
      }
    }
    double[] lambda = new double[d];
    for (int i = 0; i < d; i++) {
      lambda[i] = s[i][i];
    }
    return lambda;
  }

  private static boolean allFinite(double[] x) {
    for (double v : x) {
      if (!Double.isFinite(v)) {
        return false;
      }
    }
    return true;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int j = 0; j < a.length; j++) {
      s += a[j] * b[j];
    }
    return s;
  }
}
