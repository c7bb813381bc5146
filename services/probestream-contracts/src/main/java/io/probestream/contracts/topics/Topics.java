package io.probestream.contracts.topics;

import java.util.List;

/**
 * The one place topic names are built: {@code <prefix><name>} (DESIGN.md §3). Immutable.
 *
 * @param prefix prepended to every topic name, default {@code probestream.}
 */
public record Topics(String prefix) {
  public static final String DEFAULT_PREFIX = "probestream.";

  public Topics {
    if (prefix == null || !prefix.matches("[A-Za-z0-9._-]*")) {
      throw new IllegalArgumentException(
          "topic prefix '" + prefix + "' may hold only letters, digits, '.', '_' and '-'");
    }
  }

  public String checkpoints() {
    return prefix + "checkpoints";
  }

  public String blobs() {
    return prefix + "blobs";
  }

  public String batches() {
    return prefix + "batches";
  }

  public String results() {
    return prefix + "results";
  }

  public String dlq() {
    return prefix + "dlq";
  }

  public String state() {
    return prefix + "state";
  }

  /** The topics the service consumes, in one consumer so one experiment stays on one instance. */
  public List<String> inputs() {
    return List.of(checkpoints(), blobs(), batches());
  }

  /** Every topic the service creates when missing. */
  public List<String> all() {
    return List.of(checkpoints(), blobs(), batches(), results(), dlq(), state());
  }
}
