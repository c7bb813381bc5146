package io.probestream.inference;

import io.probestream.contracts.topics.DlqReason;

/**
 * A checkpoint that cannot be evaluated as given: a model ORT cannot load, an input that does not
 * match the model, a tensor that does not exist. Deterministic (poison, never retried); {@link
 * #reason} says why.
 */
public final class InferenceException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final DlqReason reason;

  public InferenceException(DlqReason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public InferenceException(DlqReason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  /** Why the checkpoint goes to the DLQ, e.g. {@link DlqReason#INPUT_MISMATCH}. */
  public DlqReason reason() {
    return reason;
  }
}
