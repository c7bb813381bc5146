package io.probestream.service.view;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The reference-set status of every experiment, written by the intake's event loop as batches
 * arrive and sets complete, read by the HTTP event loop. Thread-safe; never blocks.
 */
public final class ReferenceBoard implements ReferenceStatus {
  private final Map<String, String> status = new ConcurrentHashMap<>();

  /** Batches of the experiment's set arrived; the set is not complete yet. */
  public void incomplete(String experiment) {
    status.putIfAbsent(experiment, "incomplete");
  }

  /** The experiment's set is complete. */
  public void complete(String experiment) {
    status.put(experiment, "complete");
  }

  /** The experiment was removed. */
  public void forget(String experiment) {
    status.remove(experiment);
  }

  @Override
  public String status(String experiment) {
    return status.getOrDefault(experiment, "none");
  }
}
