package io.probestream.probes.complexity;

import io.probestream.probes.FeatureBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Pass-2 state of V-information over every probed layer (PROBES.md §2.4): per layer a {@link
 * VinfoMoments} for the even and one for the odd reference-set indices, none for a layer wider than
 * {@code max_width}, and the count of samples skipped because some probed layer was non-finite.
 * Immutable; {@link #merge} is exact and associative.
 */
public final class VinfoState {
  private final int[] widths;
  private final int classifierLayer;
  private final int k;
  private final int maxWidth;
  private final VinfoMoments[] even; // null where the layer is too wide
  private final VinfoMoments[] odd;
  private final long evenCount;
  private final long oddCount;
  private final long skipped;

  private VinfoState(
      int[] widths,
      int classifierLayer,
      int k,
      int maxWidth,
      VinfoMoments[] even,
      VinfoMoments[] odd,
      long evenCount,
      long oddCount,
      long skipped) {
    this.widths = widths;
    this.classifierLayer = classifierLayer;
    this.k = k;
    this.maxWidth = maxWidth;
    this.even = even;
    this.odd = odd;
    this.evenCount = evenCount;
    this.oddCount = oddCount;
    this.skipped = skipped;
  }

  /**
   * The state before any sample.
   *
   * @param widths width d_ℓ of every probed layer, in probe order
   * @param classifierLayer position in {@code widths} of the classifier-feeding layer
   */
  public static VinfoState empty(
      VinfoDirections directions, int[] widths, int classifierLayer, int maxWidth) {
    if (classifierLayer < 0 || classifierLayer >= widths.length) {
      throw new IllegalArgumentException(
          "classifier layer position " + classifierLayer + " is outside 0.." + widths.length);
    }
    if (widths[classifierLayer] != directions.width()) {
      throw new IllegalArgumentException(
          "directions are "
              + directions.width()
              + " wide but the classifier-feeding layer is "
              + widths[classifierLayer]
              + " wide");
    }
    int k = directions.count();
    VinfoMoments[] even = new VinfoMoments[widths.length];
    VinfoMoments[] odd = new VinfoMoments[widths.length];
    for (int l = 0; l < widths.length; l++) {
      if (widths[l] <= maxWidth) {
        even[l] = VinfoMoments.empty(widths[l], k);
        odd[l] = VinfoMoments.empty(widths[l], k);
      }
    }
    return new VinfoState(widths.clone(), classifierLayer, k, maxWidth, even, odd, 0, 0, 0);
  }

  /**
   * The moments of one batch of the same samples at every probed layer (same rows, same first
   * reference-set index). A sample enters only if every layer's row is finite (and the logits,
   * where a batch carries them); its half is the parity of its reference-set index.
   */
  public static VinfoState of(
      VinfoDirections directions, List<FeatureBatch> layers, int classifierLayer, int maxWidth) {
    int[] widths = new int[layers.size()];
    for (int l = 0; l < widths.length; l++) {
      widths[l] = layers.get(l).width();
    }
    VinfoState empty = empty(directions, widths, classifierLayer, maxWidth);
    FeatureBatch first = layers.get(0);
    for (FeatureBatch b : layers) {
      if (b.rows() != first.rows() || b.firstIndex() != first.firstIndex()) {
        throw new IllegalArgumentException(
            "layer batches disagree: "
                + b.rows()
                + " rows from index "
                + b.firstIndex()
                + " vs "
                + first.rows()
                + " rows from index "
                + first.firstIndex());
      }
    }
    int k = directions.count();
    FeatureBatch classifier = layers.get(classifierLayer);
    List<Integer> evenRows = new ArrayList<>();
    List<Integer> oddRows = new ArrayList<>();
    long skipped = 0;
    for (int i = 0; i < first.rows(); i++) {
      boolean ok = true;
      for (FeatureBatch b : layers) {
        ok &= b.finite(i);
      }
      if (!ok) {
        skipped++;
      } else if (((first.firstIndex() + i) & 1L) == 0) {
        evenRows.add(i);
      } else {
        oddRows.add(i);
      }
    }
    double[][] zEven = targets(directions, classifier, evenRows);
    double[][] zOdd = targets(directions, classifier, oddRows);
    VinfoMoments[] even = new VinfoMoments[widths.length];
    VinfoMoments[] odd = new VinfoMoments[widths.length];
    for (int l = 0; l < widths.length; l++) {
      if (empty.even[l] != null) {
        FeatureBatch b = layers.get(l);
        even[l] = VinfoMoments.of(widths[l], k, rows(b, evenRows), zEven);
        odd[l] = VinfoMoments.of(widths[l], k, rows(b, oddRows), zOdd);
      }
    }
    return new VinfoState(
        widths, classifierLayer, k, maxWidth, even, odd, evenRows.size(), oddRows.size(), skipped);
  }

  private static double[][] targets(
      VinfoDirections directions, FeatureBatch classifier, List<Integer> rows) {
    double[][] z = new double[rows.size()][directions.count()];
    for (int r = 0; r < z.length; r++) {
      directions.project(classifier.features(), rows.get(r) * classifier.width(), z[r]);
    }
    return z;
  }

  private static double[][] rows(FeatureBatch b, List<Integer> rows) {
    int d = b.width();
    double[][] x = new double[rows.size()][d];
    for (int r = 0; r < x.length; r++) {
      int base = rows.get(r) * d;
      for (int a = 0; a < d; a++) {
        x[r][a] = b.features()[base + a];
      }
    }
    return x;
  }

  /** The exact combination of both states (PROBES.md §0). */
  public VinfoState merge(VinfoState other) {
    if (!Arrays.equals(widths, other.widths)
        || classifierLayer != other.classifierLayer
        || k != other.k
        || maxWidth != other.maxWidth) {
      throw new IllegalArgumentException(
          "cannot merge vinfo states of different layers, directions or max_width");
    }
    VinfoMoments[] e = new VinfoMoments[widths.length];
    VinfoMoments[] o = new VinfoMoments[widths.length];
    for (int l = 0; l < widths.length; l++) {
      if (even[l] != null) {
        e[l] = even[l].merge(other.even[l]);
        o[l] = odd[l].merge(other.odd[l]);
      }
    }
    return new VinfoState(
        widths,
        classifierLayer,
        k,
        maxWidth,
        e,
        o,
        evenCount + other.evenCount,
        oddCount + other.oddCount,
        skipped + other.skipped);
  }

  /** Number of probed layers. */
  public int layers() {
    return widths.length;
  }

  public int width(int layer) {
    return widths[layer];
  }

  public int classifierLayer() {
    return classifierLayer;
  }

  /** Number of target directions k′. */
  public int directions() {
    return k;
  }

  public int maxWidth() {
    return maxWidth;
  }

  /** Even-half moments of a layer, or null when the layer is wider than {@code max_width}. */
  public VinfoMoments even(int layer) {
    return even[layer];
  }

  /** Odd-half moments of a layer, or null when the layer is wider than {@code max_width}. */
  public VinfoMoments odd(int layer) {
    return odd[layer];
  }

  /** Samples used with an even reference-set index. */
  public long evenCount() {
    return evenCount;
  }

  /** Samples used with an odd reference-set index. */
  public long oddCount() {
    return oddCount;
  }

  /** Samples left out because some probed layer's row (or the logits) was non-finite. */
  public long skipped() {
    return skipped;
  }

  /** Doubles held: Σ_ℓ 2·(d_ℓ² + d_ℓ·k′ + d_ℓ + 2k′) over layers within max_width. */
  long storedDoubles() {
    long s = 0;
    for (int l = 0; l < widths.length; l++) {
      if (even[l] != null) {
        s += even[l].storedDoubles() + odd[l].storedDoubles();
      }
    }
    return s;
  }
}
