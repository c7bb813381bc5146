package io.probestream.inference;

import io.probestream.contracts.topics.DlqReason;

/**
 * One batch of reference data: the model input (float32, row-major, {@code shape[0]} samples) and
 * one label per sample. Immutable by convention: arrays are never written after construction.
 */
public record ReferenceBatch(float[] input, long[] shape, int[] labels) {
  public ReferenceBatch {
    if (shape.length < 1) {
      throw new IllegalArgumentException("input shape needs a batch dimension");
    }
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("input shape has a negative dimension");
      }
      n *= d;
    }
    if (n != input.length) {
      throw new IllegalArgumentException(
          "input has " + input.length + " values but its shape holds " + n);
    }
    if (labels.length != shape[0]) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "labels has " + labels.length + " values but the input has " + shape[0] + " samples");
    }
  }

  public int rows() {
    return (int) shape[0];
  }

  /** Values per sample. */
  public int rowSize() {
    return rows() == 0 ? 0 : input.length / rows();
  }
}
