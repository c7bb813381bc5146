package io.probestream.service.record;

import io.probestream.contracts.topics.DlqReason;

/**
 * A record that can never be processed as it is: it goes to the dead-letter topic with {@link
 * #reason()} and is never retried. The message names the field, the value and the limit.
 */
public final class PoisonException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final DlqReason reason;

  public PoisonException(DlqReason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public PoisonException(DlqReason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public DlqReason reason() {
    return reason;
  }
}
