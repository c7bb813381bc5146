package io.probestream.contracts.checkpoint;

/** A checkpoint manifest that breaks the contract; the message names the field and the rule. */
public final class ManifestException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public ManifestException(String message) {
    super(message);
  }

  public ManifestException(String message, Throwable cause) {
    super(message, cause);
  }
}
