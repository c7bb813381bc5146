package io.probestream.trainer;

import java.util.SplittableRandom;

/**
 * A ReLU multilayer perceptron in float64: for widths d, h1, …, hL, K the hidden layers are h_l =
 * ReLU(W_l h_{l-1} + b_l) and the logits W h_L + b, each W stored out × in (the PyTorch Linear
 * layout, exported as Gemm with transB = 1). The loss is the mean softmax cross-entropy. Mutable:
 * the owning {@link TrainingRun} updates the parameters in place on its one thread.
 */
public final class ReluMlp {
  private final int[] widths;
  private final double[][] weights; // weights[l]: widths[l+1] × widths[l], row-major
  private final double[][] biases;

  private ReluMlp(int[] widths, double[][] weights, double[][] biases) {
    this.widths = widths;
    this.weights = weights;
    this.biases = biases;
  }

  /** He-initialised weights (N(0, 2 / fan-in)) and zero biases, from {@code rnd}. */
  public static ReluMlp init(SplittableRandom rnd, int... widths) {
    if (widths.length < 2) {
      throw new IllegalArgumentException("an MLP needs at least an input and an output width");
    }
    int layers = widths.length - 1;
    double[][] w = new double[layers][];
    double[][] b = new double[layers][];
    for (int l = 0; l < layers; l++) {
      double scale = Math.sqrt(2.0 / widths[l]);
      w[l] = new double[widths[l + 1] * widths[l]];
      b[l] = new double[widths[l + 1]];
      for (int i = 0; i < w[l].length; i++) {
        w[l][i] = scale * gaussian(rnd);
      }
    }
    return new ReluMlp(widths.clone(), w, b);
  }

  /** Widths d, h1, …, K; a copy. */
  public int[] widths() {
    return widths.clone();
  }

  /** Number of weight layers (hidden layers + the classifier). */
  public int layers() {
    return weights.length;
  }

  /**
   * The parameters in optimiser order W_1, b_1, W_2, b_2, …: the live arrays, which the optimiser
   * updates in place.
   */
  public double[][] parameters() {
    double[][] p = new double[2 * weights.length][];
    for (int l = 0; l < weights.length; l++) {
      p[2 * l] = weights[l];
      p[2 * l + 1] = biases[l];
    }
    return p;
  }

  /** Weight of layer l (0-based), out × in row-major; a copy. */
  public double[] weight(int l) {
    return weights[l].clone();
  }

  /** Bias of layer l (0-based); a copy. */
  public double[] bias(int l) {
    return biases[l].clone();
  }

  /** A copy whose parameters are rounded to float32: the model exactly as it is exported. */
  public ReluMlp roundedToFloat() {
    double[][] w = new double[weights.length][];
    double[][] b = new double[biases.length][];
    for (int l = 0; l < weights.length; l++) {
      w[l] = round(weights[l]);
      b[l] = round(biases[l]);
    }
    return new ReluMlp(widths.clone(), w, b);
  }

  /** A deep copy. */
  public ReluMlp copy() {
    double[][] w = new double[weights.length][];
    double[][] b = new double[biases.length][];
    for (int l = 0; l < weights.length; l++) {
      w[l] = weights[l].clone();
      b[l] = biases[l].clone();
    }
    return new ReluMlp(widths.clone(), w, b);
  }

  /** Activations of one sample: [0] the input, [1..L] the hidden layers, [L+1] the logits. */
  public double[][] forward(double[] x) {
    double[][] a = new double[weights.length + 1][];
    a[0] = x;
    for (int l = 0; l < weights.length; l++) {
      int in = widths[l];
      int out = widths[l + 1];
      double[] z = new double[out];
      double[] w = weights[l];
      for (int o = 0; o < out; o++) {
        double s = biases[l][o];
        int base = o * in;
        for (int i = 0; i < in; i++) {
          s += w[base + i] * a[l][i];
        }
        z[o] = l == weights.length - 1 ? s : Math.max(0, s);
      }
      a[l + 1] = z;
    }
    return a;
  }

  /** The mean cross-entropy and accuracy over a whole dataset. */
  public Evaluation evaluate(Dataset data) {
    double loss = 0;
    int correct = 0;
    for (int i = 0; i < data.rows(); i++) {
      double[][] a = forward(data.row(i));
      double[] logits = a[a.length - 1];
      int y = (int) data.labels()[i];
      loss += -logSoftmax(logits)[y];
      if (argmax(logits) == y) {
        correct++;
      }
    }
    return new Evaluation(loss / data.rows(), (double) correct / data.rows());
  }

  /** Mean cross-entropy and the share of rows whose arg-max logit is their label. */
  public record Evaluation(double loss, double accuracy) {}

  /**
   * The mean cross-entropy over {@code rows} of {@code data} and its gradient with respect to every
   * parameter, in {@link #parameters()} order (backpropagation: dL/dlogits = softmax − onehot, then
   * through each Gemm and ReLU).
   */
  public Gradient lossAndGradient(Dataset data, int[] rows) {
    double[][] params = parameters();
    double[][] g = new double[params.length][];
    for (int p = 0; p < params.length; p++) {
      g[p] = new double[params[p].length];
    }
    double loss = 0;
    int layers = weights.length;
    double inv = 1.0 / rows.length;
    for (int r : rows) {
      double[][] a = forward(data.row(r));
      double[] logp = logSoftmax(a[layers]);
      int y = (int) data.labels()[r];
      loss -= logp[y];
      double[] delta = new double[logp.length];
      for (int k = 0; k < delta.length; k++) {
        delta[k] = (Math.exp(logp[k]) - (k == y ? 1 : 0)) * inv;
      }
      for (int l = layers - 1; l >= 0; l--) {
        int in = widths[l];
        double[] gw = g[2 * l];
        double[] gb = g[2 * l + 1];
        double[] prev = a[l];
        for (int o = 0; o < delta.length; o++) {
          double d = delta[o];
          if (d == 0) {
            continue;
          }
          gb[o] += d;
          int base = o * in;
          for (int i = 0; i < in; i++) {
            gw[base + i] += d * prev[i];
          }
        }
        if (l > 0) {
          double[] w = weights[l];
          double[] back = new double[in];
          for (int o = 0; o < delta.length; o++) {
            double d = delta[o];
            if (d == 0) {
              continue;
            }
            int base = o * in;
            for (int i = 0; i < in; i++) {
              back[i] += d * w[base + i];
            }
          }
          for (int i = 0; i < in; i++) {
            if (prev[i] <= 0) {
              back[i] = 0; // ReLU: prev = max(0, z), so prev > 0 exactly where z > 0
            }
          }
          delta = back;
        }
      }
    }
    return new Gradient(loss * inv, g);
  }

  /** A loss and its gradient, in {@link #parameters()} order. */
  public record Gradient(double loss, double[][] values) {}

  static double[] logSoftmax(double[] z) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : z) {
      max = Math.max(max, v);
    }
    double sum = 0;
    for (double v : z) {
      sum += Math.exp(v - max);
    }
    double log = max + Math.log(sum);
    double[] out = new double[z.length];
    for (int k = 0; k < z.length; k++) {
      out[k] = z[k] - log;
    }
    return out;
  }

  static int argmax(double[] z) {
    int best = 0;
    for (int k = 1; k < z.length; k++) {
      if (z[k] > z[best]) {
        best = k;
      }
    }
    return best;
  }

  private static double[] round(double[] v) {
    double[] r = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      r[i] = (float) v[i];
    }
    return r;
  }

  static double gaussian(SplittableRandom rnd) {
    double u = 1.0 - rnd.nextDouble();
    double v = rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
