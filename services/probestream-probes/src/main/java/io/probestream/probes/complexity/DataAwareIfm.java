package io.probestream.probes.complexity;

import io.probestream.probes.complexity.IterativeFeatureMerging.Merge;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;

/**
 * Data-aware IFM (PROBES.md §2.2) for one layer: the frozen weights, activation and full merge
 * order, from which batches of the layer's input give {@link IfmDataMoments}. Immutable and
 * thread-safe; the arrays of the layer are read, never written.
 */
public final class DataAwareIfm {
  /** Samples processed together; their values sit side by side so the inner loops vectorize. */
  private static final int BLOCK = 128;

  private final IfmLayer layer;
  private final MergeSequence sequence;
  private final double slope;
  private final double[][] wInT; // d_in × n0
  private final double[][] vOut; // per unit: its outgoing column W_out[:,u]
  private final double[][] vAfter; // vAfter[s] = the merged group's averaged column after step s

  /** A ReLU layer. */
  public DataAwareIfm(IfmLayer layer, MergeSequence sequence) {
    this(layer, sequence, 0);
  }

  /**
   * @param layer the layer's weights, finite (see {@link IfmLayer#finite()})
   * @param sequence the layer's complete merge order from {@link
   *     IterativeFeatureMerging#mergeSequence(IfmLayer)}
   * @param slope the activation's slope below 0: 0 for ReLU, alpha for LeakyRelu (both positively
   *     homogeneous, so the compact layer is exact for identical units)
   */
  public DataAwareIfm(IfmLayer layer, MergeSequence sequence, double slope) {
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
    if (!Double.isFinite(slope)) {
      throw new IllegalArgumentException("activation slope = " + slope + "; must be finite");
    }
    this.layer = layer;
    this.sequence = sequence;
    this.slope = slope;
    int n = layer.units();
    int dIn = layer.inputWidth();
    int dOut = layer.outputWidth();
    wInT = new double[dIn][n];
    for (int u = 0; u < n; u++) {
      for (int j = 0; j < dIn; j++) {
        wInT[j][u] = layer.wIn()[u][j];
      }
    }
    vOut = new double[n][dOut];
    for (int u = 0; u < n; u++) {
      for (int o = 0; o < dOut; o++) {
        vOut[u][o] = layer.wOut()[o][u];
      }
    }
    // The merged columns depend on the weights only: fix them once.
    long[] count = new long[n];
    java.util.Arrays.fill(count, 1);
    double[][] cur = vOut.clone();
    int t = sequence.steps().size();
    vAfter = new double[t][];
    for (int st = 0; st < t; st++) {
      Merge m = sequence.steps().get(st);
      double cg = count[m.first()];
      double ch = count[m.second()];
      double[] merged = new double[dOut];
      for (int o = 0; o < dOut; o++) {
        merged[o] = (cg * cur[m.first()][o] + ch * cur[m.second()][o]) / (cg + ch);
      }
      count[m.first()] += count[m.second()];
      cur[m.first()] = merged;
      vAfter[st] = merged;
    }
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
    Accumulator acc = new Accumulator();
    for (int i = 0; i < rows; i++) {
      boolean finite = true;
      for (int j = 0; j < dIn; j++) {
        finite &= Float.isFinite(x[i * dIn + j]);
      }
      if (finite) {
        for (int j = 0; j < dIn; j++) {
          acc.xT[j][acc.used] = x[i * dIn + j];
        }
        acc.take();
      } else {
        acc.nonfinite++;
      }
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
      if (finite) {
        for (int j = 0; j < dIn; j++) {
          acc.xT[j][acc.used] = x[i][j];
        }
        acc.take();
      } else {
        acc.nonfinite++;
      }
    }
    return acc.finish();
  }

