package io.probestream.contracts.onnx;

/** ONNX bytes that cannot be read, or that lack what a manifest names; the message says which. */
public final class OnnxFormatException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public OnnxFormatException(String message) {
    super(message);
  }

  public OnnxFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
