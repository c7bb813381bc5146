package io.probestream.testkit;

import java.util.Random;

/**
 * A random ReLU MLP (Gemm + Relu per hidden layer) with its weights kept, so tests can compute its
 * outputs in plain Java. Hidden activations are graph outputs h1, h2, …; the last layer is {@code
 * classifier.weight}/{@code classifier.bias} producing {@code logits}. Immutable.
 */
public final class Mlp {
  private final int[] widths;
  private final double[][][] weights; // weights[l] is out × in
  private final double[][] biases;

  private Mlp(int[] widths, double[][][] weights, double[][] biases) {
    this.widths = widths;
    this.weights = weights;
    this.biases = biases;
  }

  /** Random weights (float32-representable) for widths in, h1, …, classes. */
  public static Mlp random(long seed, int... widths) {
    Random rnd = new Random(seed);
    int layers = widths.length - 1;
    double[][][] w = new double[layers][][];
    double[][] b = new double[layers][];
    for (int l = 0; l < layers; l++) {
      double scale = Math.sqrt(2.0 / widths[l]);
      w[l] = new double[widths[l + 1]][widths[l]];
      b[l] = new double[widths[l + 1]];
      for (int o = 0; o < widths[l + 1]; o++) {
        for (int i = 0; i < widths[l]; i++) {
          w[l][o][i] = (float) (rnd.nextGaussian() * scale);
        }
        b[l][o] = (float) (rnd.nextGaussian() * 0.1);
      }
    }
    return new Mlp(widths.clone(), w, b);
  }

  /** The ONNX model: input "input", outputs h1.. and "logits". */
  public byte[] onnx() {
    OnnxModelBuilder m = new OnnxModelBuilder().input("input", widths[0]);
    String cur = "input";
    int layers = widths.length - 1;
    for (int l = 0; l < layers; l++) {
      boolean last = l == layers - 1;
      String prefix = last ? "classifier" : "fc" + (l + 1);
      m.matrix(prefix + ".weight", weights[l]).vector(prefix + ".bias", biases[l]);
      String z = last ? "logits" : "z" + (l + 1);
      m.linear(cur, prefix + ".weight", prefix + ".bias", z);
      if (!last) {
        m.relu(z, "h" + (l + 1));
        cur = "h" + (l + 1);
        m.output(cur, widths[l + 1]);
      }
    }
    m.output("logits", widths[layers]);
    return m.build();
  }

  /**
   * Forward pass in float64 of one sample: activations[l] for l = 1..hidden are h_l, the last is
   * the logits.
   */
  public double[][] forward(float[] x) {
    return pass(x, true);
  }

  /** Like {@link #forward} but before each ReLU: z1, z2, …, logits. */
  public double[][] preActivations(float[] x) {
    return pass(x, false);
  }

  private double[][] pass(float[] x, boolean relu) {
    double[] cur = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      cur[i] = x[i];
    }
    int layers = widths.length - 1;
    double[][] out = new double[layers][];
    for (int l = 0; l < layers; l++) {
      double[] next = new double[widths[l + 1]];
      for (int o = 0; o < next.length; o++) {
        double s = biases[l][o];
        for (int i = 0; i < cur.length; i++) {
          s += weights[l][o][i] * cur[i];
        }
        next[o] = l == layers - 1 ? s : Math.max(0, s);
      }
      double[] kept = next.clone();
      if (!relu && l < layers - 1) {
        for (int o = 0; o < next.length; o++) {
          double s = biases[l][o];
          for (int i = 0; i < cur.length; i++) {
            s += weights[l][o][i] * cur[i];
          }
          kept[o] = s;
        }
      }
      out[l] = kept;
      cur = next;
    }
    return out;
  }

  /** The classifier weight, classes × last hidden width; a copy. */
  public double[][] classifierWeight() {
    double[][] w = weights[weights.length - 1];
    double[][] c = new double[w.length][];
    for (int i = 0; i < w.length; i++) {
      c[i] = w[i].clone();
    }
    return c;
  }

  public int[] widths() {
    return widths.clone();
  }
}