  /**
   * Sums over one batch, {@link #BLOCK} samples at a time with the samples as the inner index: y
   * from the full layer, then y_t − y updated one merge at a time (only the merged groups' terms
   * change). A batch costs O(N·n0·(d_in + d_out)); every per-sample sum runs in a fixed order.
   */
  private final class Accumulator {
    private final int n = layer.units();
    private final int dIn = layer.inputWidth();
    private final int dOut = layer.outputWidth();
    private final int t = sequence.steps().size();
    private final double[] changeSq = new double[t];
    final double[][] xT = new double[dIn][BLOCK]; // the block's inputs, sample as inner index
    private final double[][] z = new double[n][BLOCK]; // per group: summed pre-activations
    private final double[][] diff = new double[dOut][BLOCK]; // y_t − y
    private final double[] y = new double[BLOCK];
    private final double[] sq = new double[BLOCK];
    private final double[] a = new double[BLOCK];
    private final double[] ag = new double[BLOCK];
    private final double[] ah = new double[BLOCK];
    private double outputSq;
    private long samples;
    long nonfinite;
    int used; // samples in the current block

    /** Counts the sample just written at column {@link #used}; runs the block when it is full. */
    void take() {
      used++;
      samples++;
      if (used == BLOCK) {
        block();
      }
    }

    private void block() {
      int b = used;
      for (int u = 0; u < n; u++) {
        double[] zu = z[u];
        java.util.Arrays.fill(zu, 0, b, layer.bIn()[u]);
      }
      for (int j = 0; j < dIn; j++) {
        double[] xj = xT[j];
        double[] wj = wInT[j];
        for (int u = 0; u < n; u++) {
          double w = wj[u];
          if (w != 0) {
            double[] zu = z[u];
            for (int i = 0; i < b; i++) {
              zu[i] += w * xj[i];
            }
          }
        }
      }
      // y = σ(z)·W_outᵀ, built in diff for ‖y‖²; then diff restarts at y_0 − y = 0.
      for (int o = 0; o < dOut; o++) {
        java.util.Arrays.fill(diff[o], 0, b, 0);
      }
      for (int u = 0; u < n; u++) {
        double[] zu = z[u];
        for (int i = 0; i < b; i++) {
          a[i] = act(zu[i]);
        }
        double[] col = vOut[u];
        for (int o = 0; o < dOut; o++) {
          double c = col[o];
          if (c != 0) {
            double[] d = diff[o];
            for (int i = 0; i < b; i++) {
              d[i] += c * a[i];
            }
          }
        }
      }
      java.util.Arrays.fill(y, 0, b, 0);
      for (int o = 0; o < dOut; o++) {
        double[] d = diff[o];
        for (int i = 0; i < b; i++) {
          y[i] += d[i] * d[i];
          d[i] = 0;
        }
      }
      for (int i = 0; i < b; i++) {
        outputSq += y[i];
      }
      double[][] col = vOut.clone();
      for (int st = 0; st < t; st++) {
        Merge m = sequence.steps().get(st);
        double[] zg = z[m.first()];
        double[] zh = z[m.second()];
        for (int i = 0; i < b; i++) {
          ag[i] = act(zg[i]);
          ah[i] = act(zh[i]);
          zg[i] += zh[i];
          a[i] = act(zg[i]);
        }
        double[] vg = col[m.first()];
        double[] vh = col[m.second()];
        double[] vm = vAfter[st];
        java.util.Arrays.fill(sq, 0, b, 0);
        for (int o = 0; o < dOut; o++) {
          double cm = vm[o];
          double cg = vg[o];
          double ch = vh[o];
          double[] d = diff[o];
          for (int i = 0; i < b; i++) {
            d[i] += cm * a[i] - cg * ag[i] - ch * ah[i];
            sq[i] += d[i] * d[i];
          }
        }
        double total = 0;
        for (int i = 0; i < b; i++) {
          total += sq[i];
        }
        changeSq[st] += total;
        col[m.first()] = vm;
      }
      used = 0;
    }

    IfmDataMoments finish() {
      if (used > 0) {
        block();
      }
      return new IfmDataMoments(n, samples, nonfinite, changeSq, outputSq);
    }
  }

  private double act(double s) {
    return s > 0 ? s : slope * s;
  }
}
