package io.probestream.probes.complexity;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Iterative Feature Merging, weights only (PROBES.md §2.1): the order in which a layer's units
 * merge, and {@code ifm_units} for a threshold beta. Stateless; every method is a pure function.
 *
 * <p>A group is named by its smallest original unit index. Because the merged unit takes the
 * position of g* (which precedes h*), and units are kept in order of their smallest original index,
 * the current positions are exactly the surviving names in increasing order, so row-major order of
 * positions is row-major order of names.
 */
public final class IterativeFeatureMerging {
  /** Note for a layer whose weights contain NaN or ±Inf (PROBES.md §0). */
  public static final String NOTE_NONFINITE = "ifm: non-finite weights";

  /** Chunk length of {@link #squaredDistance}; fixed so every D is summed in the same order. */
  static final int CHUNK = 256;

  private static final int TILE = 64; // rows per block of the initial distance matrix
  private static final int REFRESH_BLOCK = 128; // columns per task of a row refresh

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
   * D(a,b) = Σ_k (a[k] − b[k])², direct differences in float64 (PROBES.md §2.1). Summed in chunks
   * of {@link #CHUNK} with four partial sums per chunk (for instruction-level parallelism), chunks
   * added in order; every D in this class is summed exactly this way, so the tiled start and the
   * per-merge refresh agree bit for bit.
   */
  static double squaredDistance(double[] a, double[] b) {
    double s = 0;
    for (int k0 = 0; k0 < a.length; k0 += CHUNK) {
      s += chunk(a, b, k0, Math.min(a.length, k0 + CHUNK));
    }
    return s;
  }

  private static double chunk(double[] a, double[] b, int from, int to) {
    double s0 = 0;
    double s1 = 0;
    double s2 = 0;
    double s3 = 0;
    int k = from;
    for (; k + 3 < to; k += 4) {
      double d0 = a[k] - b[k];
      double d1 = a[k + 1] - b[k + 1];
      double d2 = a[k + 2] - b[k + 2];
      double d3 = a[k + 3] - b[k + 3];
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    for (; k < to; k++) {
      double d = a[k] - b[k];
      s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
  }

  /**
   * The loop of PROBES.md §2.1 with a kept distance matrix: per row g the minimum and maximum of
   * D(g,h) over later h, so a step finds the global pair in O(n0) and a merge costs one row
   * refresh, O(n0·D), plus a rescan, O(n0), of each row whose minimum or maximum partner changed.
   */
  private static MergeSequence run(IfmLayer layer, double stopBeta) {
    int n = layer.units();
    double[][] f = new double[n][];
    for (int u = 0; u < n; u++) {
      f[u] = layer.unitVector(u);
    }
    long[] count = new long[n];
    Arrays.fill(count, 1);
    boolean[] active = new boolean[n];
    Arrays.fill(active, true);
    double[] dist = initialDistances(f); // D(a,b), a < b, at a*n + b
    double[] rowMin = new double[n];
    int[] rowMinAt = new int[n];
    double[] rowMax = new double[n];
    int[] rowMaxAt = new int[n];
    for (int g = 0; g < n; g++) {
      rescan(g, n, dist, active, rowMin, rowMinAt, rowMax, rowMaxAt);
    }
    List<Merge> steps = new ArrayList<>();
    boolean stopped = false;
    for (int left = n; left >= 2; left--) {
      int g = -1;
      double dmin = Double.POSITIVE_INFINITY;
      double dmax = Double.NEGATIVE_INFINITY;
      for (int r = 0; r < n; r++) {
        if (active[r] && rowMinAt[r] >= 0) {
          // Strict comparison keeps the lowest row among ties; the row keeps its lowest column.
          if (g < 0 || rowMin[r] < dmin) {
            g = r;
            dmin = rowMin[r];
          }
          dmax = Math.max(dmax, rowMax[r]);
        }
      }
      int h = rowMinAt[g];
      Merge step = new Merge(g, h, dmin, dmax);
      steps.add(step);
      if (!Double.isNaN(stopBeta) && !step.allowedBy(stopBeta)) {
        stopped = true;
        break;
      }
      double cg = count[g];
      double ch = count[h];
      double c = cg + ch;
      double[] fg = f[g];
      double[] fh = f[h];
      for (int k = 0; k < fg.length; k++) {
        fg[k] = (cg * fg[k] + ch * fh[k]) / c;
      }
      count[g] += count[h];
      active[h] = false;
      f[h] = null;
      int merged = g;
      // Blocks keep the refreshed row's partners in cache; each D is summed in a fixed order.
      IntStream.range(0, (n + REFRESH_BLOCK - 1) / REFRESH_BLOCK)
          .forEach(
              blk -> {
                for (int k = blk * REFRESH_BLOCK; k < Math.min(n, (blk + 1) * REFRESH_BLOCK); k++) {
                  if (active[k] && k != merged) {
                    dist[k < merged ? k * n + merged : merged * n + k] = squaredDistance(fg, f[k]);
                  }
                }
              });
      for (int k = 0; k < h; k++) {
        if (!active[k] || k == g) {
          continue;
        }
        if (k > g) {
          if (rowMinAt[k] == h || rowMaxAt[k] == h) {
            rescan(k, n, dist, active, rowMin, rowMinAt, rowMax, rowMaxAt);
          }
          continue;
        }
        double v = dist[k * n + g];
        boolean again = rowMinAt[k] == h || rowMaxAt[k] == h;
        if (rowMinAt[k] == g) {
          again |= v > rowMin[k];
          rowMin[k] = v;
        } else if (v < rowMin[k] || (v == rowMin[k] && g < rowMinAt[k])) {
          rowMin[k] = v;
          rowMinAt[k] = g;
        }
        if (rowMaxAt[k] == g) {
          again |= v < rowMax[k];
          rowMax[k] = v;
        } else if (v > rowMax[k]) {
          rowMax[k] = v;
          rowMaxAt[k] = g;
        }
        if (again) {
          rescan(k, n, dist, active, rowMin, rowMinAt, rowMax, rowMaxAt);
        }
      }
      rescan(g, n, dist, active, rowMin, rowMinAt, rowMax, rowMaxAt);
    }
    return new MergeSequence(n, steps, !stopped);
  }

  /** Row g's first minimum and its maximum over active later columns; -1 if there is none. */
  private static void rescan(
      int g,
      int n,
      double[] dist,
      boolean[] active,
      double[] rowMin,
      int[] rowMinAt,
      double[] rowMax,
      int[] rowMaxAt) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    int loAt = -1;
    int hiAt = -1;
    int base = g * n;
    for (int k = g + 1; k < n; k++) {
      if (active[k]) {
        double v = dist[base + k];
        if (loAt < 0 || v < lo) {
          lo = v;
          loAt = k;
        }
        if (hiAt < 0 || v > hi) {
          hi = v;
          hiAt = k;
        }
      }
    }
    rowMin[g] = lo;
    rowMinAt[g] = loAt;
    rowMax[g] = hi;
    rowMaxAt[g] = hiAt;
  }

  /**
   * All D(a,b), a < b, blocked so that two tiles of unit vectors stay in cache while every pair
   * between them is summed; each pair adds its chunks in order, exactly as squaredDistance does.
   * Single-threaded: probes start no threads (STYLE.md); 4,096 units take about 32 s here.
   */
  private static double[] initialDistances(double[][] f) {
    int n = f.length;
    int len = f[0].length;
    if ((long) n * n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "ifm layer has " + n + " units; the n0² distance matrix needs n0 ≤ 46340");
    }
    double[] dist = new double[n * n];
    int tiles = (n + TILE - 1) / TILE;
    // One task per tile pair (a-tile ≤ b-tile); tasks write disjoint entries.
    IntStream.range(0, tiles * tiles)
        .filter(p -> p / tiles <= p % tiles)
        .forEach(p -> tile(f, dist, (p / tiles) * TILE, (p % tiles) * TILE));
    return dist;
  }

  /** Adds every chunk of D(a,b) for a in [a0, a0+TILE), b in [b0, b0+TILE), a < b, in order. */
  private static void tile(double[][] f, double[] dist, int a0, int b0) {
    int n = f.length;
    int len = f[0].length;
    int a1 = Math.min(n, a0 + TILE);
    int b1 = Math.min(n, b0 + TILE);
    for (int k0 = 0; k0 < len; k0 += CHUNK) {
      int k1 = Math.min(len, k0 + CHUNK);
      for (int a = a0; a < a1; a++) {
        for (int b = Math.max(b0, a + 1); b < b1; b++) {
          dist[a * n + b] += chunk(f[a], f[b], k0, k1);
        }
      }
    }
  }
}
