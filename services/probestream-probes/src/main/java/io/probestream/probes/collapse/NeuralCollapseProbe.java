package io.probestream.probes.collapse;

import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.linalg.ThinSvd;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code neural_collapse} probe of PROBES.md §1 for one layer and split. Pass 1 folds batches
 * into {@link CollapseMoments}; {@link #freeze} fixes the class means and the between-class basis;
 * pass 2 ({@link Frozen#pass2}) re-reads the same samples for nc1 and nc4; {@link Frozen#finish}
 * gives the metrics. Stateless; every value it returns is immutable.
 */
public final class NeuralCollapseProbe {
  public static final String NAME = "neural_collapse";

  /** Σ_B eigenvalues at or below this fraction of the largest count as zero (PROBES.md §0). */
  static final double SB_EIGEN_CUT = 1e-10;

  /** A norm at or below this fraction of the largest centred-mean norm counts as zero. */
  static final double ZERO_NORM = 1e-12;

  private NeuralCollapseProbe() {}

  /**
   * Fixes the pass-1 state and computes everything pass 2 needs.
   *
   * @param moments the merged pass-1 state of the whole split
   * @param classifierLayer whether this layer feeds the classifier (nc3 and nc4 apply)
   * @param classifierWeight W with rows = classes ({@code C × d}), or null when unknown (then nc3
   *     is omitted)
   */
  public static Frozen freeze(
      CollapseMoments moments, boolean classifierLayer, double[][] classifierWeight) {
    if (classifierWeight != null) {
      for (double[] row : classifierWeight) {
        if (row.length != moments.width()) {
          throw new IllegalArgumentException(
              "classifier weight has "
                  + row.length
                  + " columns but the classifier-feeding layer is "
                  + moments.width()
                  + " wide");
        }
      }
    }
    return new Frozen(moments, classifierLayer, classifierWeight);
  }

  /**
   * Pass-2 sums: non-negative per-direction terms and the NC4 counts. Immutable, merge by adding.
   */
  public record SecondPass(double[] a, long samples, long mismatches) {
    /** Exact combination (plain float64 sums). */
    public SecondPass merge(SecondPass other) {
      double[] s = a.clone();
      for (int j = 0; j < s.length; j++) {
        s[j] += other.a[j];
      }
      return new SecondPass(s, samples + other.samples, mismatches + other.mismatches);
    }
  }

  /** The frozen pass-1 state of one layer: class means, basis and pass-1 metrics. Immutable. */
  public static final class Frozen {
    private final CollapseMoments moments;
    private final boolean classifierLayer;
    private final int[] classIds; // seen classes, ascending
    private final long[] counts;
    private final double[][] means; // μ_c, rows in class order
    private final Map<Integer, Integer> position = new LinkedHashMap<>();
    private final double[][] basis; // kept right singular vectors v_j of M̃
    private final double[] sigma2; // s_j² for the kept directions
    private final Map<String, Double> pass1 = new LinkedHashMap<>();
    private final List<String> notes = new ArrayList<>();
    private final boolean between; // false when K < 2 or all class means coincide

    private Frozen(CollapseMoments moments, boolean classifierLayer, double[][] weight) {
      this.moments = moments;
      this.classifierLayer = classifierLayer;
      int k = moments.classes().size();
      int d = moments.width();
      classIds = new int[k];
      counts = new long[k];
      means = new double[k][];
      double[] variances = new double[k];
      int p = 0;
      for (Map.Entry<Integer, ClassMoments> e : moments.classes().entrySet()) {
        classIds[p] = e.getKey();
        counts[p] = e.getValue().count();
        means[p] = e.getValue().mean();
        variances[p] = e.getValue().variance();
        position.put(e.getKey(), p);
        p++;
      }

      // Class-balanced global mean and centred means m_c (PROBES.md §1.1).
      double[] globalMean = new double[d];
      for (double[] mu : means) {
        for (int j = 0; j < d; j++) {
          globalMean[j] += mu[j] / k;
        }
      }
      double[][] centred = new double[k][d];
      double[] norms = new double[k];
      double maxNorm = 0;
      double maxMeanNorm = 0;
      for (int c = 0; c < k; c++) {
        for (int j = 0; j < d; j++) {
          centred[c][j] = means[c][j] - globalMean[j];
        }
        norms[c] = Math.sqrt(dot(centred[c], centred[c]));
        maxNorm = Math.max(maxNorm, norms[c]);
        maxMeanNorm = Math.max(maxMeanNorm, Math.sqrt(dot(means[c], means[c])));
      }

      if (k == 0) {
        notes.add("no finite sample");
        between = false;
      } else if (k == 1) {
        notes.add("fewer than 2 classes seen");
        between = false;
      } else if (maxNorm == 0 || maxNorm <= ZERO_NORM * maxMeanNorm) {
        notes.add("all class means are equal");
        between = false;
      } else {
        between = true;
      }

      if (between) {
        ThinSvd svd = ThinSvd.of(centred);
        double s2max = svd.singularValue(0) * svd.singularValue(0);
        List<double[]> kept = new ArrayList<>();
        List<Double> kept2 = new ArrayList<>();
        for (int j = 0; j < svd.rank(); j++) {
          double s2 = svd.singularValue(j) * svd.singularValue(j);
          // λ_j = s_j²/K, so the cut on λ is the same cut on s².
          if (s2 > SB_EIGEN_CUT * s2max) {
            kept.add(svd.rightVector(j));
            kept2.add(s2);
          }
        }
        basis = kept.toArray(new double[0][]);
        sigma2 = kept2.stream().mapToDouble(Double::doubleValue).toArray();
      } else {
        basis = new double[0][];
        sigma2 = new double[0];
      }

      pass1.put("nc1_trace", between ? traceRatio(variances, norms) : null);
      pass1.put("nc2_equinorm", between ? equinorm(norms) : null);
      pass1.put("nc2_equiangular", between ? equiangular(centred, norms, maxNorm) : null);
      pass1.put("nc2_etf_distance", between ? etfDistance(centred) : null);
      pass1.put("cdnv", between ? cdnv(variances, maxNorm) : null);
      if (classifierLayer && weight != null) {
        pass1.put("nc3_self_duality", between ? selfDuality(weight, centred) : null);
      }
    }

    /**
     * Pass 2 over one batch of the same split: the per-direction scatter a_j and, on the
     * classifier-feeding layer, the NC4 mismatches (PROBES.md §1.3).
     */
    public SecondPass pass2(FeatureBatch batch) {
      int d = moments.width();
      if (batch.width() != d) {
        throw new IllegalArgumentException(
            "pass 2 batch is " + batch.width() + " wide; pass 1 was " + d);
      }
      if (classifierLayer && batch.logits() == null) {
        throw new IllegalArgumentException("the classifier-feeding layer needs logits in pass 2");
      }
      double[] a = new double[basis.length];
      double[] delta = new double[d];
      float[] h = batch.features();
      long samples = 0;
      long mismatches = 0;
      for (int i = 0; i < batch.rows(); i++) {
        if (!batch.finite(i)) {
          continue;
        }
        Integer c = position.get(batch.labels()[i]);
        if (c == null) {
          throw new IllegalArgumentException(
              "pass 2 saw class " + batch.labels()[i] + ", which pass 1 never saw");
        }
        samples++;
        int base = i * d;
        double[] mu = means[c];
        for (int j = 0; j < d; j++) {
          delta[j] = h[base + j] - mu[j];
        }
        double weight = 1.0 / counts[c];
        for (int j = 0; j < basis.length; j++) {
          double r = dot(basis[j], delta);
          a[j] += weight * r * r;
        }
        if (classifierLayer && nearestMean(h, base) != batch.argmaxLogit(i)) {
          mismatches++;
        }
      }
      return new SecondPass(a, samples, mismatches);
    }

    /** An empty pass-2 state, the identity of {@link SecondPass#merge}. */
    public SecondPass emptyPass2() {
      return new SecondPass(new double[basis.length], 0, 0);
    }

    /**
     * The metrics from this pass-1 state and the whole of pass 2: the counts first, then PROBES.md
     * §1.2's keys in its order.
     *
     * @param params the settings to report with them (e.g. the layer's reduction), never null
     */
    public ProbeOutput finish(SecondPass second, Map<String, Object> params) {
      long samples = moments.samples();
      if (second.samples() != samples) {
        throw new IllegalStateException(
            "pass 2 saw "
                + second.samples()
                + " samples but pass 1 saw "
                + samples
                + "; both passes must read the same split");
      }
      int k = classIds.length;
      Map<String, Double> m = new LinkedHashMap<>();
      m.put("samples", (double) samples);
      m.put("classes_seen", (double) k);
      m.put("nonfinite", (double) moments.nonfinite());
      Double nc1 = null;
      if (between) {
        double s = 0;
        for (int j = 0; j < basis.length; j++) {
          s += second.a()[j] / sigma2[j];
        }
        nc1 = s / k;
      }
      m.put("nc1", nc1);
      m.putAll(pass1);
      if (classifierLayer) {
        m.put("nc4_ncc_mismatch", k == 0 ? null : (double) second.mismatches() / samples);
      }
      m.put("sb_rank", k == 0 ? null : (double) basis.length);
      return new ProbeOutput(m, params, notes);
    }

    /**
     * The pass-1 metrics alone, for a live split whose samples are not kept for a second pass:
     * {@code nc1} (and {@code nc4} on the classifier-feeding layer) are null with a note.
     */
    public ProbeOutput finishPassOne(Map<String, Object> params) {
      int k = classIds.length;
      Map<String, Double> m = new LinkedHashMap<>();
      m.put("samples", (double) moments.samples());
      m.put("classes_seen", (double) k);
      m.put("nonfinite", (double) moments.nonfinite());
      m.put("nc1", null);
      m.putAll(pass1);
      if (classifierLayer) {
        m.put("nc4_ncc_mismatch", null);
      }
      m.put("sb_rank", k == 0 ? null : (double) basis.length);
      List<String> n = new ArrayList<>(notes);
      n.add(
          (classifierLayer ? "nc1 and nc4 need" : "nc1 needs")
              + " a second pass over the same samples, which a live split does not keep");
      return new ProbeOutput(m, params, n);
    }

    /** Seen classes, ascending (a copy). */
    public int[] classIds() {
      return classIds.clone();
    }

    /** n_c of each seen class, in {@link #classIds} order (a copy). */
    public long[] counts() {
      return counts.clone();
    }

    /** μ_c of each seen class, in {@link #classIds} order (copies). */
    public double[][] means() {
      double[][] out = new double[means.length][];
      for (int c = 0; c < means.length; c++) {
        out[c] = means[c].clone();
      }
      return out;
    }

    /** The kept right singular vectors v_j of M̃ (copies); pass 2 projects on them. */
    public double[][] basis() {
      double[][] out = new double[basis.length][];
      for (int j = 0; j < basis.length; j++) {
        out[j] = basis[j].clone();
      }
      return out;
    }

    /** Whether this layer feeds the classifier (pass 2 counts NC4 mismatches). */
    public boolean classifierLayer() {
      return classifierLayer;
    }

    /** Number of kept between-class directions (sb_rank). */
    public int rank() {
      return basis.length;
    }

    private int nearestMean(float[] h, int base) {
      int best = -1;
      double bestDist = Double.POSITIVE_INFINITY;
      for (int c = 0; c < means.length; c++) {
        double s = squaredDistance(h, base, means[c]);
        if (s < bestDist) { // strict: ties keep the lowest class index
          bestDist = s;
          best = c;
        }
      }
      return classIds[best];
    }

    private Double traceRatio(double[] variances, double[] norms) {
      double within = 0;
      double betweenSum = 0;
      for (int c = 0; c < variances.length; c++) {
        within += variances[c];
        betweenSum += norms[c] * norms[c];
      }
      return within / betweenSum;
    }

    private static double equinorm(double[] norms) {
      int k = norms.length;
      double mean = 0;
      for (double v : norms) {
        mean += v;
      }
      mean /= k;
      double ss = 0;
      for (double v : norms) {
        ss += (v - mean) * (v - mean);
      }
      return Math.sqrt(ss / (k - 1)) / mean; // ddof = 1, as Papyan et al.
    }

    private Double equiangular(double[][] centred, double[] norms, double maxNorm) {
      int k = centred.length;
      for (int c = 0; c < k; c++) {
        if (norms[c] <= ZERO_NORM * maxNorm) {
          notes.add(
              "class " + classIds[c] + " has a zero centred mean, so nc2_equiangular is undefined");
          return null;
        }
      }
      double s = 0;
      double shift = 1.0 / (k - 1);
      for (int a = 0; a < k; a++) {
        for (int b = a + 1; b < k; b++) {
          double cos = dot(centred[a], centred[b]) / (norms[a] * norms[b]);
          s += Math.abs(cos + shift);
        }
      }
      // Ordered pairs c ≠ c′ count each unordered pair twice; the mean is the same.
      return s / ((double) k * (k - 1) / 2);
    }

    private static double etfDistance(double[][] centred) {
      int k = centred.length;
      double[][] g = new double[k][k];
      double fro = 0;
      for (int a = 0; a < k; a++) {
        for (int b = a; b < k; b++) {
          g[a][b] = dot(centred[a], centred[b]);
          g[b][a] = g[a][b];
          fro += (a == b ? 1 : 2) * g[a][b] * g[a][b];
        }
      }
      fro = Math.sqrt(fro);
      double scale = 1.0 / Math.sqrt(k - 1);
      double s = 0;
      for (int a = 0; a < k; a++) {
        for (int b = 0; b < k; b++) {
          double target = ((a == b ? 1.0 : 0.0) - 1.0 / k) * scale;
          double t = g[a][b] / fro - target;
          s += t * t;
        }
      }
      return Math.sqrt(s);
    }

    private Double cdnv(double[] variances, double maxNorm) {
      int k = means.length;
      double sum = 0;
      int pairs = 0;
      double zero = ZERO_NORM * maxNorm;
      for (int a = 0; a < k; a++) {
        for (int b = a + 1; b < k; b++, pairs++) {
          double dist2 = ClassMoments.squaredDistance(means[a], means[b]);
          if (Math.sqrt(dist2) <= zero) {
            notes.add(
                "classes "
                    + classIds[a]
                    + " and "
                    + classIds[b]
                    + " have the same mean, so cdnv is undefined");
            return null;
          }
          sum += (variances[a] + variances[b]) / (2 * dist2);
        }
      }
      return sum / pairs;
    }

    private Double selfDuality(double[][] weight, double[][] centred) {
      for (int c : classIds) {
        if (c >= weight.length) {
          throw new IllegalArgumentException(
              "class "
                  + c
                  + " is seen but the classifier weight has only "
                  + weight.length
                  + " rows");
        }
      }
      for (int c : classIds) {
        for (double v : weight[c]) {
          if (!Double.isFinite(v)) {
            notes.add(
                "the classifier weight of class "
                    + c
                    + " is not finite, so nc3_self_duality is undefined");
            return null;
          }
        }
      }
      double wNorm2 = 0;
      double mNorm2 = 0;
      for (int p = 0; p < classIds.length; p++) {
        wNorm2 += dot(weight[classIds[p]], weight[classIds[p]]);
        mNorm2 += dot(centred[p], centred[p]);
      }
      if (wNorm2 == 0) {
        notes.add(
            "the classifier weight of the seen classes is zero, so nc3_self_duality is undefined");
        return null;
      }
      double wn = Math.sqrt(wNorm2);
      double mn = Math.sqrt(mNorm2);
      double s = 0;
      for (int p = 0; p < classIds.length; p++) {
        double[] w = weight[classIds[p]];
        for (int j = 0; j < w.length; j++) {
          double t = w[j] / wn - centred[p][j] / mn;
          s += t * t;
        }
      }
      return s; // squared, as Papyan et al.'s self-duality measurement
    }
  }

  /**
   * Σ a[j]·b[j] in eight interleaved float64 partial sums: a single running sum is one chain of
   * dependent additions the JIT cannot vectorize (it keeps their order); eight chains keep the
   * floating-point units busy. The order of additions differs from a plain loop by rounding only.
   */
  static double dot(double[] a, double[] b) {
    int n = a.length;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int j = 0;
    for (; j + 7 < n; j += 8) {
      s0 += a[j] * b[j];
      s1 += a[j + 1] * b[j + 1];
      s2 += a[j + 2] * b[j + 2];
      s3 += a[j + 3] * b[j + 3];
      s4 += a[j + 4] * b[j + 4];
      s5 += a[j + 5] * b[j + 5];
      s6 += a[j + 6] * b[j + 6];
      s7 += a[j + 7] * b[j + 7];
    }
    for (; j < n; j++) {
      s0 += a[j] * b[j];
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
  }

  /** Σ (h[base + j] − mu[j])² in eight interleaved partial sums, as {@link #dot}. */
  static double squaredDistance(float[] h, int base, double[] mu) {
    int n = mu.length;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int j = 0;
    for (; j + 7 < n; j += 8) {
      double t0 = h[base + j] - mu[j];
      double t1 = h[base + j + 1] - mu[j + 1];
      double t2 = h[base + j + 2] - mu[j + 2];
      double t3 = h[base + j + 3] - mu[j + 3];
      double t4 = h[base + j + 4] - mu[j + 4];
      double t5 = h[base + j + 5] - mu[j + 5];
      double t6 = h[base + j + 6] - mu[j + 6];
      double t7 = h[base + j + 7] - mu[j + 7];
      s0 += t0 * t0;
      s1 += t1 * t1;
      s2 += t2 * t2;
      s3 += t3 * t3;
      s4 += t4 * t4;
      s5 += t5 * t5;
      s6 += t6 * t6;
      s7 += t7 * t7;
    }
    for (; j < n; j++) {
      double t = h[base + j] - mu[j];
      s0 += t * t;
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
  }
}
