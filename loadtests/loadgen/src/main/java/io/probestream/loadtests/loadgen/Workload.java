package io.probestream.loadtests.loadgen;

import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.trainer.OnnxExport;
import io.probestream.trainer.ReluMlp;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The synthetic data and models of a job: K Gaussian classes in d dimensions (class centre N(0, 1)
 * per coordinate, per-sample noise N(0, 0.5²)), labels cycling through the classes, and He
 * initialised ReLU MLPs exported to ONNX by the simulated trainer's writer. Deterministic in the
 * seed. Stateless apart from the class centres.
 */
final class Workload {
  private final int[] widths;
  private final float[][] centres;
  private final long seed;

  Workload(int[] widths, long seed) {
    this.widths = widths.clone();
    this.seed = seed;
    SplittableRandom rnd = new SplittableRandom(seed);
    int d = widths[0];
    int k = widths[widths.length - 1];
    centres = new float[k][d];
    for (float[] c : centres) {
      for (int j = 0; j < d; j++) {
        c[j] = (float) gaussian(rnd);
      }
    }
  }

  /**
   * Rows {@code rows} samples as a safetensors batch: {@code input} [rows, d] and {@code labels}.
   */
  byte[] batch(int rows, long batchSeed) {
    int d = widths[0];
    int k = centres.length;
    SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + batchSeed);
    float[] x = new float[rows * d];
    long[] labels = new long[rows];
    for (int i = 0; i < rows; i++) {
      int y = (int) ((batchSeed + i) % k);
      labels[i] = y;
      for (int j = 0; j < d; j++) {
        x[i * d + j] = centres[y][j] + 0.5f * (float) gaussian(rnd);
      }
    }
    Map<String, Object> t = new LinkedHashMap<>();
    t.put("input", x);
    t.put("labels", labels);
    Map<String, long[]> s = new LinkedHashMap<>();
    s.put("input", new long[] {rows, d});
    s.put("labels", new long[] {rows});
    return Safetensors.write(t, s);
  }

  /** A fresh He-initialised MLP of the job's widths, as ONNX bytes. */
  byte[] model(long modelSeed) {
    return OnnxExport.toOnnx(ReluMlp.init(new SplittableRandom(seed * 7_919L + modelSeed), widths));
  }

  private static double gaussian(SplittableRandom rnd) {
    double u = 1.0 - rnd.nextDouble();
    double v = rnd.nextDouble();
    return Math.sqrt(-2.0 * Math.log(u)) * Math.cos(2.0 * Math.PI * v);
  }
}
