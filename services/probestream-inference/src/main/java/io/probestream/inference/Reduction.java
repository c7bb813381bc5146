package io.probestream.inference;

import java.util.Locale;

/**
 * How a feature tensor of rank above 2 becomes one vector per sample (PROBES.md §0): global average
 * pooling over every axis after the channel axis, or row-major flattening. A 2-D tensor is used as
 * it is and reported as {@code none}.
 */
public enum Reduction {
  GAP,
  FLATTEN;

  public static Reduction parse(String text) {
    try {
      return valueOf(text.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("reduction = '" + text + "': expected gap or flatten", e);
    }
  }

  /** The name written in a result's {@code params.reduction} for a tensor of this rank. */
  public String label(int rank) {
    return rank <= 2 ? "none" : name().toLowerCase(Locale.ROOT);
  }

  /** Feature width d of a tensor of this shape (batch dimension first). */
  public int width(long[] shape) {
    if (shape.length <= 1) {
      return 1;
    }
    if (shape.length == 2 || this == GAP) {
      return Math.toIntExact(shape[1]);
    }
    long w = 1;
    for (int a = 1; a < shape.length; a++) {
      w *= shape[a];
    }
    return Math.toIntExact(w);
  }

  /** Reduces {@code values} (row-major, {@code shape}) to rows × width float32 features. */
  public float[] apply(float[] values, long[] shape) {
    if (shape.length <= 2 || this == FLATTEN) {
      return values;
    }
    int rows = (int) shape[0];
    int channels = (int) shape[1];
    int spatial = values.length / (rows * channels);
    float[] out = new float[rows * channels];
    for (int i = 0; i < rows * channels; i++) {
      double s = 0; // float64 sum, then one rounding to float32
      int base = i * spatial;
      for (int k = 0; k < spatial; k++) {
        s += values[base + k];
      }
      out[i] = (float) (s / spatial);
    }
    return out;
  }
}
