package io.probestream.inference;

/**
 * A checkpoint that cannot be evaluated as given: a model ORT cannot load, an input that does not
 * match the model, a tensor that does not exist. Deterministic (poison, never retried); {@link
 * #reason} is the lower-case DLQ code.
 */
public final class InferenceException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String reason;

  public InferenceException(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public InferenceException(String reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  /** The DLQ reason code, e.g. {@code input_mismatch}, {@code model_unloadable}. */
  public String reason() {
    return reason;
  }
}
