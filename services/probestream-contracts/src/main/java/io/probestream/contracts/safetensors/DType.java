package io.probestream.contracts.safetensors;

import java.util.Arrays;

/** The safetensors element types Probestream reads and writes, with their byte widths. */
public enum DType {
  F32(4),
  F64(8),
  I64(8),
  I32(4);

  private final int bytes;

  DType(int bytes) {
    this.bytes = bytes;
  }

  public int bytes() {
    return bytes;
  }

  public boolean isFloat() {
    return this == F32 || this == F64;
  }

  /** The type named in a header, or an error that lists the supported ones. */
  static DType parse(String name, String tensor) {
    for (DType t : values()) {
      if (t.name().equals(name)) {
        return t;
      }
    }
    throw new SafetensorsException(
        "tensor '"
            + tensor
            + "' has dtype '"
            + name
            + "'; supported: "
            + Arrays.toString(values()));
  }
}
