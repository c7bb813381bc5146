package io.probestream.probes;

/**
 * One batch of one layer's features, row-major float32 as the runtime produced them, with the
 * labels and (at the classifier-feeding layer) the logits of the same samples. Immutable by
 * convention: the arrays are owned by the batch and never written after construction.
 *
 * @param rows samples in the batch
 * @param width feature width d after the layer's reduction
 * @param features {@code rows * width} values, never null
 * @param labels {@code rows} class indices, never null
 * @param logits {@code rows * logitWidth} values, or null where the layer does not feed the
 *     classifier
 * @param logitWidth number of classifier outputs C, 0 when {@code logits} is null
 * @param firstIndex reference-set index of the first row, for deterministic ordering
 */
public record FeatureBatch(
    int rows,
    int width,
    float[] features,
    int[] labels,
    float[] logits,
    int logitWidth,
    long firstIndex) {

  public FeatureBatch {
    if (rows < 0 || width < 1) {
      throw new IllegalArgumentException("rows = " + rows + ", width = " + width);
    }
    if (features.length != (long) rows * width) {
      throw new IllegalArgumentException(
          "features has " + features.length + " values; expected rows*width = " + rows * width);
    }
    if (labels.length != rows) {
      throw new IllegalArgumentException(
          "labels has " + labels.length + " values; expected rows = " + rows);
    }
    if (logits != null && logits.length != (long) rows * logitWidth) {
      throw new IllegalArgumentException(
          "logits has "
              + logits.length
              + " values; expected rows*logitWidth = "
              + rows * logitWidth);
    }
  }

  /** A batch without logits. */
  public static FeatureBatch of(int rows, int width, float[] features, int[] labels) {
    return new FeatureBatch(rows, width, features, labels, null, 0, 0);
  }

  /**
   * True when row {@code i} may enter the statistics: its features (and logits, if present) are all
   * finite (PROBES.md §0, "Non-finite input").
   */
  public boolean finite(int i) {
    int base = i * width;
    for (int j = 0; j < width; j++) {
      if (!Float.isFinite(features[base + j])) {
        return false;
      }
    }
    if (logits != null) {
      int lb = i * logitWidth;
      for (int k = 0; k < logitWidth; k++) {
        if (!Float.isFinite(logits[lb + k])) {
          return false;
        }
      }
    }
    return true;
  }

  /** Lowest index of the largest logit of row {@code i}; ties go to the lowest index. */
  public int argmaxLogit(int i) {
    int lb = i * logitWidth;
    int best = 0;
    for (int k = 1; k < logitWidth; k++) {
      if (logits[lb + k] > logits[lb + best]) {
        best = k;
      }
    }
    return best;
  }
}
