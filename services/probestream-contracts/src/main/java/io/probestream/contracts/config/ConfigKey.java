package io.probestream.contracts.config;

import java.util.Locale;

/**
 * One configuration key: its name ({@code probestream.<group>.<kebab-name>}), default (as text;
 * empty when there is none) and description. The environment variable and the flag derive from the
 * name. Immutable.
 */
public record ConfigKey(String name, String defaultValue, String description) {
  public ConfigKey {
    if (!name.matches("probestream\\.[a-z0-9-]+(\\.[a-z0-9-]+)*")) {
      throw new IllegalArgumentException(
          "config key '" + name + "' is not probestream.<group>.<name>");
    }
  }

  public static ConfigKey of(String name, String defaultValue, String description) {
    return new ConfigKey(name, defaultValue, description);
  }

  /** {@code PROBESTREAM_WORKERS_MAX_IN_FLIGHT} for {@code probestream.workers.max-in-flight}. */
  public String environmentVariable() {
    return name.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
  }

  /** {@code workers.max-in-flight} for {@code --set workers.max-in-flight=8}. */
  public String shortName() {
    return name.substring("probestream.".length());
  }
}
