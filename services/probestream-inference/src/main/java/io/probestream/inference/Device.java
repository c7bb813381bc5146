package io.probestream.inference;

import java.util.Locale;

/**
 * Where ONNX Runtime runs: {@code auto} (CUDA when the GPU build is present and a device answers,
 * else CPU), {@code cpu}, or {@code cuda[:N]}. Immutable.
 */
public record Device(Kind kind, int ordinal) {
  /** The three device requests. */
  public enum Kind {
    AUTO,
    CPU,
    CUDA
  }

  public static final Device AUTO = new Device(Kind.AUTO, 0);
  public static final Device CPU = new Device(Kind.CPU, 0);

  /** Parses {@code auto}, {@code cpu}, {@code cuda} or {@code cuda:N}. */
  public static Device parse(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    if (t.equals("auto")) {
      return AUTO;
    }
    if (t.equals("cpu")) {
      return CPU;
    }
    if (t.equals("cuda")) {
      return new Device(Kind.CUDA, 0);
    }
    if (t.startsWith("cuda:")) {
      try {
        int n = Integer.parseInt(t.substring(5));
        if (n >= 0) {
          return new Device(Kind.CUDA, n);
        }
      } catch (NumberFormatException e) {
        // fall through to the error below
      }
    }
    throw new IllegalArgumentException(
        "device = '" + text + "': expected auto, cpu, cuda or cuda:N (N ≥ 0)");
  }

  @Override
  public String toString() {
    return switch (kind) {
      case AUTO -> "auto";
      case CPU -> "cpu";
      case CUDA -> "cuda:" + ordinal;
    };
  }
}
