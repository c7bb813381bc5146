package io.probestream.trainer;

/**
 * Samples of a classification task: {@code rows} × {@code dims} float32 inputs, row-major, and one
 * class label per row. Immutable by convention: the arrays are never written after construction.
 *
 * @param inputs row-major inputs, never null
 * @param labels class of each row, 0..classes-1, never null
 * @param dims features per row, at least 1
 * @param classes number of classes, at least 2
 */
public record Dataset(float[] inputs, long[] labels, int dims, int classes) {
  public Dataset {
    if (dims < 1 || classes < 2 || inputs.length != labels.length * dims) {
      throw new IllegalArgumentException(
          "dataset of "
              + labels.length
              + " labels, "
              + inputs.length
              + " inputs, dims "
              + dims
              + ", classes "
              + classes
              + ": inputs must be labels × dims, dims ≥ 1, classes ≥ 2");
    }
  }

  /** Number of samples. */
  public int rows() {
    return labels.length;
  }

  /** Row {@code i} widened to float64 (the values are float32, as published). */
  public double[] row(int i) {
    double[] x = new double[dims];
    for (int j = 0; j < dims; j++) {
      x[j] = inputs[i * dims + j];
    }
    return x;
  }

  /** Rows {@code from} (inclusive) to {@code to} (exclusive) as a new dataset. */
  public Dataset slice(int from, int to) {
    float[] x = java.util.Arrays.copyOfRange(inputs, from * dims, to * dims);
    long[] y = java.util.Arrays.copyOfRange(labels, from, to);
    return new Dataset(x, y, dims, classes);
  }
}
