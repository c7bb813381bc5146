package io.probestream.contracts.config;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Raw configuration text by key, layered defaults &lt; file &lt; environment &lt; flags. Each
 * config record takes its own keys; {@link #rejectUnknown()} then fails on any key nobody took.
 * Mutable; owned by the thread that loads the configuration.
 */
public final class ConfigSource {
  private static final String PREFIX = "probestream.";

  private final Map<String, String> explicit = new LinkedHashMap<>(); // file and flags
  private final Map<String, String> environment;
  private final Set<String> taken = new HashSet<>();
  private final List<ConfigKey> declared = new ArrayList<>();

  private ConfigSource(Map<String, String> environment) {
    this.environment = environment;
  }

  /**
   * Layers a properties file (or none), the process environment and flag values ({@code key=value},
   * the key with or without the {@code probestream.} prefix).
   */
  public static ConfigSource of(
      Path file, Map<String, String> environment, Map<String, String> flags) {
    ConfigSource s = new ConfigSource(environment);
    if (file != null) {
      Properties p = new Properties();
      try (Reader r = Files.newBufferedReader(file)) {
        p.load(r);
      } catch (NoSuchFileException e) {
        throw new ConfigException("config file " + file + " does not exist");
      } catch (IOException e) {
        throw new ConfigException("config file " + file + " cannot be read: " + e.getMessage());
      }
      for (String k : p.stringPropertyNames()) {
        s.explicit.put(qualify(k), p.getProperty(k).trim());
      }
    }
    flags.forEach((k, v) -> s.explicit.put(qualify(k), v.trim()));
    return s;
  }

  private static String qualify(String key) {
    String k = key.trim();
    return k.startsWith(PREFIX) ? k : PREFIX + k;
  }

  /** The value for {@code key}: flag or file, else environment, else its default. */
  public String take(ConfigKey key) {
    declared.add(key);
    taken.add(key.name());
    String v = explicit.get(key.name());
    if (v == null) {
      v = environment.get(key.environmentVariable());
    }
    return v == null ? key.defaultValue() : v.trim();
  }

  public int takeInt(ConfigKey key, int min, int max) {
    long v = takeLong(key, min, max);
    return (int) v;
  }

  public long takeLong(ConfigKey key, long min, long max) {
    String text = take(key);
    long v;
    try {
      v = Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new ConfigException(key.name() + " = '" + text + "': must be an integer");
    }
    if (v < min || v > max) {
      throw new ConfigException(key.name() + " = " + v + ": must be " + min + ".." + max);
    }
    return v;
  }

  /** A finite decimal number in [min, max]. */
  public double takeDouble(ConfigKey key, double min, double max) {
    String text = take(key);
    double v;
    try {
      v = Double.parseDouble(text);
    } catch (NumberFormatException e) {
      throw new ConfigException(key.name() + " = '" + text + "': must be a number");
    }
    if (!Double.isFinite(v) || v < min || v > max) {
      throw new ConfigException(key.name() + " = " + text + ": must be " + min + ".." + max);
    }
    return v;
  }

  public boolean takeBoolean(ConfigKey key) {
    String text = take(key);
    if (text.equalsIgnoreCase("true")) {
      return true;
    }
    if (text.equalsIgnoreCase("false")) {
      return false;
    }
    throw new ConfigException(key.name() + " = '" + text + "': must be true or false");
  }

  /** A comma-separated list; empty text is the empty list. */
  public List<String> takeList(ConfigKey key) {
    String text = take(key);
    List<String> out = new ArrayList<>();
    for (String part : text.split(",")) {
      if (!part.isBlank()) {
        out.add(part.trim());
      }
    }
    return out;
  }

  /** Fails on the first file or flag key that no record took, suggesting the nearest one. */
  public void rejectUnknown() {
    for (String k : explicit.keySet()) {
      if (!taken.contains(k)) {
        String hint = nearest(k);
        throw new ConfigException(
            k + ": unknown key" + (hint == null ? "" : "; did you mean " + hint + "?"));
      }
    }
  }

  private String nearest(String key) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (ConfigKey k : declared) {
      int d = distance(key, k.name());
      if (d < bestDistance) {
        bestDistance = d;
        best = k.name();
      }
    }
    return bestDistance <= Math.max(3, key.length() / 4) ? best : null;
  }

  private static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }

  @Override
  public String toString() {
    return "ConfigSource" + Arrays.toString(explicit.keySet().toArray());
  }
}
