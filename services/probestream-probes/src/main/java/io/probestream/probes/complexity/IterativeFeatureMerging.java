package io.probestream.probes.complexity;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Iterative Feature Merging, weights only (PROBES.md §2.1): the order in which a layer's units
 * merge, and {@code ifm_units} for a threshold beta. Stateless; every method is a pure function.
 *
 * <p>A group is named by its smallest original unit index. Because the merged unit takes the
 * position of g* (which precedes h*), and units are kept in order of their smallest original index,
 * the current positions are exactly the surviving names in increasing order, so row-major order of
 * positions is row-major order of names.
 *
 * <p>Cost, single-threaded: the n0² initial distances dominate, O(n0²·D) with D = d_in + 1 + d_out,
 * in a kernel that HotSpot vectorizes ({@link #accumulate}); a merge then costs O(n0) plus a few
 * exact distances ({@code Distances}). For n0 = d_in = d_out = 4,096 on 2 vCPU of an AMD EPYC
 * (AVX-512), OpenJDK 17: about 8 s to the first refused merge at beta = 0.1 and 11 s for the full
 * order (loadtests/README.md). Memory: the layer's own arrays, a copy of the unit vectors (n0·D
 * doubles) and the distances (n0² doubles and n0² floats).
 */
public final class IterativeFeatureMerging {
  /** Note for a layer whose weights contain NaN or ±Inf (PROBES.md §0). */
  public static final String NOTE_NONFINITE = "ifm: non-finite weights";

  /** Units per panel of the k-major centroid store ({@link Centroids}). */
  static final int PANEL = 256;

  /** Panel rows per block of the initial distance matrix. */
  static final int K_BLOCK = 64;

  /** u, the unit roundoff of float64 with rounding to nearest. */
  private static final double U = 0x1p-53;

  private IterativeFeatureMerging() {}

  /**
   * One step of the loop: groups {@code first} (g*) and {@code second} (h*) merge into {@code
   * first}; {@code dmin} = D(g*,h*), {@code dmax} = the largest D over all pairs at that step.
   */
  public record Merge(int first, int second, double dmin, double dmax) {
    /** True when the beta rule of PROBES.md §2.1 lets this merge happen. */
    public boolean allowedBy(double beta) {
      return !(dmin > beta * dmax);
    }
  }

  /**
   * Merge steps 1..m in order. {@code complete}: the loop ran to one unit (m = n0 − 1). Otherwise
   * the list is a prefix of the full sequence that ends with the first step the stop beta refused.
   * Immutable.
   */
  public record MergeSequence(int n0, List<Merge> steps, boolean complete) {
    public MergeSequence {
      steps = List.copyOf(steps);
    }

    /** The groups after the first {@code t} merges: for each original unit, its group's name. */
    public int[] groupsAfter(int t) {
      if (t < 0 || t > steps.size()) {
        throw new IllegalArgumentException(
            "t = " + t + " merges; this sequence has " + steps.size());
      }
      int[] parent = new int[n0];
      for (int u = 0; u < n0; u++) {
        parent[u] = u;
      }
      for (int s = 0; s < t; s++) {
        parent[steps.get(s).second()] = steps.get(s).first();
      }
      int[] group = new int[n0];
      for (int u = 0; u < n0; u++) {
        int g = u;
        while (parent[g] != g) {
          g = parent[g];
        }
        group[u] = g;
      }
      return group;
    }
  }

  /**
   * {@code ifm_units} (PROBES.md §2.1): n0 minus the number of leading steps that pass the beta
   * rule.
   *
   * @throws IllegalArgumentException if the sequence was cut before any step refused this beta
   */
  public static int units(MergeSequence sequence, double beta) {
    int t = 0;
    for (Merge m : sequence.steps()) {
      if (!m.allowedBy(beta)) {
        return sequence.n0() - t;
      }
      t++;
    }
    if (!sequence.complete()) {
      throw new IllegalArgumentException(
          "merge sequence stops after "
              + t
              + " steps, all allowed by beta = "
              + beta
              + "; compute it with a stop beta ≥ "
              + beta
              + " or without one");
    }
    return sequence.n0() - t;
  }

  /** {@code ifm_units}, or null when the weights are not finite ({@link #NOTE_NONFINITE}). */
  public static Integer units(IfmLayer layer, double beta) {
    MergeSequence s = mergeSequence(layer, beta);
    return s == null ? null : units(s, beta);
  }

  /** The full merge order (the loop without the beta test), or null for non-finite weights. */
  public static MergeSequence mergeSequence(IfmLayer layer) {
    return layer.finite() ? run(layer, Double.NaN) : null;
  }

  /**
   * The merge order up to and including the first step that {@code stopBeta} refuses (the full
   * order if none does); null for non-finite weights. Enough for {@link #units(MergeSequence,
   * double)} at any beta ≤ {@code stopBeta}, and much cheaper than the full order on layers that
   * stop early.
   */
  public static MergeSequence mergeSequence(IfmLayer layer, double stopBeta) {
    if (!(stopBeta >= 0)) {
      throw new IllegalArgumentException("beta = " + stopBeta + "; expected a number ≥ 0");
    }
    return layer.finite() ? run(layer, stopBeta) : null;
  }

  /**
   * The compact layer after the first {@code t} merges (PROBES.md §2.1): one unit per group in
   * order of group name, incoming rows and biases summed over members, outgoing columns averaged.
   */
  public static IfmLayer compactLayer(IfmLayer layer, MergeSequence sequence, int t) {
    int n = layer.units();
    int[] group = sequence.groupsAfter(t);
    int[] position = new int[n];
    int m = 0;
    for (int u = 0; u < n; u++) {
      position[u] = group[u] == u ? m++ : -1;
    }
    int dIn = layer.inputWidth();
    int dOut = layer.outputWidth();
    double[][] wIn = new double[m][dIn];
    double[] bIn = new double[m];
    double[][] wOut = new double[dOut][m];
    int[] count = new int[m];
    for (int u = 0; u < n; u++) {
      int p = position[group[u]];
      count[p]++;
      for (int j = 0; j < dIn; j++) {
        wIn[p][j] += layer.wIn()[u][j];
      }
      bIn[p] += layer.bIn()[u];
      for (int o = 0; o < dOut; o++) {
        wOut[o][p] += layer.wOut()[o][u];
      }
    }
    for (int o = 0; o < dOut; o++) {
      for (int p = 0; p < m; p++) {
        wOut[o][p] /= count[p];
      }
    }
    return new IfmLayer(wIn, bIn, wOut);
  }

  /**
   * D(a,b) = Σ_k (a[k] − b[k])², direct differences in float64 (PROBES.md §2.1), the terms added
   * one at a time in increasing k. Every D in this class is summed in exactly this order (by {@link
   * #accumulate}, lane by lane), so the initial matrix, the per-merge refresh and this loop agree
   * bit for bit.
   */
  static double squaredDistance(double[] a, double[] b) {
    double s = 0;
    for (int k = 0; k < a.length; k++) {
      double d = a[k] - b[k];
      s += d * d;
    }
    return s;
  }

  /**
   * acc[j] += Σ_{k = kFrom}^{kTo − 1} (x[k + xShift] − panel[k][j])² for jFrom ≤ j < jTo, each
   * acc[j] adding its terms one at a time in increasing k, as {@link #squaredDistance} does.
   *
   * <p>HotSpot's C2 does not vectorize a floating-point sum along k (that would reorder the adds),
   * but it does vectorize this loop along j, over a row of a k-major panel: one lane per pair, each
   * lane in k order. Four k per pass keep acc[j] in a register for four terms; a longer body is
   * past C2's unrolling limit and is not vectorized at all.
   */
  static void accumulate(
      double[] acc,
      double[][] panel,
      int jFrom,
      int jTo,
      double[] x,
      int xShift,
      int kFrom,
      int kTo) {
    int k = kFrom;
    for (; k + 3 < kTo; k += 4) {
      double x0 = x[k + xShift];
      double x1 = x[k + 1 + xShift];
      double x2 = x[k + 2 + xShift];
      double x3 = x[k + 3 + xShift];
      double[] b0 = panel[k];
      double[] b1 = panel[k + 1];
      double[] b2 = panel[k + 2];
      double[] b3 = panel[k + 3];
      for (int j = jFrom; j < jTo; j++) {
        double s = acc[j];
        double d = x0 - b0[j];
        s += d * d;
        d = x1 - b1[j];
        s += d * d;
        d = x2 - b2[j];
        s += d * d;
        d = x3 - b3[j];
        s += d * d;
        acc[j] = s;
      }
    }
    for (; k < kTo; k++) {
      double x0 = x[k + xShift];
      double[] b0 = panel[k];
      for (int j = jFrom; j < jTo; j++) {
        double d = x0 - b0[j];
        acc[j] += d * d;
      }
    }
  }

  /**
   * The loop of PROBES.md §2.1. Every D it compares or reports is an exact {@link
   * #squaredDistance}; what it saves is computing the D it never needs (see {@link Distances}).
   */
  private static MergeSequence run(IfmLayer layer, double stopBeta) {
    int n = layer.units();
    if ((long) n * n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "ifm layer has " + n + " units; the n0² distance matrix needs n0 ≤ 46340");
    }
    Distances d = new Distances(new Centroids(layer));
    List<Merge> steps = new ArrayList<>();
    boolean stopped = false;
    for (int left = n; left >= 2; left--) {
      int g = d.closestRow();
      int h = d.rowMinAt[g];
      double dmin = d.rowMin[g];
      Merge step = new Merge(g, h, dmin, d.largest());
      steps.add(step);
      if (!Double.isNaN(stopBeta) && !step.allowedBy(stopBeta)) {
        stopped = true;
        break;
      }
      d.merge(g, h);
    }
    return new MergeSequence(n, steps, !stopped);
  }

  /**
   * D(a,b) for the live pairs a < b, each either exact or bracketed, with per-row minima and maxima
   * over later columns. Owned by one run.
   *
   * <p>A merge does not recompute D(m,k) for the merged group m. For the exact centroid m* = α·F_g
   * + β·F_h (α = c_g/c, β = c_h/c), D(m*,k) = α·D(g,k) + β·D(h,k) − αβ·D(g,h) (expand the squares);
   * {@link MergeBounds} turns that into a bracket [lo, hi] that provably holds the value {@link
   * #squaredDistance} would return, allowing for every rounding on the way. The identity cancels
   * for near-duplicates, so it never decides anything: a bracketed entry is summed exactly as soon
   * as it could be the smallest or the largest D of a step ({@link #closestRow}, {@link #largest}),
   * and the loop compares exact values only, with the tie rule of PROBES.md §2.1. In practice that
   * is a few pairs per merge instead of a row of n0.
   *
   * <p>{@code lo[a*n + b]} is the exact D, or the lower end of its bracket; {@code width[a*n + b]}
   * is 0 for an exact D, else the bracket's width rounded up to a float. {@code rowMin[r]} is the
   * least lo over active columns c > r and {@code rowMinAt[r]} the first such c; {@code rowMax[r]}
   * and {@code rowMaxAt[r]} the same for the greatest hi; -1 where the row has no later column.
   */
  private static final class Distances {
    final int n;
    final Centroids centroids;
    final double[] lo;
    final float[] width;
    final boolean[] active;
    final long[] count;
    final double[] rowMin;
    final int[] rowMinAt;
    final double[] rowMax;
    final int[] rowMaxAt;
    final int[] summedSinceMerge; // pairs summed one at a time, per group, since it last merged
    final double[] column; // scratch: one centroid
    final double[] refreshed; // scratch: D to every live slot

    Distances(Centroids centroids) {
      this.centroids = centroids;
      n = centroids.live;
      lo = centroids.initialDistances();
      width = new float[n * n];
      active = new boolean[n];
      Arrays.fill(active, true);
      count = new long[n];
      Arrays.fill(count, 1);
      rowMin = new double[n];
      rowMinAt = new int[n];
      rowMax = new double[n];
      rowMaxAt = new int[n];
      summedSinceMerge = new int[n];
      column = new double[centroids.length];
      refreshed = new double[n];
      for (int r = 0; r < n; r++) {
        rescan(r);
      }
    }

    private static int at(int n, int a, int b) {
      return a < b ? a * n + b : b * n + a;
    }

    private double hi(int i) {
      return width[i] == 0 ? lo[i] : Math.nextUp(lo[i] + width[i]);
    }

    /** The row g* of the step: the first row with the least rowMin, whose entry is then exact. */
    int closestRow() {
      while (true) {
        int g = -1;
        for (int r = 0; r < n; r++) {
          // Strict comparison keeps the lowest row among ties; the row keeps its lowest column.
          if (active[r] && rowMinAt[r] >= 0 && (g < 0 || rowMin[r] < rowMin[g])) {
            g = r;
          }
        }
        // Every other entry has lo ≥ this one's (lo > it if earlier), and an exact D ≥ lo.
        if (width[g * n + rowMinAt[g]] == 0) {
          return g;
        }
        sum(g, rowMinAt[g]);
      }
    }

    /** dmax of the step: the greatest hi, once it belongs to an exact entry. */
    double largest() {
      while (true) {
        int top = -1;
        for (int r = 0; r < n; r++) {
          if (active[r] && rowMaxAt[r] >= 0 && (top < 0 || rowMax[r] > rowMax[top])) {
            top = r;
          }
        }
        if (width[top * n + rowMaxAt[top]] == 0) {
          return rowMax[top];
        }
        sum(top, rowMaxAt[top]);
      }
    }

    /**
     * Makes D(a,b), a < b, exact. Once one group has had more pairs summed one at a time than a row
     * refresh costs (a pair reads two strided columns, 2·length cache lines; a row streams
     * live·length doubles, 8 to a line), its whole row is refreshed instead.
     */
    private void sum(int a, int b) {
      int live = centroids.live;
      if (++summedSinceMerge[a] > live / 16) {
        sumRow(a);
      } else if (++summedSinceMerge[b] > live / 16) {
        sumRow(b);
      } else {
        int i = a * n + b;
        double oldLo = lo[i];
        double oldHi = hi(i);
        lo[i] = centroids.distance(a, b);
        width[i] = 0;
        becameExact(a, b, oldLo, oldHi);
      }
    }

    /** Makes every D(u,k) exact, with one pass of the panel kernel over the live centroids. */
    private void sumRow(int u) {
      summedSinceMerge[u] = 0;
      centroids.copy(u, column);
      centroids.distancesTo(column, refreshed);
      for (int s = 0; s < centroids.live; s++) {
        int k = centroids.nameAt[s];
        int i = at(n, u, k);
        if (k != u && width[i] != 0) {
          double oldLo = lo[i];
          double oldHi = hi(i);
          lo[i] = refreshed[s];
          width[i] = 0;
          if (k < u) {
            becameExact(k, u, oldLo, oldHi);
          }
        }
      }
      rescan(u);
    }

    /** Row r after its entry at column c became exact: lo can only rise and hi only fall. */
    private void becameExact(int r, int c, double oldLo, double oldHi) {
      double v = lo[r * n + c];
      if ((rowMinAt[r] == c && v > oldLo) || (rowMaxAt[r] == c && v < oldHi)) {
        rescan(r);
      }
    }

    /** Merges h into g (PROBES.md §2.1) and brackets D(g,k) for every other live group k. */
    void merge(int g, int h) {
      double cg = count[g];
      double ch = count[h];
      MergeBounds bounds =
          new MergeBounds(cg, ch, lo[g * n + h], centroids.merge(g, h, cg, ch), centroids.length);
      for (int k = 0; k < n; k++) {
        if (!active[k] || k == g || k == h) {
          continue;
        }
        int ig = at(n, g, k);
        int ih = at(n, h, k);
        bounds.bracket(lo[ig], hi(ig), lo[ih], hi(ih));
        if (bounds.hi <= Double.MAX_VALUE) {
          lo[ig] = bounds.lo;
          width[ig] = roundUp(Math.nextUp(bounds.hi - bounds.lo));
        } else { // D overflows, or near enough: no bracket, the exact value
          lo[ig] = centroids.distance(g, k);
          width[ig] = 0;
        }
      }
      count[g] += count[h];
      active[h] = false;
      summedSinceMerge[g] = 0;
      for (int k = 0; k < h; k++) {
        if (!active[k] || k == g) {
          continue;
        }
        if (k > g) { // row k lost column h and has no column g
          if (rowMinAt[k] == h || rowMaxAt[k] == h) {
            rescan(k);
          }
          continue;
        }
        int i = k * n + g;
        double vLo = lo[i];
        double vHi = hi(i);
        boolean again = rowMinAt[k] == h || rowMaxAt[k] == h;
        if (rowMinAt[k] == g) {
          again |= vLo > rowMin[k];
          rowMin[k] = vLo;
        } else if (vLo < rowMin[k] || (vLo == rowMin[k] && g < rowMinAt[k])) {
          rowMin[k] = vLo;
          rowMinAt[k] = g;
        }
        if (rowMaxAt[k] == g) {
          again |= vHi < rowMax[k];
          rowMax[k] = vHi;
        } else if (vHi > rowMax[k]) {
          rowMax[k] = vHi;
          rowMaxAt[k] = g;
        }
        if (again) {
          rescan(k);
        }
      }
      rescan(g);
    }

    /** Row r's first least lo and its greatest hi over active later columns; -1 if none. */
    private void rescan(int r) {
      double least = Double.POSITIVE_INFINITY;
      double most = Double.NEGATIVE_INFINITY;
      int leastAt = -1;
      int mostAt = -1;
      int base = r * n;
      for (int c = r + 1; c < n; c++) {
        if (active[c]) {
          double l = lo[base + c];
          double u = hi(base + c);
          if (leastAt < 0 || l < least) {
            least = l;
            leastAt = c;
          }
          if (mostAt < 0 || u > most) {
            most = u;
            mostAt = c;
          }
        }
      }
      rowMin[r] = least;
      rowMinAt[r] = leastAt;
      rowMax[r] = most;
      rowMaxAt[r] = mostAt;
    }

    /** The least float ≥ w > 0 (at least the least positive float, so that 0 means exact). */
    private static float roundUp(double w) {
      float f = (float) w;
      return f < w ? Math.nextUp(f) : Math.max(f, Float.MIN_VALUE);
    }
  }

  /**
   * The bracket of D(m,k) after a merge of g and h into m (see {@link Distances}), from brackets of
   * D(g,k) and D(h,k) and the exact D(g,h). Error model, for vectors of length L (Higham, "Accuracy
   * and Stability of Numerical Algorithms", §3.1 and §4.2): {@link #squaredDistance} returns D̂
   * with |D̂ − D| ≤ γ·D + τ, where D is the exact sum for the stored vectors, γ = γ_{L+2} =
   * (L+2)u/(1 − (L+2)u), u = 2⁻⁵³ (one rounding in the difference, one in the square, L − 1 in the
   * sum) and τ = L·2⁻¹⁰⁷⁴ (underflow in the squares). The stored centroid m̂ differs from m* =
   * α·F_g + β·F_h by at most η in norm ({@link Centroids#merge}), so √D(m̂,k) is within η of
   * √D(m*,k). Every operation below is rounded outward with Math.nextDown / nextUp, which bounds a
   * rounded-to- nearest result from below / above, so the bracket holds whatever the rounding.
   */
  static final class MergeBounds {
    private final double gammaLo; // 1 − γ, rounded down
    private final double gammaHi; // 1 + γ, rounded up
    private final double tau;
    private final double alphaLo;
    private final double alphaHi;
    private final double betaLo;
    private final double betaHi;
    private final double crossLo; // αβ·D(g,h) for the exact centroid, bracketed
    private final double crossHi;
    private final double eta;
    double lo;
    double hi;

    /** {@code dgh}: the exact D̂(g,h); {@code eta}: a bound on |m̂ − m*|; {@code length}: L. */
    MergeBounds(double cg, double ch, double dgh, double eta, int length) {
      double gamma = up(up((length + 2) * U) / down(1 - (length + 2) * U));
      gammaLo = down(1 - gamma);
      gammaHi = up(1 + gamma);
      tau = length * Double.MIN_VALUE;
      double c = cg + ch; // counts are integers far below 2^53: exact
      alphaLo = down(cg / c);
      alphaHi = up(cg / c);
      betaLo = down(ch / c);
      betaHi = up(ch / c);
      crossLo = down(down(alphaLo * betaLo) * realLo(dgh));
      crossHi = up(up(alphaHi * betaHi) * realHi(dgh));
      this.eta = eta;
    }

    /** Sets lo and hi around D̂(m,k), given D̂(g,k) in [xLo, xHi] and D̂(h,k) in [yLo, yHi]. */
    void bracket(double xLo, double xHi, double yLo, double yHi) {
      // D(m*,k) = α·D(g,k) + β·D(h,k) − αβ·D(g,h), for the exact sums D of the stored vectors
      double mLo = down(down(down(alphaLo * realLo(xLo)) + down(betaLo * realLo(yLo))) - crossHi);
      double mHi = up(up(up(alphaHi * realHi(xHi)) + up(betaHi * realHi(yHi))) - crossLo);
      double rootLo = down(down(Math.sqrt(Math.max(0, mLo))) - eta);
      double rootHi = up(up(Math.sqrt(Math.max(0, mHi))) + eta);
      double dLo = rootLo > 0 ? down(rootLo * rootLo) : 0;
      double dHi = up(rootHi * rootHi);
      lo = Math.max(0, down(down(dLo * gammaLo) - tau));
      hi = up(up(dHi * gammaHi) + tau);
    }

    /** A lower bound on the exact D, given D̂ ≥ vLo. */
    private double realLo(double vLo) {
      return Math.max(0, down(down(vLo - tau) / gammaHi));
    }

    /** An upper bound on the exact D, given D̂ ≤ vHi. */
    private double realHi(double vHi) {
      return up(up(vHi + tau) / gammaLo);
    }

    private static double down(double x) {
      return Math.nextDown(x);
    }

    private static double up(double x) {
      return Math.nextUp(x);
    }
  }

  /**
   * The centroids F_g of the live groups, stored k-major in panels of {@link #PANEL} slots: slot s
   * holds F[k] at {@code panels[s / PANEL][k][s % PANEL]}, so {@link #accumulate} streams a panel
   * row by row. The live groups fill slots 0..live−1 in no particular order: a merge moves the last
   * slot into the freed one, so a refresh reads live centroids only. Owned by one run.
   */
  static final class Centroids {
    final int length;
    final double[][][] panels;
    final int[] slotOf; // by group name; -1 once merged away
    final int[] nameAt; // by slot, for slots < live
    int live;

    Centroids(IfmLayer layer) {
      int n = layer.units();
      int dIn = layer.inputWidth();
      double[][] wIn = layer.wIn();
      length = layer.unitVectorLength();
      panels = new double[(n + PANEL - 1) / PANEL][][];
      for (int p = 0; p < panels.length; p++) {
        int u0 = p * PANEL;
        int width = Math.min(PANEL, n - u0);
        double[][] panel = new double[length][width];
        for (int k = 0; k < dIn; k++) {
          for (int j = 0; j < width; j++) {
            panel[k][j] = wIn[u0 + j][k];
          }
        }
        System.arraycopy(layer.bIn(), u0, panel[dIn], 0, width);
        for (int o = 0; o < layer.outputWidth(); o++) {
          System.arraycopy(layer.wOut()[o], u0, panel[dIn + 1 + o], 0, width);
        }
        panels[p] = panel;
      }
      slotOf = new int[n];
      nameAt = new int[n];
      for (int u = 0; u < n; u++) {
        slotOf[u] = u;
        nameAt[u] = u;
      }
      live = n;
    }

    /**
     * All D(a,b), a < b, at a*n + b (slots are still names here). Panel pairs are done one tile at
     * a time, {@link #K_BLOCK} panel rows at a time, so the partner rows and the tile's sums stay
     * in cache while every a-row runs over them. This is the whole cost of a run that stops early:
     * about 8 s for 4,096 units of length 8,193 (loadtests/README.md).
     */
    double[] initialDistances() {
      int n = live;
      double[] dist = new double[n * n];
      double[][] acc = new double[PANEL][PANEL];
      double[][] a = new double[PANEL][K_BLOCK]; // the a-panel's block, one row per unit
      for (int pa = 0; pa < panels.length; pa++) {
        double[][] rowsA = panels[pa];
        int widthA = rowsA[0].length;
        for (int pb = pa; pb < panels.length; pb++) {
          double[][] rowsB = panels[pb];
          int widthB = rowsB[0].length;
          for (int i = 0; i < widthA; i++) {
            Arrays.fill(acc[i], 0, widthB, 0);
          }
          for (int k0 = 0; k0 < length; k0 += K_BLOCK) {
            int k1 = Math.min(length, k0 + K_BLOCK);
            for (int k = k0; k < k1; k++) {
              double[] row = rowsA[k];
              for (int i = 0; i < widthA; i++) {
                a[i][k - k0] = row[i];
              }
            }
            for (int i = 0; i < widthA; i++) {
              accumulate(acc[i], rowsB, pa == pb ? i + 1 : 0, widthB, a[i], -k0, k0, k1);
            }
          }
          for (int i = 0; i < widthA; i++) {
            int from = pa == pb ? i + 1 : 0;
            int at = (pa * PANEL + i) * n + pb * PANEL;
            System.arraycopy(acc[i], from, dist, at + from, widthB - from);
          }
        }
      }
      return dist;
    }

    /**
     * F_g ← (c_g·F_g + c_h·F_h)/(c_g + c_h) (PROBES.md §2.1), then frees h's slot. Returns η ≥ |F̂
     * − F*|, the distance between the stored result and the exact one: each component takes four
     * roundings of relative size ≤ u (γ₃ of (c_g·|F_g| + c_h·|F_h|)/c) and, near underflow, ≤
     * 2⁻¹⁰⁷⁴ in absolute terms each.
     */
    double merge(int g, int h, double cg, double ch) {
      double c = cg + ch;
      double[][] pg = panels[slotOf[g] / PANEL];
      double[][] ph = panels[slotOf[h] / PANEL];
      int jg = slotOf[g] % PANEL;
      int jh = slotOf[h] % PANEL;
      double scale = 0; // Σ_k t_k², t_k = (c_g·|F_g[k]| + c_h·|F_h[k]|)/c, rounded up
      for (int k = 0; k < length; k++) {
        double a = pg[k][jg];
        double b = ph[k][jh];
        pg[k][jg] = (cg * a + ch * b) / c;
        double t = up(up(up(cg * Math.abs(a)) + up(ch * Math.abs(b))) / c);
        scale = up(scale + up(t * t));
      }
      int free = slotOf[h];
      int last = --live;
      if (free != last) {
        double[][] to = panels[free / PANEL];
        double[][] from = panels[last / PANEL];
        for (int k = 0; k < length; k++) {
          to[k][free % PANEL] = from[k][last % PANEL];
        }
        nameAt[free] = nameAt[last];
        slotOf[nameAt[free]] = free;
      }
      slotOf[h] = -1;
      double gamma3 = up(up(3 * U) / Math.nextDown(1 - 3 * U));
      return up(up(gamma3 * up(Math.sqrt(scale))) + 4.0 * length * Double.MIN_VALUE);
    }

    /** D(a,b) for two live groups, summed as squaredDistance: two strided columns. */
    double distance(int a, int b) {
      double[][] pa = panels[slotOf[a] / PANEL];
      double[][] pb = panels[slotOf[b] / PANEL];
      int ja = slotOf[a] % PANEL;
      int jb = slotOf[b] % PANEL;
      double s = 0;
      for (int k = 0; k < length; k++) {
        double d = pa[k][ja] - pb[k][jb];
        s += d * d;
      }
      return s;
    }

    /** The centroid of live group u, into {@code out}. */
    void copy(int u, double[] out) {
      double[][] p = panels[slotOf[u] / PANEL];
      int j = slotOf[u] % PANEL;
      for (int k = 0; k < length; k++) {
        out[k] = p[k][j];
      }
    }

    private static double up(double x) {
      return Math.nextUp(x);
    }

    /** D(x, F) for the centroid F in every live slot s, at out[s]; summed as squaredDistance. */
    void distancesTo(double[] x, double[] out) {
      double[] acc = new double[PANEL];
      for (int p = 0; p * PANEL < live; p++) {
        int width = Math.min(panels[p][0].length, live - p * PANEL);
        Arrays.fill(acc, 0);
        accumulate(acc, panels[p], 0, width, x, 0, 0, length);
        System.arraycopy(acc, 0, out, p * PANEL, width);
      }
    }
  }
}
