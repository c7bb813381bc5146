package io.probestream.probes.complexity;

import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code feature_complexity} probe of PROBES.md §2 over one checkpoint's probed layers: IFM
 * from the weights before any data, then pass 1 (effective-rank scatter, data-aware IFM sums), then
 * pass 2 (V-information moments against the directions pass 1 fixed), then {@link #finish()}. Not
 * thread-safe: one evaluation feeds it from one thread. Its state does not grow with the number of
 * samples; {@link #stateBytes} says how large it is.
 */
public final class FeatureComplexity {
  public static final String NAME = "feature_complexity";

  /**
   * The settings of PROBES.md §0 that this probe uses.
   *
   * @param beta IFM stop rule, ≥ 0
   * @param tau data-aware IFM tolerance, ≥ 0
   * @param k V-information directions, ≥ 1
   * @param alpha ridge strength, > 0
   * @param maxWidth widest layer that gets a d×d state (effective rank, V-information)
   * @param ifmDataMaxUnits widest layer that gets data-aware IFM
   */
  public record Settings(
      double beta, double tau, int k, double alpha, int maxWidth, int ifmDataMaxUnits) {
    public static final double DEFAULT_BETA = 0.1;
    public static final double DEFAULT_TAU = 0.01;
    public static final int DEFAULT_IFM_DATA_MAX_UNITS = 1024;

    public Settings {
      if (!(beta >= 0) || !Double.isFinite(beta)) {
        throw new IllegalArgumentException("beta = " + beta + ": must be a finite number ≥ 0");
      }
      if (!(tau >= 0) || !Double.isFinite(tau)) {
        throw new IllegalArgumentException("tau = " + tau + ": must be a finite number ≥ 0");
      }
      if (k < 1) {
        throw new IllegalArgumentException("k = " + k + ": must be at least 1");
      }
      if (!(alpha > 0) || !Double.isFinite(alpha)) {
        throw new IllegalArgumentException("alpha = " + alpha + ": must be positive and finite");
      }
      if (maxWidth < 1 || ifmDataMaxUnits < 1) {
        throw new IllegalArgumentException("max_width and ifm_data_max_units must be at least 1");
      }
    }

    /** The defaults of PROBES.md §0. */
    public static Settings defaults() {
      return new Settings(
          DEFAULT_BETA,
          DEFAULT_TAU,
          VinfoDirections.DEFAULT_K,
          VinfoProbe.DEFAULT_ALPHA,
          EffectiveRank.DEFAULT_MAX_WIDTH,
          DEFAULT_IFM_DATA_MAX_UNITS);
    }

    /** The result's {@code params} (PROBES.md §2). */
    public Map<String, Object> params() {
      Map<String, Object> p = new LinkedHashMap<>();
      p.put("beta", beta);
      p.put("tau", tau);
      p.put("k", k);
      p.put("alpha", alpha);
      return p;
    }
  }

  /**
   * IFM of one layer from its weights (PROBES.md §2.1), and what data-aware IFM (§2.2) needs:
   * {@code units} is null when {@code note} says why; {@code dataAware} is null when {@code
   * dataNote} says why (or when {@code units} is null). Immutable.
   */
  public record LayerIfm(
      Integer units, int n0, String note, DataAwareIfm dataAware, String dataNote) {

    /** A layer whose weights IFM cannot take ({@code why} says what was found). */
    public static LayerIfm unsupported(String why) {
      return new LayerIfm(null, 0, "ifm: unsupported pattern (" + why + ")", null, null);
    }

    /**
     * Runs the merge loop: the whole order when data-aware IFM applies ({@code dataRefusal} null
     * and n0 ≤ {@code ifm_data_max_units}), else only up to the first step beta refuses.
     *
     * @param dataRefusal why data-aware IFM cannot run on this layer whatever its width (e.g. a
     *     convolution), or null
     * @param slope the activation's slope below 0 (0 for ReLU, alpha for LeakyRelu)
     */
    public static LayerIfm of(IfmLayer layer, Settings settings, String dataRefusal, double slope) {
      int n0 = layer.units();
      String dataNote = dataRefusal;
      if (dataNote == null && n0 > settings.ifmDataMaxUnits()) {
        dataNote =
            "ifm_data: " + n0 + " units exceed ifm_data_max_units = " + settings.ifmDataMaxUnits();
      }
      MergeSequence sequence =
          dataNote == null
              ? IterativeFeatureMerging.mergeSequence(layer)
              : IterativeFeatureMerging.mergeSequence(layer, settings.beta());
      if (sequence == null) {
        return new LayerIfm(null, n0, IterativeFeatureMerging.NOTE_NONFINITE, null, null);
      }
      int units = IterativeFeatureMerging.units(sequence, settings.beta());
      DataAwareIfm data = dataNote == null ? new DataAwareIfm(layer, sequence, slope) : null;
      return new LayerIfm(units, n0, null, data, dataNote);
    }
  }

  private final List<String> layers;
  private final int classifier; // position of the classifier-feeding layer, or -1
  private final String classifierMissing; // why vinfo cannot run when classifier is -1
  private final Settings settings;
  private final String spectralRefusal; // why no layer gets a d×d state, or null
  private final Map<String, LayerIfm> ifm;

  private final int[] widths;
  private final long[] samples;
  private final long[] nonfinite;
  private final ScatterMoments[] scatter;
  private final IfmDataMoments[] data;
  private VinfoDirections directions;
  private VinfoState vinfo;
  private String failure; // set by fail(): every key null with this note

  /**
   * @param layers probed layer names, in probe order
   * @param classifierLayer the probed layer that feeds the classifier, or null
   * @param classifierMissing why there is none (a note), when {@code classifierLayer} is null
   * @param ifm IFM of each layer (every probed layer has an entry)
   * @param spectralRefusal why no layer may hold a d×d state (the state budget), or null
   */
  public FeatureComplexity(
      List<String> layers,
      String classifierLayer,
      String classifierMissing,
      Map<String, LayerIfm> ifm,
      Settings settings,
      String spectralRefusal) {
    this.layers = List.copyOf(layers);
    this.classifier = classifierLayer == null ? -1 : this.layers.indexOf(classifierLayer);
    if (classifierLayer != null && classifier < 0) {
      throw new IllegalArgumentException(
          "classifier-feeding layer " + classifierLayer + " is not among " + layers);
    }
    this.classifierMissing = classifierMissing;
    this.settings = settings;
    this.spectralRefusal = spectralRefusal;
    for (String l : layers) {
      if (!ifm.containsKey(l)) {
        throw new IllegalArgumentException("no ifm result for layer " + l);
      }
    }
    this.ifm = Map.copyOf(ifm);
    int n = this.layers.size();
    widths = new int[n];
    samples = new long[n];
    nonfinite = new long[n];
    scatter = new ScatterMoments[n];
    data = new IfmDataMoments[n];
  }

  /**
   * Doubles' bytes of the d×d states for these widths: per layer within {@code max_width} the
   * scatter (d² + d) and V-information's two halves (2·(d² + d·k + d + 2k)).
   */
  public static long stateBytes(Iterable<Integer> widths, Settings settings) {
    long doubles = 0;
    long k = settings.k();
    for (int d : widths) {
      if (d <= settings.maxWidth()) {
        long w = d;
        doubles += w * w + w + 2 * (w * w + w * k + w + 2 * k);
      }
    }
    return 8 * doubles;
  }

  /** The layers that need their input (the producer's input) in pass 1 for data-aware IFM. */
  public List<String> dataAwareLayers() {
    List<String> out = new ArrayList<>();
    for (String l : layers) {
      if (ifm.get(l).dataAware() != null) {
        out.add(l);
      }
    }
    return out;
  }

  /**
   * Pass 1 on one mini-batch.
   *
   * @param features every probed layer's features for the same samples
   * @param inputs for each layer of {@link #dataAwareLayers()}, its input rows (rows × d_in)
   */
  public void pass1(Map<String, FeatureBatch> features, Map<String, float[]> inputs) {
    for (int l = 0; l < layers.size(); l++) {
      FeatureBatch b = features.get(layers.get(l));
      widths[l] = b.width();
      if (tracksScatter(l)) {
        ScatterMoments m = ScatterMoments.of(b);
        scatter[l] = scatter[l] == null ? m : scatter[l].merge(m);
        samples[l] = scatter[l].count();
        nonfinite[l] = scatter[l].nonfinite();
      } else {
        for (int i = 0; i < b.rows(); i++) {
          if (b.finite(i)) {
            samples[l]++;
          } else {
            nonfinite[l]++;
          }
        }
      }
      DataAwareIfm d = ifm.get(layers.get(l)).dataAware();
      if (d != null) {
        float[] x = inputs.get(layers.get(l));
        if (x == null) {
          throw new IllegalArgumentException("no input rows for layer " + layers.get(l));
        }
        IfmDataMoments m = d.moments(x, b.rows());
        data[l] = data[l] == null ? m : data[l].merge(m);
      }
    }
  }

  private boolean tracksScatter(int l) {
    return spectralRefusal == null && widths[l] <= settings.maxWidth();
  }

  /**
   * Ends pass 1: fixes the V-information directions. True when pass 2 must see the features again.
   */
  public boolean endPass1() {
    if (classifier < 0 || spectralRefusal != null || scatter[classifier] == null) {
      return false;
    }
    directions = VinfoDirections.of(scatter[classifier], settings.k());
    vinfo = VinfoState.empty(directions, widths, classifier, settings.maxWidth());
    return directions.count() > 0;
  }

  /** Pass 2 on one mini-batch: every probed layer's features for the same samples. */
  public void pass2(Map<String, FeatureBatch> features) {
    if (vinfo == null) {
      throw new IllegalStateException("pass 2 before endPass1() asked for it");
    }
    List<FeatureBatch> batches = new ArrayList<>(layers.size());
    for (String l : layers) {
      batches.add(features.get(l));
    }
    vinfo = vinfo.merge(VinfoState.of(directions, batches, classifier, settings.maxWidth()));
  }

  /**
   * Gives up: {@link #finish()} then reports every key null with {@code note} (the caller's reason,
   * e.g. an unexpected failure), and pass 1 and 2 are no longer needed.
   */
  public void fail(String note) {
    failure = note;
  }

  /** Whether {@link #fail(String)} was called. */
  public boolean failed() {
    return failure != null;
  }

  /** One result per probed layer, in probe order (PROBES.md §2 keys). */
  public Map<String, ProbeOutput> finish() {
    if (failure != null) {
      Map<String, ProbeOutput> out = new LinkedHashMap<>();
      for (int l = 0; l < layers.size(); l++) {
        Map<String, Double> m = new LinkedHashMap<>();
        for (String key :
            List.of(
                "ifm_units",
                "ifm_ratio",
                "ifm_data_units",
                "ifm_data_ratio",
                EffectiveRank.NAME,
                "vinfo_r2")) {
          m.put(key, null);
        }
        if (l == classifier) {
          m.put("vinfo_complexity", null);
          m.put("vinfo_directions", null);
        }
        m.put("width", (double) widths[l]);
        m.put("samples", (double) samples[l]);
        m.put("nonfinite", (double) nonfinite[l]);
        out.put(layers.get(l), new ProbeOutput(m, settings.params(), List.of(failure)));
      }
      return out;
    }
    VinfoProbe.Result v = null;
    List<String> vinfoNotes = new ArrayList<>();
    if (spectralRefusal != null) {
      vinfoNotes.add(spectralRefusal);
    } else if (classifier < 0) {
      vinfoNotes.add("vinfo: " + classifierMissing);
    } else if (vinfo == null) {
      vinfoNotes.add(
          widths[classifier] > settings.maxWidth()
              ? VinfoProbe.classifierTooWide(layers.size(), widths[classifier], settings.maxWidth())
                  .notes()
                  .get(0)
              : "vinfo: no finite sample at the classifier-feeding layer");
    } else {
      v = VinfoProbe.finish(vinfo, settings.alpha(), layers);
      vinfoNotes.addAll(v.notes());
    }
    Map<String, ProbeOutput> out = new LinkedHashMap<>();
    for (int l = 0; l < layers.size(); l++) {
      String name = layers.get(l);
      Map<String, Double> m = new LinkedHashMap<>();
      List<String> notes = new ArrayList<>();
      LayerIfm f = ifm.get(name);
      m.put("ifm_units", f.units() == null ? null : (double) f.units());
      m.put("ifm_ratio", f.units() == null ? null : (double) f.units() / f.n0());
      if (f.note() != null) {
        notes.add(f.note());
      }
      Integer dataUnits = null;
      Double dataRatio = null;
      if (f.dataAware() != null) {
        IfmDataMoments d = data[l] == null ? IfmDataMoments.empty(f.n0()) : data[l];
        dataUnits = d.ifmDataUnits(settings.tau());
        dataRatio = d.ifmDataRatio(settings.tau());
        if (dataUnits == null) {
          notes.add(IfmDataMoments.NOTE_ZERO_OUTPUT);
        }
      } else if (f.dataNote() != null) {
        notes.add(f.dataNote());
      }
      m.put("ifm_data_units", dataUnits == null ? null : (double) dataUnits);
      m.put("ifm_data_ratio", dataRatio);

      EffectiveRank.Result er;
      if (spectralRefusal != null) {
        er = new EffectiveRank.Result(null, null);
      } else if (widths[l] > settings.maxWidth()) {
        er = EffectiveRank.tooWide(widths[l], settings.maxWidth());
      } else {
        er =
            EffectiveRank.of(
                scatter[l] == null ? ScatterMoments.empty(widths[l]) : scatter[l],
                settings.maxWidth());
      }
      m.put(EffectiveRank.NAME, er.value());
      if (er.note() != null) {
        notes.add(er.note());
      }

      Double r2 = v == null ? null : v.r2().get(l);
      m.put("vinfo_r2", r2);
      if (l == classifier) {
        m.put("vinfo_complexity", v == null ? null : v.complexity());
        m.put(
            "vinfo_directions",
            v == null || v.directions() == null ? null : (double) v.directions());
      }
      if (r2 == null || l == classifier) {
        notes.addAll(vinfoNotes);
      }
      m.put("width", (double) widths[l]);
      m.put("samples", (double) samples[l]);
      m.put("nonfinite", (double) nonfinite[l]);
      out.put(name, new ProbeOutput(m, settings.params(), dedupe(notes)));
    }
    return out;
  }

  private static List<String> dedupe(List<String> notes) {
    return List.copyOf(new java.util.LinkedHashSet<>(notes));
  }
}
