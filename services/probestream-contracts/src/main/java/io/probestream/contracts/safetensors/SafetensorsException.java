package io.probestream.contracts.safetensors;

/** A safetensors payload that is malformed or unsupported; the message names what and where. */
public final class SafetensorsException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public SafetensorsException(String message) {
    super(message);
  }

  public SafetensorsException(String message, Throwable cause) {
    super(message, cause);
  }
}
