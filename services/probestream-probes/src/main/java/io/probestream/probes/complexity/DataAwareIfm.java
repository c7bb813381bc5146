package io.probestream.probes.complexity;

import io.probestream.probes.complexity.IterativeFeatureMerging.Merge;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;

/**
 * Data-aware IFM (PROBES.md §2.2) for one layer: the frozen weights and full merge order, from
 * which batches of the layer's input give {@link IfmDataMoments}. Immutable and thread-safe; the
 * arrays of the layer are read, never written.
 */
public final class DataAwareIfm {
  private final IfmLayer layer;
  private final MergeSequence sequence;

  /**
   * @param layer the layer's weights, finite (see {@link IfmLayer#finite()})
   * @param sequence the layer's complete merge order from {@link
   *     IterativeFeatureMerging#mergeSequence(IfmLayer)}
   */
  public DataAwareIfm(IfmLayer layer, MergeSequence sequence) {
    if (!sequence.complete()) {
      throw new IllegalArgumentException(
          "data-aware ifm needs the full merge order; this one stops after "
              + sequence.steps().size()
              + " of "
              + (sequence.n0() - 1)
              + " steps (computed with a stop beta)");
    }
    if (sequence.n0() != layer.units()) {
      throw new IllegalArgumentException(
          "merge order has n0 = " + sequence.n0() + "; layer has " + layer.units() + " units");
    }
    this.layer = layer;
    this.sequence = sequence;
  }

  /**
   * Moments of row-major float32 rows ({@code rows × d_in}); non-finite rows are counted, left out.
   */
  public IfmDataMoments moments(float[] x, int rows) {
    int dIn = layer.inputWidth();
    if (x.length != (long) rows * dIn) {
      throw new IllegalArgumentException(
          "x has " + x.length + " values; expected rows*d_in = " + (long) rows * dIn);
    }
    double[] row = new double[dIn];
    Accumulator acc = new Accumulator();
    for (int i = 0; i < rows; i++) {
      boolean finite = true;
      for (int j = 0; j < dIn; j++) {
        row[j] = x[i * dIn + j];
        finite &= Double.isFinite(row[j]);
      }
      acc.add(row, finite);
    }
    return acc.finish();
  }

  /** Moments of float64 rows (each of length d_in); non-finite rows are counted, left out. */
  public IfmDataMoments moments(double[][] x) {
    int dIn = layer.inputWidth();
    Accumulator acc = new Accumulator();
    for (int i = 0; i < x.length; i++) {
      if (x[i].length != dIn) {
        throw new IllegalArgumentException(
            "x row " + i + " has length " + x[i].length + "; expected d_in = " + dIn);
      }
      boolean finite = true;
      for (double v : x[i]) {
        finite &= Double.isFinite(v);
      }
      acc.add(x[i], finite);
    }
    return acc.finish();
  }

  /**
   * Sums over one batch, sample by sample: y from the full layer, then y_t − y updated one merge at
   * a time (only the merged groups' terms change), so a batch costs O(N·n0·(d_in + d_out)).
   */
  private final class Accumulator {
    private final int n = layer.units();
    private final int dOut = layer.outputWidth();
    private final int t = sequence.steps().size();
    private final double[] changeSq = new double[t];
    private final double[] z = new double[n]; // per group: summed pre-activations
    private final double[] y = new double[dOut];
    private final double[] diff = new double[dOut]; // y_t − y
    private final double[][] v; // per group: averaged outgoing column, as it stands after step s
    private final double[][] vAfter; // vAfter[s] = the merged group's column after step s
    private double outputSq;
    private long samples;
    private long nonfinite;

    Accumulator() {
      v = new double[n][dOut];
      for (int u = 0; u < n; u++) {
        for (int o = 0; o < dOut; o++) {
          v[u][o] = layer.wOut()[o][u];
        }
      }
      // The merged columns depend on the weights only: fix them once per batch.
      long[] count = new long[n];
      java.util.Arrays.fill(count, 1);
      double[][] cur = new double[n][];
      for (int u = 0; u < n; u++) {
        cur[u] = v[u];
      }
      vAfter = new double[t][];
      for (int s = 0; s < t; s++) {
        Merge m = sequence.steps().get(s);
        double cg = count[m.first()];
        double ch = count[m.second()];
        double[] merged = new double[dOut];
        for (int o = 0; o < dOut; o++) {
          merged[o] = (cg * cur[m.first()][o] + ch * cur[m.second()][o]) / (cg + ch);
        }
        count[m.first()] += count[m.second()];
        cur[m.first()] = merged;
        vAfter[s] = merged;
      }
    }

    void add(double[] x, boolean finite) {
      if (!finite) {
        nonfinite++;
        return;
      }
      samples++;
      java.util.Arrays.fill(y, 0);
      java.util.Arrays.fill(diff, 0);
      for (int u = 0; u < n; u++) {
        double[] w = layer.wIn()[u];
        double s = layer.bIn()[u];
        for (int j = 0; j < w.length; j++) {
          s += w[j] * x[j];
        }
        z[u] = s;
        double a = relu(s);
        if (a != 0) {
          double[] col = v[u];
          for (int o = 0; o < dOut; o++) {
            y[o] += a * col[o];
          }
        }
      }
      double ySq = 0;
      for (int o = 0; o < dOut; o++) {
        ySq += y[o] * y[o];
      }
      outputSq += ySq;
      double[][] col = new double[n][];
      System.arraycopy(v, 0, col, 0, n);
      for (int s = 0; s < t; s++) {
        Merge m = sequence.steps().get(s);
        int g = m.first();
        int h = m.second();
        double ag = relu(z[g]);
        double ah = relu(z[h]);
        z[g] += z[h];
        double a = relu(z[g]);
        double[] vg = col[g];
        double[] vh = col[h];
        double[] vm = vAfter[s];
        double sq = 0;
        for (int o = 0; o < dOut; o++) {
          diff[o] += a * vm[o] - ag * vg[o] - ah * vh[o];
          sq += diff[o] * diff[o];
        }
        changeSq[s] += sq;
        col[g] = vm;
      }
    }

    IfmDataMoments finish() {
      return new IfmDataMoments(n, samples, nonfinite, changeSq, outputSq);
    }
  }

  private static double relu(double s) {
    return s > 0 ? s : 0;
  }
}
