package io.probestream.service.view;

/**
 * Which of an experiment's results to return, and which page of them. Immutable; a null filter
 * matches everything, and a run or layer filter never matches an experiment-wide result (whose run
 * and layer are null).
 *
 * @param run the run to keep, or null for all
 * @param probe the probe to keep, or null for all
 * @param layer the layer to keep, or null for all
 * @param split the split to keep, or null for all
 * @param stepMin the lowest step to keep, inclusive
 * @param stepMax the highest step to keep, inclusive
 * @param offset matching results to skip, at least 0
 * @param limit most results to return, at least 1
 */
public record ResultQuery(
    String run,
    String probe,
    String layer,
    String split,
    long stepMin,
    long stepMax,
    int offset,
    int limit) {

  public ResultQuery {
    if (offset < 0 || limit < 1) {
      throw new IllegalArgumentException(
          "offset = " + offset + ", limit = " + limit + ": need offset >= 0 and limit >= 1");
    }
  }

  /** Every result, in pages of {@code limit} from {@code offset}. */
  public static ResultQuery all(int offset, int limit) {
    return new ResultQuery(null, null, null, null, 0, Long.MAX_VALUE, offset, limit);
  }

  boolean matches(StoredResult r) {
    return r.step() >= stepMin
        && r.step() <= stepMax
        && (run == null || run.equals(r.run()))
        && (probe == null || probe.equals(r.probe()))
        && (layer == null || layer.equals(r.layer()))
        && (split == null || split.equals(r.split()));
  }
}
