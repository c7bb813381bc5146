package io.probestream.probes.complexity;

import io.probestream.probes.linalg.ThinSvd;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * An independent, materialise-everything reading of PROBES.md §2.3 and §2.4 for tests: all rows in
 * memory, two-pass covariances, singular values of the centred matrix (EJML SVD), eigenvectors by
 * cyclic Jacobi, ridge by Gaussian elimination, residuals summed row by row.
 */
final class NaiveComplexity {
  private NaiveComplexity() {}

  /** §2.3 on the centred N×d matrix itself; null for N < 2 or all-zero singular values. */
  static Double effectiveRank(double[][] rows) {
    if (rows.length < 2) {
      return null;
    }
    double[][] c = centred(rows);
    ThinSvd svd = ThinSvd.of(c);
    double smax = svd.singularValue(0);
    if (smax == 0) {
      return null;
    }
    double total = 0;
    List<Double> kept = new ArrayList<>();
    for (int j = 0; j < svd.rank(); j++) {
      double s = svd.singularValue(j);
      if (s * s > 1e-12 * smax * smax) {
        kept.add(s);
        total += s;
      }
    }
    double h = 0;
    for (double s : kept) {
      h -= (s / total) * Math.log(s / total);
    }
    return Math.exp(h);
  }

  /** What §2.4 reports, from all rows: r2 per layer, then complexity, then per-direction values. */
  record Vinfo(double[] r2, double complexity, double[] perDirection) {}

