package io.probestream.trainer;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter's AdamW): per parameter, first and second
 * moment estimates with bias correction, then {@code p -= lr · (m̂ / (√v̂ + eps) + decay · p)}.
 * Mutable; owned by one {@link TrainingRun}.
 */
final class Adam {
  private static final double BETA1 = 0.9;
  private static final double BETA2 = 0.999;
  private static final double EPS = 1e-8;

  private final double lr;
  private final double decay;
  private final double[][] m;
  private final double[][] v;
  private long t;

  Adam(double[][] params, double lr, double decay) {
    this.lr = lr;
    this.decay = decay;
    this.m = new double[params.length][];
    this.v = new double[params.length][];
    for (int p = 0; p < params.length; p++) {
      m[p] = new double[params[p].length];
      v[p] = new double[params[p].length];
    }
  }

  /** One update of {@code params} (in place) from {@code grads}, both in the same order. */
  void step(double[][] params, double[][] grads) {
    t++;
    double c1 = 1 - Math.pow(BETA1, t);
    double c2 = 1 - Math.pow(BETA2, t);
    for (int p = 0; p < params.length; p++) {
      double[] w = params[p];
      double[] g = grads[p];
      double[] mp = m[p];
      double[] vp = v[p];
      // decay only the weight matrices (even positions), not the biases, as is usual
      double wd = p % 2 == 0 ? decay : 0;
      for (int i = 0; i < w.length; i++) {
        mp[i] = BETA1 * mp[i] + (1 - BETA1) * g[i];
        vp[i] = BETA2 * vp[i] + (1 - BETA2) * g[i] * g[i];
        w[i] -= lr * ((mp[i] / c1) / (Math.sqrt(vp[i] / c2) + EPS) + wd * w[i]);
      }
    }
  }
}
