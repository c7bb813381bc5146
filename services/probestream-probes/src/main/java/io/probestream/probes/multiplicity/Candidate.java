package io.probestream.probes.multiplicity;

import java.io.DataInput;
import java.io.DataOutput;
import java.io.IOException;
import java.util.Comparator;

/**
 * One checkpoint of an experiment as predictive multiplicity sees it (PROBES.md §3.1): who it is,
 * its class probabilities on the reference set (float32, N × K, row-major) and its mean reference
 * cross-entropy L (float64 from the logits). Immutable; the probabilities array is owned, never
 * written after construction.
 *
 * @param probs N × K probabilities, or null when the logits were non-finite somewhere
 * @param loss L_m, or NaN when not finite
 */
public record Candidate(
    String run,
    long step,
    String modelSha256,
    int samples,
    int classes,
    float[] probs,
    double loss) {

  /** Canonical order: ascending (step, run, model sha256). */
  public static final Comparator<Candidate> CANONICAL =
      Comparator.comparingLong(Candidate::step)
          .thenComparing(Candidate::run)
          .thenComparing(c -> c.modelSha256() == null ? "" : c.modelSha256());

  public Candidate {
    if (run == null || run.isBlank()) {
      throw new IllegalArgumentException("a candidate needs a run id");
    }
    if (probs != null && probs.length != (long) samples * classes) {
      throw new IllegalArgumentException(
          "probs has " + probs.length + " values; expected N·K = " + (long) samples * classes);
    }
  }

  /** Whether its logits were finite on the whole reference set (PROBES.md §0). */
  public boolean finite() {
    return probs != null;
  }

  /**
   * From the logits on the reference set (N × cols, row-major): softmax and log-softmax in float64
   * with max subtraction; one column (binary) becomes z = (0, z), K = 2.
   *
   * @param labels y_i, each in 0..K−1
   */
  public static Candidate ofLogits(
      String run, long step, String modelSha256, float[] logits, int cols, int[] labels) {
    if (cols < 1 || logits.length % cols != 0) {
      throw new IllegalArgumentException(
          logits.length + " logits do not divide into rows of " + cols + " columns");
    }
    int n = logits.length / cols;
    if (labels.length != n) {
      throw new IllegalArgumentException(labels.length + " labels for " + n + " samples");
    }
    int k = cols == 1 ? 2 : cols;
    for (float v : logits) {
      if (!Float.isFinite(v)) {
        return new Candidate(run, step, modelSha256, n, k, null, Double.NaN);
      }
    }
    float[] probs = new float[n * k];
    double[] z = new double[k];
    double lossSum = 0;
    for (int i = 0; i < n; i++) {
      if (cols == 1) {
        z[0] = 0;
        z[1] = logits[i];
      } else {
        for (int c = 0; c < k; c++) {
          z[c] = logits[i * cols + c];
        }
      }
      double max = Double.NEGATIVE_INFINITY;
      for (double v : z) {
        max = Math.max(max, v);
      }
      double sum = 0;
      for (int c = 0; c < k; c++) {
        sum += Math.exp(z[c] - max);
      }
      double logSum = Math.log(sum);
      int y = labels[i];
      if (y < 0 || y >= k) {
        throw new IllegalArgumentException(
            "label " + y + " at reference index " + i + " is outside 0.." + (k - 1));
      }
      lossSum -= z[y] - max - logSum;
      for (int c = 0; c < k; c++) {
        probs[i * k + c] = (float) Math.exp(z[c] - max - logSum);
      }
    }
    return new Candidate(run, step, modelSha256, n, k, probs, lossSum / n);
  }

  /** Writes this candidate (for the experiment state's snapshot). */
  void write(DataOutput out) throws IOException {
    out.writeUTF(run);
    out.writeLong(step);
    out.writeUTF(modelSha256 == null ? "" : modelSha256);
    out.writeInt(samples);
    out.writeInt(classes);
    out.writeDouble(loss);
    out.writeBoolean(probs != null);
    if (probs != null) {
      for (float p : probs) {
        out.writeFloat(p);
      }
    }
  }

  static Candidate read(DataInput in) throws IOException {
    String run = in.readUTF();
    long step = in.readLong();
    String sha = in.readUTF();
    int n = in.readInt();
    int k = in.readInt();
    double loss = in.readDouble();
    float[] probs = null;
    if (in.readBoolean()) {
      if ((long) n * k > Integer.MAX_VALUE - 8 || n < 0 || k < 0) {
        throw new IOException("candidate of " + n + " × " + k + " probabilities is too large");
      }
      probs = new float[n * k];
      for (int i = 0; i < probs.length; i++) {
        probs[i] = in.readFloat();
      }
    }
    return new Candidate(run, step, sha.isEmpty() ? null : sha, n, k, probs, loss);
  }
}
