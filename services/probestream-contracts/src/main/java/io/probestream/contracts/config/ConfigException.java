package io.probestream.contracts.config;

/** A configuration value that is missing, malformed or out of range; the message names the key. */
public final class ConfigException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }
}
