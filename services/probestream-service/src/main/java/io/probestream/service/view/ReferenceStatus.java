package io.probestream.service.view;

/**
 * Tells the experiments API whether an experiment's reference set is complete. Called on the HTTP
 * event loop, so an implementation must be thread-safe and must not block.
 */
@FunctionalInterface
public interface ReferenceStatus {
  /** Says {@code "unknown"} for every experiment, for a service that does not track the sets. */
  ReferenceStatus UNKNOWN = experiment -> "unknown";

  /**
   * {@code "complete"}, {@code "incomplete"} (batches arrived, the final one or an earlier index
   * still missing), {@code "none"} (no batch arrived) or {@code "unknown"}; never null.
   */
  String status(String experiment);
}