  /**
   * @param layers layers[ℓ][i] = the features of sample i at layer ℓ, all finite; sample i has
   *     reference-set index i
   */
  static Vinfo vinfo(double[][][] layers, int classifier, int k, double alpha) {
    double[][] h = layers[classifier];
    int n = h.length;
    int d = h[0].length;
    double[] mu = mean(h);
    double[][] cov = new double[d][d];
    for (double[] row : h) {
      for (int a = 0; a < d; a++) {
        for (int b = 0; b < d; b++) {
          cov[a][b] += (row[a] - mu[a]) * (row[b] - mu[b]) / n;
        }
      }
    }
    double[][] vecs = new double[d][d];
    double[] vals = jacobi(cov, vecs);
    Integer[] order = new Integer[d];
    for (int j = 0; j < d; j++) {
      order[j] = j;
    }
    Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -vals[j]));
    int kept = 0;
    while (kept < d && vals[order[kept]] > 1e-12 * vals[order[0]]) {
      kept++;
    }
    int kk = Math.min(k, kept);
    double[][] z = new double[n][kk];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < kk; j++) {
        double s = 0;
        for (int a = 0; a < d; a++) {
          s += vecs[a][order[j]] * (h[i][a] - mu[a]);
        }
        z[i][j] = s / Math.sqrt(vals[order[j]]);
      }
    }
    List<Integer> evenIdx = new ArrayList<>();
    List<Integer> oddIdx = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      (i % 2 == 0 ? evenIdx : oddIdx).add(i);
    }
    List<Integer> used = new ArrayList<>();
    for (int j = 0; j < kk; j++) {
      double m = 0;
      for (int i : oddIdx) {
        m += z[i][j];
      }
      m /= oddIdx.size();
      double v = 0;
      for (int i : oddIdx) {
        v += (z[i][j] - m) * (z[i][j] - m);
      }
      if (v / oddIdx.size() > 1e-12) {
        used.add(j);
      }
    }
    double[] r2 = new double[layers.length];
    double[] perDirection = new double[used.size()];
    for (int l = 0; l < layers.length; l++) {
      double[][] x = layers[l];
      int dl = x[0].length;
      double[] xbar = new double[dl];
      for (int i : evenIdx) {
        for (int a = 0; a < dl; a++) {
          xbar[a] += x[i][a] / evenIdx.size();
        }
      }
      double[][] cxx = new double[dl][dl];
      for (int i : evenIdx) {
        for (int a = 0; a < dl; a++) {
          for (int b = 0; b < dl; b++) {
            cxx[a][b] += (x[i][a] - xbar[a]) * (x[i][b] - xbar[b]) / evenIdx.size();
          }
        }
      }
      double tr = 0;
      for (int a = 0; a < dl; a++) {
        tr += cxx[a][a];
      }
      double lambda = alpha * tr / dl;
      double sum = 0;
      for (int u = 0; u < used.size(); u++) {
        int j = used.get(u);
        double zbar = 0;
        for (int i : evenIdx) {
          zbar += z[i][j] / evenIdx.size();
        }
        double[] cxz = new double[dl];
        for (int i : evenIdx) {
          for (int a = 0; a < dl; a++) {
            cxz[a] += (x[i][a] - xbar[a]) * (z[i][j] - zbar) / evenIdx.size();
          }
        }
        double[] theta = new double[dl];
        if (tr > 0) {
          double[][] lhs = new double[dl][];
          for (int a = 0; a < dl; a++) {
            lhs[a] = cxx[a].clone();
            lhs[a][a] += lambda;
          }
          theta = gauss(lhs, cxz);
        }
        double zOdd = 0;
        for (int i : oddIdx) {
          zOdd += z[i][j] / oddIdx.size();
        }
        double sse = 0;
        double sst = 0;
        for (int i : oddIdx) {
          double pred = zbar;
          for (int a = 0; a < dl; a++) {
            pred += theta[a] * (x[i][a] - xbar[a]);
          }
          sse += (z[i][j] - pred) * (z[i][j] - pred);
          sst += (z[i][j] - zOdd) * (z[i][j] - zOdd);
        }
        double r = Math.max(0, 1 - sse / sst);
        sum += r;
        perDirection[u] += r / layers.length;
      }
      r2[l] = sum / used.size();
    }
    double complexity = 0;
    for (int u = 0; u < perDirection.length; u++) {
      perDirection[u] = 1 - perDirection[u];
      complexity += perDirection[u] / perDirection.length;
    }
    return new Vinfo(r2, complexity, perDirection);
  }

  static double[] mean(double[][] rows) {
    double[] m = new double[rows[0].length];
    for (double[] r : rows) {
      for (int a = 0; a < m.length; a++) {
        m[a] += r[a];
      }
    }
    for (int a = 0; a < m.length; a++) {
      m[a] /= rows.length;
    }
    return m;
  }

  static double[][] centred(double[][] rows) {
    double[] m = mean(rows);
    double[][] c = new double[rows.length][m.length];
    for (int i = 0; i < rows.length; i++) {
      for (int a = 0; a < m.length; a++) {
        c[i][a] = rows[i][a] - m[a];
      }
    }
    return c;
  }

  /** Cyclic Jacobi: eigenvalues of symmetric {@code s}; column j of {@code vecs} is vector j. */
  static double[] jacobi(double[][] s, double[][] vecs) {
    int d = s.length;
    double[][] a = new double[d][];
    for (int i = 0; i < d; i++) {
      a[i] = s[i].clone();
      Arrays.fill(vecs[i], 0);
      vecs[i][i] = 1;
    }
    for (int sweep = 0; sweep < 100; sweep++) {
      double off = 0;
      for (int p = 0; p < d; p++) {
        for (int q = p + 1; q < d; q++) {
          off += a[p][q] * a[p][q];
        }
      }
      if (off < 1e-30) {
        break;
      }
      for (int p = 0; p < d; p++) {
        for (int q = p + 1; q < d; q++) {
          if (a[p][q] == 0) {
            continue;
          }
          double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
          double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          if (theta == 0) {
            t = 1;
          }
          double c = 1 / Math.sqrt(t * t + 1);
          double sn = t * c;
          for (int r = 0; r < d; r++) {
            double arp = a[r][p];
            double arq = a[r][q];
            a[r][p] = c * arp - sn * arq;
            a[r][q] = sn * arp + c * arq;
          }
          for (int r = 0; r < d; r++) {
            double apr = a[p][r];
            double aqr = a[q][r];
            a[p][r] = c * apr - sn * aqr;
            a[q][r] = sn * apr + c * aqr;
          }
          for (int r = 0; r < d; r++) {
            double vrp = vecs[r][p];
            double vrq = vecs[r][q];
            vecs[r][p] = c * vrp - sn * vrq;
            vecs[r][q] = sn * vrp + c * vrq;
          }
        }
      }
    }
    double[] vals = new double[d];
    for (int i = 0; i < d; i++) {
      vals[i] = a[i][i];
    }
    return vals;
  }

  /** Solves a·x = b by Gaussian elimination with partial pivoting (a and b are not modified). */
  static double[] gauss(double[][] a0, double[] b0) {
    int n = b0.length;
    double[][] a = new double[n][];
    for (int i = 0; i < n; i++) {
      a[i] = a0[i].clone();
    }
    double[] b = b0.clone();
    for (int col = 0; col < n; col++) {
      int piv = col;
      for (int r = col + 1; r < n; r++) {
        if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) {
          piv = r;
        }
      }
      double[] tr = a[col];
      a[col] = a[piv];
      a[piv] = tr;
      double tb = b[col];
      b[col] = b[piv];
      b[piv] = tb;
      for (int r = col + 1; r < n; r++) {
        double f = a[r][col] / a[col][col];
        for (int c = col; c < n; c++) {
          a[r][c] -= f * a[col][c];
        }
        b[r] -= f * b[col];
      }
    }
    double[] x = new double[n];
    for (int r = n - 1; r >= 0; r--) {
      double s = b[r];
      for (int c = r + 1; c < n; c++) {
        s -= a[r][c] * x[c];
      }
      x[r] = s / a[r][r];
    }
    return x;
  }
}
