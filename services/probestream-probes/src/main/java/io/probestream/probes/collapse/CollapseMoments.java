package io.probestream.probes.collapse;

import io.probestream.probes.FeatureBatch;
import java.util.Collections;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Pass-1 state of {@code neural_collapse} for one layer and split: per seen class its {@link
 * ClassMoments}, plus the count of samples dropped as non-finite. Immutable; {@link #merge} is
 * exact and associative, so batches and instances may be combined in any order.
 */
public final class CollapseMoments {
  private final int width;
  private final SortedMap<Integer, ClassMoments> classes; // keyed by class index, ascending
  private final long nonfinite;

  private CollapseMoments(int width, SortedMap<Integer, ClassMoments> classes, long nonfinite) {
    this.width = width;
    this.classes = Collections.unmodifiableSortedMap(classes);
    this.nonfinite = nonfinite;
  }

  /** The state before any sample. */
  public static CollapseMoments empty(int width) {
    return new CollapseMoments(width, new TreeMap<>(), 0);
  }

  /**
   * Moments of one batch: rows with a non-finite feature (or logit, when the batch carries logits)
   * are counted and left out (PROBES.md §0). Two passes over the batch, so the batch-local scatter
   * is exact before it is merged.
   */
  public static CollapseMoments of(FeatureBatch batch) {
    int d = batch.width();
    float[] h = batch.features();
    TreeMap<Integer, long[]> counts = new TreeMap<>();
    TreeMap<Integer, double[]> sums = new TreeMap<>();
    boolean[] used = new boolean[batch.rows()];
    long nonfinite = 0;
    for (int i = 0; i < batch.rows(); i++) {
      if (!batch.finite(i)) {
        nonfinite++;
        continue;
      }
      used[i] = true;
      int c = batch.labels()[i];
      counts.computeIfAbsent(c, k -> new long[1])[0]++;
      double[] s = sums.computeIfAbsent(c, k -> new double[d]);
      int base = i * d;
      for (int j = 0; j < d; j++) {
        s[j] += h[base + j];
      }
    }
    TreeMap<Integer, double[]> means = new TreeMap<>();
    for (Map.Entry<Integer, double[]> e : sums.entrySet()) {
      double n = counts.get(e.getKey())[0];
      double[] m = e.getValue();
      for (int j = 0; j < d; j++) {
        m[j] /= n;
      }
      means.put(e.getKey(), m);
    }
    TreeMap<Integer, double[]> scatter = new TreeMap<>();
    for (int i = 0; i < batch.rows(); i++) {
      if (!used[i]) {
        continue;
      }
      int c = batch.labels()[i];
      double[] m = means.get(c);
      int base = i * d;
      double s = 0;
      for (int j = 0; j < d; j++) {
        double t = h[base + j] - m[j];
        s += t * t;
      }
      scatter.computeIfAbsent(c, k -> new double[1])[0] += s;
    }
    TreeMap<Integer, ClassMoments> classes = new TreeMap<>();
    for (Map.Entry<Integer, double[]> e : means.entrySet()) {
      int c = e.getKey();
      classes.put(c, new ClassMoments(counts.get(c)[0], e.getValue(), scatter.get(c)[0]));
    }
    return new CollapseMoments(d, classes, nonfinite);
  }

  /**
   * A batch's moments from per-class statistics computed elsewhere (in-graph on the device):
   * counts, class means and scatter around them, indexed by class; classes with count 0 are left
   * out.
   */
  public static CollapseMoments fromClassStats(
      int width, long[] counts, double[][] means, double[] scatter, long nonfinite) {
    TreeMap<Integer, ClassMoments> classes = new TreeMap<>();
    for (int c = 0; c < counts.length; c++) {
      if (counts[c] > 0) {
        classes.put(c, new ClassMoments(counts[c], means[c].clone(), Math.max(0, scatter[c])));
      }
    }
    return new CollapseMoments(width, classes, nonfinite);
  }

  /** The exact combination of both states (PROBES.md §0). */
  public CollapseMoments merge(CollapseMoments other) {
    if (other.width != width) {
      throw new IllegalArgumentException(
          "cannot merge neural_collapse states of width " + width + " and " + other.width);
    }
    TreeMap<Integer, ClassMoments> merged = new TreeMap<>(classes);
    other.classes.forEach((c, m) -> merged.merge(c, m, ClassMoments::merge));
    return new CollapseMoments(width, merged, nonfinite + other.nonfinite);
  }

  public int width() {
    return width;
  }

  /** Seen classes in ascending class order; never null. */
  public SortedMap<Integer, ClassMoments> classes() {
    return classes;
  }

  public long nonfinite() {
    return nonfinite;
  }

  /** Samples that entered the statistics. */
  public long samples() {
    long n = 0;
    for (ClassMoments m : classes.values()) {
      n += m.count();
    }
    return n;
  }
}
