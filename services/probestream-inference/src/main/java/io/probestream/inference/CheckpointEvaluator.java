package io.probestream.inference;

import io.probestream.contracts.onnx.OnnxFormatException;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.CollapseMoments;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.probes.complexity.FeatureComplexity;
import io.probestream.probes.multiplicity.PredictiveMultiplicity;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Evaluates one checkpoint on a reference set: ORT inference in mini-batches, then {@code
 * neural_collapse} per probed layer in two passes (PROBES.md §1.3). Pass 2 re-reads features from a
 * bounded in-memory cache, or runs inference again when the cache would exceed its budget. Blocking
 * and CPU-heavy: call it from a worker thread, never an event loop. Holds no state between calls;
 * thread-safe.
 */
public final class CheckpointEvaluator {
  private static final java.util.logging.Logger LOG =
      java.util.logging.Logger.getLogger(CheckpointEvaluator.class.getName());

  /**
   * Mini-batch rows, feature-cache budget, device, ORT threads, and the limits checked before any
   * probe state is allocated (DESIGN.md §7).
   */
  public record Config(
      int batchSize,
      long featureCacheBytes,
      Device device,
      int threads,
      int maxFeatureWidth,
      long maxStateBytes,
      boolean fusedStatistics) {
    public static final int DEFAULT_MAX_FEATURE_WIDTH = 65_536;
    public static final long DEFAULT_MAX_STATE_BYTES = 1L << 30;

    public Config {
      if (batchSize < 1) {
        throw new IllegalArgumentException("batch size = " + batchSize + ": must be at least 1");
      }
      if (featureCacheBytes < 0) {
        throw new IllegalArgumentException("feature cache bytes must be ≥ 0");
      }
      if (threads < 1) {
        throw new IllegalArgumentException("threads = " + threads + ": must be at least 1");
      }
    }

    /** With the default limits (65,536 features, 1 GiB of state). */
    public Config(int batchSize, long featureCacheBytes, Device device, int threads) {
      this(
          batchSize,
          featureCacheBytes,
          device,
          threads,
          DEFAULT_MAX_FEATURE_WIDTH,
          DEFAULT_MAX_STATE_BYTES);
    }

    /**
     * Statistics in the graph only where the model runs on CUDA (so features never leave the
     * device); {@code fusedStatistics} forces them everywhere, which tests use on CPU.
     */
    public Config(
        int batchSize,
        long featureCacheBytes,
        Device device,
        int threads,
        int maxFeatureWidth,
        long maxStateBytes) {
      this(batchSize, featureCacheBytes, device, threads, maxFeatureWidth, maxStateBytes, false);
    }

    public static Config defaults() {
      return new Config(256, 512L << 20, Device.AUTO, Runtime.getRuntime().availableProcessors());
    }
  }

  /** Progress of a long evaluation: phase ("pass 1", "pass 2"), samples done and total. */
  public interface Progress {
    void update(String phase, long done, long total);

    Progress NONE = (phase, done, total) -> {};
  }

  /**
   * The outcome: one {@link ProbeOutput} per probed layer in manifest order, the device ORT ran on,
   * whether pass 2 used cached features, and whether the statistics were computed in the graph.
   */
  public record Evaluation(
      Map<String, ProbeOutput> layers,
      Map<String, ProbeOutput> complexity,
      String device,
      boolean cachedPass2,
      long samples,
      boolean fusedStatistics,
      Logits logits) {

    /** As the canonical constructor, without logits. */
    public Evaluation(
        Map<String, ProbeOutput> layers,
        Map<String, ProbeOutput> complexity,
        String device,
        boolean cachedPass2,
        long samples,
        boolean fusedStatistics) {
      this(layers, complexity, device, cachedPass2, samples, fusedStatistics, null);
    }

    /** Every result: probe name → layer → output, in the order of {@link EvaluationSpec#probes}. */
    public Map<String, Map<String, ProbeOutput>> byProbe() {
      Map<String, Map<String, ProbeOutput>> out = new LinkedHashMap<>();
      if (!layers.isEmpty()) {
        out.put(NeuralCollapseProbe.NAME, layers);
      }
      if (!complexity.isEmpty()) {
        out.put(FeatureComplexity.NAME, complexity);
      }
      return out;
    }
  }

  /**
   * The logits of every reference sample (N × columns, row-major, in reference-set order) and the
   * labels, kept when the spec runs {@code predictive_multiplicity}.
   */
  public record Logits(float[] values, int columns, int[] labels) {}

  private final Config config;
  private final SessionCache sessions;

  public CheckpointEvaluator(Config config) {
    this(config, new SessionCache(0));
  }

  /**
   * An evaluator whose ORT sessions are shared through {@code sessions} (the service keeps them
   * across checkpoints of the same model and across live batches).
   */
  public CheckpointEvaluator(Config config, SessionCache sessions) {
    this.config = config;
    this.sessions = sessions;
  }

  // Live batches of one checkpoint reuse its model bytes (CheckpointEngine keeps them): its plan
  // (graph parse, exposed outputs, their sha256) is made once per (bytes, spec), and goes when the
  // bytes are no longer held (weak keys; a ModelBytes record compares its array by identity).
  private final Map<ModelBytes, Map<EvaluationSpec, Plan>> plans = new java.util.WeakHashMap<>();

  private Plan cachedPlan(ModelBytes model, EvaluationSpec spec) {
    synchronized (plans) {
      Plan hit = plans.computeIfAbsent(model, k -> new java.util.HashMap<>()).get(spec);
      if (hit != null) {
        return hit;
      }
    }
    Plan made = plan(model, spec);
    synchronized (plans) {
      plans.computeIfAbsent(model, k -> new java.util.HashMap<>()).put(spec, made);
    }
    return made;
  }

  private SessionCache.Lease session(Plan plan, ModelBytes model, EvaluationSpec spec) {
    String key =
        plan.modelSha()
            + "|"
            + spec.input()
            + "|"
            + config.device()
            + "|"
            + config.threads()
            + "|"
            + model.externalDataDir();
    return sessions.acquire(
        key,
        plan.model().length,
        () ->
            ModelSession.open(
                plan.model(),
                model.externalDataDir(),
                spec.input(),
                plan.outputs(),
                config.device(),
                config.threads()));
  }

  /**
   * The prepared model: validated names, classifier-feeding tensor and W, outputs to fetch, and for
   * {@code feature_complexity} the IFM weights found per layer and the tensor carrying each
   * data-aware layer's input (layer → tensor; the model input is read from the batch itself).
   */
  private record Plan(
      byte[] model,
      String modelSha,
      List<String> outputs,
      String classifierTensor,
      double[][] weight,
      Map<String, IfmWeights.Found> ifm,
      Map<String, String> layerInputs) {}

  /**
   * Evaluates {@code model} on {@code batches} (in reference-set order).
   *
   * @throws InferenceException for a model or data that cannot be evaluated; {@link
   *     InferenceException#reason()} names the DLQ code
   */
  public Evaluation evaluate(
      byte[] model, EvaluationSpec spec, List<ReferenceBatch> batches, Progress progress) {
    return evaluate(ModelBytes.inline(model), spec, batches, progress);
  }

  /** As {@link #evaluate(byte[], EvaluationSpec, List, Progress)}, external data included. */
  public Evaluation evaluate(
      ModelBytes model, EvaluationSpec spec, List<ReferenceBatch> batches, Progress progress) {
    Plan plan = plan(model, spec);
    long total = 0;
    for (ReferenceBatch b : batches) {
      total += b.rows();
    }
    boolean nc = spec.runs(NeuralCollapseProbe.NAME);
    boolean fc = spec.runs(FeatureComplexity.NAME);
    boolean pm = spec.runs(PredictiveMultiplicity.NAME);
    try (SessionCache.Lease lease = session(plan, model, spec)) {
      ModelSession session = lease.session();
      checkInputShape(session.inputShape(), spec.input(), batches);
      if (!fc && !pm && (config.fusedStatistics() || session.device().startsWith("cuda"))) {
        Evaluation fused = fused(plan, model, spec, batches, session, total, progress);
        if (fused != null) {
          return fused;
        }
      }
      Map<String, FeatureComplexity.LayerIfm> ifm = fc ? ifm(plan, spec, progress) : Map.of();
      FeatureComplexity complexity = null;
      Map<String, CollapseMoments> moments = new LinkedHashMap<>();
      Map<String, Integer> ranks = new LinkedHashMap<>();
      List<Map<String, FeatureBatch>> cache = new ArrayList<>();
      long cachedBytes = 0;
      boolean caching = config.featureCacheBytes() > 0;
      int[] classes = {spec.classes() == null ? -1 : spec.classes()};

      long done = 0;
      long index = 0;
      boolean first = true;
      LogitSink sink = pm ? new LogitSink(total) : null;
      for (ReferenceBatch batch : batches) {
        for (int from = 0; from < batch.rows(); from += config.batchSize()) {
          int rows = Math.min(config.batchSize(), batch.rows() - from);
          Map<String, float[]> inputs = new LinkedHashMap<>();
          Map<String, FeatureBatch> features =
              features(session, spec, plan, batch, from, rows, index, classes, ranks, inputs, sink);
          if (first) {
            first = false;
            long ncBytes = checkBudget(features, classes[0], nc);
            if (fc) {
              complexity = complexity(plan, spec, ifm, features, ncBytes);
            }
          }
          if (nc) {
            for (Map.Entry<String, FeatureBatch> e : features.entrySet()) {
              CollapseMoments m = CollapseMoments.of(e.getValue());
              moments.merge(e.getKey(), m, CollapseMoments::merge);
            }
          }
          if (complexity != null) {
            guarded(complexity, c -> c.pass1(features, inputs));
          }
          if (caching) {
            long bytes = 0;
            for (FeatureBatch f : features.values()) {
              bytes += 4L * f.features().length + (f.logits() == null ? 0 : 4L * f.logits().length);
            }
            if (cachedBytes + bytes > config.featureCacheBytes()) {
              caching = false;
              cache.clear();
            } else {
              cachedBytes += bytes;
              cache.add(features);
            }
          }
          index += rows;
          done += rows;
          progress.update("pass 1", done, total);
        }
      }

      Map<String, NeuralCollapseProbe.Frozen> frozen = new LinkedHashMap<>();
      Map<String, NeuralCollapseProbe.SecondPass> second = new LinkedHashMap<>();
      for (Map.Entry<String, String> layer :
          nc ? spec.layers().entrySet() : Set.<Map.Entry<String, String>>of()) {
        CollapseMoments m = moments.get(layer.getKey());
        if (m == null) { // an empty reference set: no batch ever ran
          continue;
        }
        boolean feeds = layer.getValue().equals(plan.classifierTensor());
        NeuralCollapseProbe.Frozen f =
            NeuralCollapseProbe.freeze(m, feeds, feeds ? plan.weight() : null);
        frozen.put(layer.getKey(), f);
        second.put(layer.getKey(), f.emptyPass2());
      }
      boolean[] vinfo = {false};
      if (complexity != null) {
        guarded(complexity, c -> vinfo[0] = c.endPass1());
      }
      FeatureComplexity fcPass2 = vinfo[0] ? complexity : null;

      if (frozen.isEmpty() && fcPass2 == null) {
        caching = true; // no pass 2 at all: nothing ran twice
      } else if (caching) {
        for (Map<String, FeatureBatch> features : cache) {
          pass2(frozen, second, fcPass2, features);
        }
      } else {
        done = 0;
        index = 0;
        for (ReferenceBatch batch : batches) {
          for (int from = 0; from < batch.rows(); from += config.batchSize()) {
            int rows = Math.min(config.batchSize(), batch.rows() - from);
            pass2(
                frozen,
                second,
                fcPass2,
                features(
                    session, spec, plan, batch, from, rows, index, classes, ranks, null, null));
            index += rows;
            done += rows;
            progress.update("pass 2", done, total);
          }
        }
      }

      Map<String, ProbeOutput> out = new LinkedHashMap<>();
      for (Map.Entry<String, NeuralCollapseProbe.Frozen> e : frozen.entrySet()) {
        String reduction = spec.reduction().label(ranks.getOrDefault(e.getKey(), 2));
        out.put(
            e.getKey(),
            e.getValue().finish(second.get(e.getKey()), Map.of("reduction", reduction)));
      }
      Map<String, ProbeOutput> fcOut = new LinkedHashMap<>();
      if (complexity != null) {
        List<Map<String, ProbeOutput>> finished = new ArrayList<>();
        guarded(complexity, c -> finished.add(c.finish()));
        (finished.isEmpty() ? complexity.finish() : finished.get(0))
            .forEach(
                (layer, o) -> {
                  Map<String, Object> params = new LinkedHashMap<>(o.params());
                  params.put("reduction", spec.reduction().label(ranks.getOrDefault(layer, 2)));
                  fcOut.put(layer, new ProbeOutput(o.metrics(), params, o.notes()));
                });
      }
      return new Evaluation(
          out, fcOut, session.device(), caching, total, false, sink == null ? null : sink.done());
    }
  }

  /**
   * IFM of every probed layer from the weights (PROBES.md §2.1), before any data: the full merge
   * order where data-aware IFM applies, else the order up to beta's first refusal. A layer whose
   * unit vectors and distances would not fit the state budget gets a null with a note.
   */
  private Map<String, FeatureComplexity.LayerIfm> ifm(
      Plan plan, EvaluationSpec spec, Progress progress) {
    Map<String, FeatureComplexity.LayerIfm> out = new LinkedHashMap<>();
    int done = 0;
    for (Map.Entry<String, IfmWeights.Found> e : plan.ifm().entrySet()) {
      IfmWeights.Found f = e.getValue();
      if (f.layer() == null) {
        out.put(e.getKey(), FeatureComplexity.LayerIfm.unsupported(f.unsupported()));
      } else {
        long n0 = f.layer().units();
        long bytes = 8 * (2 * n0 * f.layer().unitVectorLength() + n0 * n0);
        if (bytes > config.maxStateBytes()) {
          out.put(
              e.getKey(),
              new FeatureComplexity.LayerIfm(
                  null,
                  (int) n0,
                  "ifm: "
                      + n0
                      + " units with unit vectors of "
                      + f.layer().unitVectorLength()
                      + " need "
                      + bytes
                      + " bytes; limit probestream.limits.max-state-bytes = "
                      + config.maxStateBytes(),
                  null,
                  null));
        } else {
          String refusal = f.dataRefusal();
          if (refusal == null && !plan.layerInputs().containsKey(e.getKey())) {
            refusal = "ifm_data: the layer's input tensor is unknown";
          }
          out.put(
              e.getKey(),
              FeatureComplexity.LayerIfm.of(f.layer(), spec.complexity(), refusal, f.slope()));
        }
      }
      progress.update("ifm", ++done, plan.ifm().size());
    }
    return out;
  }

  /**
   * The complexity accumulator, once the first batch told every layer's width: the d×d states of
   * effective rank and V-information get what the state budget leaves after neural collapse.
   */
  private FeatureComplexity complexity(
      Plan plan,
      EvaluationSpec spec,
      Map<String, FeatureComplexity.LayerIfm> ifm,
      Map<String, FeatureBatch> first,
      long ncBytes) {
    List<Integer> widths = new ArrayList<>();
    first.values().forEach(f -> widths.add(f.width()));
    long bytes = FeatureComplexity.stateBytes(widths, spec.complexity());
    String refusal = null;
    if (ncBytes + bytes > config.maxStateBytes()) {
      refusal =
          "feature_complexity: the d×d states of effective_rank and vinfo need "
              + bytes
              + " bytes"
              + (ncBytes > 0 ? " (neural_collapse holds " + ncBytes + ")" : "")
              + "; limit probestream.limits.max-state-bytes = "
              + config.maxStateBytes()
              + " (or lower max-width = "
              + spec.complexity().maxWidth()
              + ")";
    }
    String classifierLayer = null;
    for (Map.Entry<String, String> l : spec.layers().entrySet()) {
      if (classifierLayer == null && l.getValue().equals(plan.classifierTensor())) {
        classifierLayer = l.getKey();
      }
    }
    String missing =
        plan.classifierTensor() == null
            ? "the classifier-feeding layer is unknown (name the classifier weight)"
            : "the classifier-feeding layer (tensor " + plan.classifierTensor() + ") is not probed";
    return new FeatureComplexity(
        new ArrayList<>(spec.layers().keySet()),
        classifierLayer,
        classifierLayer == null ? missing : null,
        ifm,
        spec.complexity(),
        refusal);
  }

  /**
   * Refuses, before any probe state exists, a layer wider than the width limit or a checkpoint
   * whose neural-collapse state would not fit the state budget: per layer of width d with C
   * classes, class means, centred means and the between-class basis (3·C·d doubles) plus two
   * d-vectors.
   */
  private long checkBudget(Map<String, FeatureBatch> features, int classes, boolean collapse) {
    Map<String, Integer> widths = new LinkedHashMap<>();
    features.forEach((layer, f) -> widths.put(layer, f.width()));
    return checkWidths(widths, classes, collapse);
  }

  /** Checks widths, and neural collapse's state when it runs; returns that state's bytes. */
  private long checkWidths(Map<String, Integer> widths, int classes, boolean collapse) {
    long total = 0;
    StringBuilder parts = new StringBuilder();
    for (Map.Entry<String, Integer> e : widths.entrySet()) {
      int d = e.getValue();
      if (d > config.maxFeatureWidth()) {
        throw new InferenceException(
            DlqReason.FEATURE_TOO_WIDE,
            "layer '"
                + e.getKey()
                + "' has "
                + d
                + " features per sample; limit"
                + " probestream.limits.max-feature-width = "
                + config.maxFeatureWidth());
      }
      long bytes = collapse ? 8L * d * (3L * classes + 2) : 0;
      total += bytes;
      parts
          .append(parts.length() == 0 ? "" : ", ")
          .append(e.getKey())
          .append(" (d = ")
          .append(d)
          .append("): ")
          .append(bytes);
    }
    if (total > config.maxStateBytes()) {
      throw new InferenceException(
          DlqReason.STATE_BUDGET_EXCEEDED,
          "neural_collapse state for "
              + classes
              + " classes needs "
              + total
              + " bytes (8·d·(3·C + 2)"
              + " per layer: "
              + parts
              + "); limit probestream.limits.max-state-bytes = "
              + config.maxStateBytes());
    }
    return total;
  }

  /**
   * Both passes with the statistics computed in the graph (DESIGN.md §5): only per-class counts,
   * means and scatter (pass 1) and per-direction sums and NC4 counts (pass 2) come out of ORT.
   * Returns null when the model cannot take the statistic nodes (fixed batch, unknown widths,
   * flatten reduction, opset below 13), so the caller runs the plain path.
   */
  private Evaluation fused(
      Plan plan,
      ModelBytes model,
      EvaluationSpec spec,
      List<ReferenceBatch> batches,
      ModelSession plain,
      long total,
      Progress progress) {
    if (plain.fixedBatch() > 0) {
      return null;
    }
    long[] ls = plain.outputShape(spec.logits());
    if (ls == null || ls.length != 2) {
      return null;
    }
    int c = spec.classes() != null ? spec.classes() : (int) ls[1];
    if (c < 1) {
      return null;
    }
    if (ls[1] >= 0 && ls[1] != c) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "logits tensor '"
              + spec.logits()
              + "' has "
              + ls[1]
              + " classes but the checkpoint declares "
              + c);
    }
    List<String> names = new ArrayList<>(spec.layers().keySet());
    List<StatisticGraph.Layer> layers = new ArrayList<>();
    Map<String, Integer> widths = new LinkedHashMap<>();
    for (String name : names) {
      String tensor = spec.layers().get(name);
      long[] shape = plain.outputShape(tensor);
      if (shape == null
          || shape.length < 2
          || shape[1] < 1
          || (shape.length > 2 && spec.reduction() == Reduction.FLATTEN)) {
        return null;
      }
      layers.add(
          new StatisticGraph.Layer(
              tensor, shape.length, (int) shape[1], tensor.equals(plan.classifierTensor())));
      widths.put(name, (int) shape[1]);
    }
    checkWidths(widths, c, true);
    byte[] one = StatisticGraph.pass1(plan.model(), layers, spec.logits(), c);
    byte[] two = StatisticGraph.pass2(plan.model(), layers, spec.logits(), c);
    List<String> outs1 = new ArrayList<>();
    List<String> outs2 = new ArrayList<>();
    for (int i = 0; i < layers.size(); i++) {
      for (String o : List.of("counts", "means", "scatter", "nonfinite")) {
        outs1.add(StatisticGraph.out(i, o));
      }
      outs2.add(StatisticGraph.out(i, "a"));
      outs2.add(StatisticGraph.out(i, "samples"));
      if (layers.get(i).feeds()) {
        outs2.add(StatisticGraph.out(i, "mis"));
      }
    }
    try (SessionCache.Lease l1 = session(one, outs1, model, spec);
        SessionCache.Lease l2 = session(two, outs2, model, spec)) {
      Map<String, CollapseMoments> moments = new LinkedHashMap<>();
      long done = 0;
      for (ReferenceBatch batch : batches) {
        for (int from = 0; from < batch.rows(); from += config.batchSize()) {
          int rows = Math.min(config.batchSize(), batch.rows() - from);
          Slice x = slice(batch, from, rows, c, done);
          Map<String, ModelSession.Output> out =
              l1.session().runWith(x.values, x.shape, StatisticGraph.LABELS, x.labels, Map.of());
          for (int i = 0; i < layers.size(); i++) {
            int d = layers.get(i).width();
            float[] counts = out.get(StatisticGraph.out(i, "counts")).values();
            float[] means = out.get(StatisticGraph.out(i, "means")).values();
            float[] scatter = out.get(StatisticGraph.out(i, "scatter")).values();
            long[] n = new long[c];
            double[][] mu = new double[c][d];
            double[] sc = new double[c];
            for (int k = 0; k < c; k++) {
              n[k] = Math.round(counts[k]);
              sc[k] = scatter[k];
              for (int j = 0; j < d; j++) {
                mu[k][j] = means[k * d + j];
              }
            }
            long nonfinite = Math.round(out.get(StatisticGraph.out(i, "nonfinite")).values()[0]);
            moments.merge(
                names.get(i),
                CollapseMoments.fromClassStats(d, n, mu, sc, nonfinite),
                CollapseMoments::merge);
          }
          done += rows;
          progress.update("pass 1", done, total);
        }
      }
      Map<String, NeuralCollapseProbe.Frozen> frozen = new LinkedHashMap<>();
      Map<String, ModelSession.Extra> extra = new LinkedHashMap<>();
      Map<String, Integer> kept = new LinkedHashMap<>();
      for (int i = 0; i < layers.size(); i++) {
        StatisticGraph.Layer layer = layers.get(i);
        CollapseMoments m =
            moments.getOrDefault(names.get(i), CollapseMoments.empty(layer.width()));
        NeuralCollapseProbe.Frozen f =
            NeuralCollapseProbe.freeze(m, layer.feeds(), layer.feeds() ? plan.weight() : null);
        frozen.put(names.get(i), f);
        int d = layer.width();
        float[] mu = new float[c * d];
        float[] inv = new float[c];
        float[] pen = new float[c];
        float[] musq = new float[c];
        java.util.Arrays.fill(pen, 1e30f);
        int[] ids = f.classIds();
        long[] counts = f.counts();
        double[][] means = f.means();
        for (int p = 0; p < ids.length; p++) {
          int k = ids[p];
          inv[k] = (float) (1.0 / counts[p]);
          pen[k] = 0;
          double sq = 0;
          for (int j = 0; j < d; j++) {
            mu[k * d + j] = (float) means[p][j];
            sq += (double) mu[k * d + j] * mu[k * d + j];
          }
          musq[k] = (float) sq;
        }
        double[][] basis = f.basis();
        int r = Math.max(1, basis.length); // a zero row stands in for an empty basis
        float[] v = new float[r * d];
        for (int j = 0; j < basis.length; j++) {
          for (int q = 0; q < d; q++) {
            v[j * d + q] = (float) basis[j][q];
          }
        }
        kept.put(names.get(i), basis.length);
        extra.put(StatisticGraph.out(i, "mu"), new ModelSession.Extra(mu, new long[] {c, d}));
        extra.put(StatisticGraph.out(i, "v"), new ModelSession.Extra(v, new long[] {r, d}));
        extra.put(StatisticGraph.out(i, "inv"), new ModelSession.Extra(inv, new long[] {c}));
        if (layer.feeds()) {
          extra.put(StatisticGraph.out(i, "pen"), new ModelSession.Extra(pen, new long[] {c}));
          extra.put(StatisticGraph.out(i, "musq"), new ModelSession.Extra(musq, new long[] {c}));
        }
      }
      Map<String, NeuralCollapseProbe.SecondPass> second = new LinkedHashMap<>();
      done = 0;
      for (ReferenceBatch batch : batches) {
        for (int from = 0; from < batch.rows(); from += config.batchSize()) {
          int rows = Math.min(config.batchSize(), batch.rows() - from);
          Slice x = slice(batch, from, rows, c, done);
          Map<String, ModelSession.Output> out =
              l2.session().runWith(x.values, x.shape, StatisticGraph.LABELS, x.labels, extra);
          for (int i = 0; i < layers.size(); i++) {
            String name = names.get(i);
            float[] a = out.get(StatisticGraph.out(i, "a")).values();
            double[] ad = new double[kept.get(name)];
            for (int j = 0; j < ad.length; j++) {
              ad[j] = a[j];
            }
            long samples = Math.round(out.get(StatisticGraph.out(i, "samples")).values()[0]);
            long mis =
                layers.get(i).feeds()
                    ? Math.round(out.get(StatisticGraph.out(i, "mis")).values()[0])
                    : 0;
            second.merge(
                name,
                new NeuralCollapseProbe.SecondPass(ad, samples, mis),
                NeuralCollapseProbe.SecondPass::merge);
          }
          done += rows;
          progress.update("pass 2", done, total);
        }
      }
      Map<String, ProbeOutput> result = new LinkedHashMap<>();
      for (int i = 0; i < layers.size(); i++) {
        String name = names.get(i);
        NeuralCollapseProbe.SecondPass p2 =
            second.getOrDefault(name, frozen.get(name).emptyPass2());
        result.put(
            name,
            frozen
                .get(name)
                .finish(p2, Map.of("reduction", spec.reduction().label(layers.get(i).rank()))));
      }
      return new Evaluation(result, Map.of(), l1.session().device(), false, total, true);
    } catch (InferenceException e) {
      if (e.reason() == DlqReason.MODEL_UNLOADABLE) {
        return null; // ORT would not take the statistic nodes (an old opset): use the plain path
      }
      throw e;
    }
  }

  /** One mini-batch of inputs and labels, labels checked against the classes. */
  private record Slice(float[] values, long[] shape, long[] labels) {}

  private static Slice slice(
      ReferenceBatch batch, int from, int rows, int classes, long firstIndex) {
    int rowSize = batch.rowSize();
    float[] input = Arrays.copyOfRange(batch.input(), from * rowSize, (from + rows) * rowSize);
    long[] shape = batch.shape().clone();
    shape[0] = rows;
    long[] labels = new long[rows];
    for (int i = 0; i < rows; i++) {
      int y = batch.labels()[from + i];
      if (y < 0 || y >= classes) {
        throw new InferenceException(
            DlqReason.LABEL_OUT_OF_RANGE,
            "label "
                + y
                + " at reference index "
                + (firstIndex + i)
                + " is outside 0.."
                + (classes - 1)
                + " ("
                + classes
                + " classes)");
      }
      labels[i] = y;
    }
    return new Slice(input, shape, labels);
  }

  private SessionCache.Lease session(
      byte[] bytes, List<String> outputs, ModelBytes model, EvaluationSpec spec) {
    String key =
        io.probestream.contracts.result.ProbeResult.sha256Hex(bytes)
            + "|"
            + spec.input()
            + "|"
            + config.device()
            + "|"
            + config.threads()
            + "|"
            + model.externalDataDir();
    return sessions.acquire(
        key,
        bytes.length,
        () ->
            ModelSession.open(
                bytes,
                model.externalDataDir(),
                spec.input(),
                outputs,
                config.device(),
                config.threads()));
  }

  /** How many layers {@code auto} picks at most, nearest the logits. */
  public static final int AUTO_LAYERS = 8;

  /**
   * The layers {@code auto} means for this model (layer name = tensor name): every activation
   * output and the classifier's input, the last {@link #AUTO_LAYERS} of them.
   *
   * @param classifierWeight the classifier weight initializer, or null (then the logits' producer
   *     tells the classifier's input)
   */
  public static Map<String, String> autoLayers(
      byte[] model, String logits, String classifierWeight) {
    OnnxGraph graph;
    try {
      graph = OnnxGraph.parse(model);
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, e.getMessage(), e);
    }
    String feed;
    try {
      feed =
          classifierWeight != null
              ? graph.classifier(classifierWeight).featureTensor()
              : graph.classifierInputOf(logits);
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.UNKNOWN_TENSOR, e.getMessage(), e);
    }
    Map<String, String> layers = new LinkedHashMap<>();
    for (String t : graph.autoLayers(feed, AUTO_LAYERS)) {
      layers.put(t, t);
    }
    if (layers.isEmpty()) {
      throw new InferenceException(
          DlqReason.UNKNOWN_TENSOR,
          "layers 'auto' found no activation and no classifier input in the model; name the layers");
    }
    return layers;
  }

  /**
   * Pass 1 of {@code neural_collapse} on one batch (a live split): per probed layer its moments,
   * whether it feeds the classifier, and its reduction label. Blocking; thread-safe.
   */
  public PassOne passOne(byte[] model, EvaluationSpec spec, ReferenceBatch batch) {
    return passOne(ModelBytes.inline(model), spec, batch);
  }

  /** As {@link #passOne(byte[], EvaluationSpec, ReferenceBatch)}, external data included. */
  public PassOne passOne(ModelBytes model, EvaluationSpec spec, ReferenceBatch batch) {
    Plan plan = cachedPlan(model, spec);
    try (SessionCache.Lease lease = session(plan, model, spec)) {
      ModelSession session = lease.session();
      checkInputShape(session.inputShape(), spec.input(), List.of(batch));
      Map<String, CollapseMoments> moments = new LinkedHashMap<>();
      Map<String, Integer> ranks = new LinkedHashMap<>();
      int[] classes = {spec.classes() == null ? -1 : spec.classes()};
      for (int from = 0; from < batch.rows(); from += config.batchSize()) {
        int rows = Math.min(config.batchSize(), batch.rows() - from);
        Map<String, FeatureBatch> features =
            features(session, spec, plan, batch, from, rows, from, classes, ranks, null, null);
        if (moments.isEmpty()) {
          checkBudget(features, classes[0], true);
        }
        features.forEach(
            (layer, f) -> moments.merge(layer, CollapseMoments.of(f), CollapseMoments::merge));
      }
      Map<String, Boolean> feeds = new LinkedHashMap<>();
      Map<String, String> reductions = new LinkedHashMap<>();
      spec.layers()
          .forEach(
              (layer, tensor) -> {
                feeds.put(layer, tensor.equals(plan.classifierTensor()));
                reductions.put(layer, spec.reduction().label(ranks.getOrDefault(layer, 2)));
              });
      return new PassOne(moments, feeds, plan.weight(), reductions, session.device());
    }
  }

  /**
   * Pass-1 state of one batch: per layer its moments, whether it feeds the classifier, and its
   * reduction; the classifier weight (or null) and the device ORT ran on.
   */
  public record PassOne(
      Map<String, CollapseMoments> moments,
      Map<String, Boolean> feedsClassifier,
      double[][] classifierWeight,
      Map<String, String> reductions,
      String device) {}

  private static void pass2(
      Map<String, NeuralCollapseProbe.Frozen> frozen,
      Map<String, NeuralCollapseProbe.SecondPass> second,
      FeatureComplexity complexity,
      Map<String, FeatureBatch> features) {
    for (Map.Entry<String, FeatureBatch> e : features.entrySet()) {
      NeuralCollapseProbe.Frozen f = frozen.get(e.getKey());
      if (f != null) {
        second.merge(e.getKey(), f.pass2(e.getValue()), NeuralCollapseProbe.SecondPass::merge);
      }
    }
    if (complexity != null) {
      guarded(complexity, c -> c.pass2(features));
    }
  }

  /**
   * Runs one step of {@code feature_complexity}; a failure of the probe itself (a bug, or a shape
   * it does not expect) turns its results into nulls with the reason instead of losing the
   * checkpoint's other results.
   */
  private static void guarded(
      FeatureComplexity complexity, java.util.function.Consumer<FeatureComplexity> step) {
    if (complexity.failed()) {
      return;
    }
    try {
      step.accept(complexity);
    } catch (IllegalArgumentException | IllegalStateException | ArithmeticException e) {
      LOG.log(java.util.logging.Level.WARNING, "feature_complexity failed", e);
      complexity.fail("feature_complexity failed: " + e.getMessage());
    }
  }

  /** Runs one mini-batch and cuts the outputs into one FeatureBatch per probed layer. */
  private Map<String, FeatureBatch> features(
      ModelSession session,
      EvaluationSpec spec,
      Plan plan,
      ReferenceBatch batch,
      int from,
      int rows,
      long firstIndex,
      int[] classes,
      Map<String, Integer> ranks,
      Map<String, float[]> layerInputs,
      LogitSink sink) {
    int rowSize = batch.rowSize();
    float[] input = Arrays.copyOfRange(batch.input(), from * rowSize, (from + rows) * rowSize);
    long[] shape = batch.shape().clone();
    shape[0] = rows;
    int[] labels = Arrays.copyOfRange(batch.labels(), from, from + rows);
    Map<String, ModelSession.Output> outputs = session.run(input, shape);
    if (layerInputs != null) {
      plan.layerInputs()
          .forEach(
              (layer, tensor) ->
                  layerInputs.put(
                      layer,
                      layerInput(
                          layer,
                          tensor,
                          tensor.equals(spec.input()) ? null : outputs.get(tensor),
                          input,
                          shape,
                          rows,
                          plan.ifm().get(layer).layer().inputWidth())));
    }

    ModelSession.Output logits = outputs.get(spec.logits());
    long[] ls = logits.shape();
    if (ls.length != 2 || ls[0] != rows) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "logits tensor '"
              + spec.logits()
              + "' has shape "
              + Arrays.toString(ls)
              + "; expected ["
              + rows
              + ", classes]");
    }
    int c = (int) ls[1];
    if (classes[0] < 0) {
      classes[0] = c;
    } else if (classes[0] != c) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "logits tensor '"
              + spec.logits()
              + "' has "
              + c
              + " classes but the checkpoint declares "
              + classes[0]);
    }
    if (plan.weight() != null && plan.weight().length != c) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "classifier weight has "
              + plan.weight().length
              + " rows (classes) but the logits have "
              + c);
    }
    for (int i = 0; i < rows; i++) {
      if (labels[i] < 0 || labels[i] >= c) {
        throw new InferenceException(
            DlqReason.LABEL_OUT_OF_RANGE,
            "label "
                + labels[i]
                + " at reference index "
                + (firstIndex + i)
                + " is outside 0.."
                + (c - 1)
                + " ("
                + c
                + " classes)");
      }
    }

    if (sink != null) {
      sink.add(logits.values(), c, labels);
    }
    Map<String, FeatureBatch> out = new LinkedHashMap<>();
    for (Map.Entry<String, String> layer : spec.layers().entrySet()) {
      ModelSession.Output o = outputs.get(layer.getValue());
      long[] s = o.shape();
      if (s.length < 1 || s[0] != rows) {
        throw new InferenceException(
            DlqReason.SHAPE_MISMATCH,
            "layer '"
                + layer.getKey()
                + "' tensor '"
                + layer.getValue()
                + "' has shape "
                + Arrays.toString(s)
                + "; its first dimension must be the batch ("
                + rows
                + ")");
      }
      ranks.put(layer.getKey(), s.length);
      int width = spec.reduction().width(s);
      float[] features = spec.reduction().apply(o.values(), s);
      boolean feeds = layer.getValue().equals(plan.classifierTensor());
      out.put(
          layer.getKey(),
          new FeatureBatch(
              rows,
              width,
              features,
              labels,
              feeds ? logits.values() : null,
              feeds ? c : 0,
              firstIndex));
    }
    return out;
  }

  /** Collects the logits and labels of every mini-batch, in reference-set order. */
  private static final class LogitSink {
    private final long total;
    private float[] values;
    private int[] labels;
    private int columns = -1;
    private int rows;

    LogitSink(long total) {
      this.total = total;
    }

    void add(float[] logits, int cols, int[] y) {
      if (values == null) {
        if (total * cols > Integer.MAX_VALUE - 8) {
          throw new InferenceException(
              DlqReason.STATE_BUDGET_EXCEEDED,
              "predictive_multiplicity keeps "
                  + total
                  + " × "
                  + cols
                  + " logits; more than one array can hold");
        }
        columns = cols;
        values = new float[(int) (total * cols)];
        labels = new int[(int) total];
      }
      System.arraycopy(logits, 0, values, rows * columns, y.length * columns);
      System.arraycopy(y, 0, labels, rows, y.length);
      rows += y.length;
    }

    Logits done() {
      return values == null
          ? new Logits(new float[0], Math.max(columns, 1), new int[0])
          : new Logits(values, columns, labels);
    }
  }

  /** A data-aware layer's input rows (rows × d_in), from its tensor or the model input. */
  private static float[] layerInput(
      String layer,
      String tensor,
      ModelSession.Output output,
      float[] input,
      long[] inputShape,
      int rows,
      int width) {
    long[] s = output == null ? inputShape : output.shape();
    if (s.length != 2 || s[0] != rows || s[1] != width) {
      throw new InferenceException(
          DlqReason.SHAPE_MISMATCH,
          "layer '"
              + layer
              + "' input tensor '"
              + tensor
              + "' has shape "
              + Arrays.toString(s)
              + "; its weights need ["
              + rows
              + ", "
              + width
              + "]");
    }
    return output == null ? input : output.values();
  }

  private static Plan plan(ModelBytes source, EvaluationSpec spec) {
    byte[] model = source.bytes();
    OnnxGraph graph;
    try {
      graph = OnnxGraph.parse(model);
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, e.getMessage(), e);
    }
    try {
      graph.input(spec.input());
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.INPUT_MISMATCH, e.getMessage(), e);
    }
    Set<String> wanted = new LinkedHashSet<>(spec.layers().values());
    wanted.add(spec.logits());
    for (String t : wanted) {
      if (!graph.hasTensor(t)) {
        List<String> candidates = graph.nodeOutputs();
        String shown =
            candidates.size() <= 30
                ? candidates.toString()
                : candidates.subList(0, 30) + " and " + (candidates.size() - 30) + " more";
        throw new InferenceException(
            DlqReason.UNKNOWN_TENSOR,
            "unknown tensor '" + t + "'; the model's node outputs are " + shown);
      }
    }
    String classifierTensor;
    double[][] weight = null;
    if (spec.classifierWeight() != null) {
      try {
        OnnxGraph.Classifier c = graph.classifier(spec.classifierWeight(), source::externalRaw);
        classifierTensor = c.featureTensor();
        weight = c.weight();
      } catch (OnnxFormatException e) {
        throw new InferenceException(DlqReason.UNKNOWN_TENSOR, e.getMessage(), e);
      }
    } else {
      classifierTensor = graph.classifierInputOf(spec.logits());
    }
    Map<String, IfmWeights.Found> ifm = new LinkedHashMap<>();
    Map<String, String> layerInputs = new LinkedHashMap<>();
    if (spec.runs(FeatureComplexity.NAME)) {
      for (Map.Entry<String, String> layer : spec.layers().entrySet()) {
        EvaluationSpec.IfmNames names = spec.ifmWeights().get(layer.getKey());
        IfmWeights.Found f =
            names != null
                ? IfmWeights.named(graph, names, layer.getValue(), source::externalRaw)
                : IfmWeights.detect(graph, layer.getValue(), source::externalRaw);
        ifm.put(layer.getKey(), f);
        if (f.layer() != null
            && f.dataRefusal() == null
            && f.input() != null
            && f.layer().units() <= spec.complexity().ifmDataMaxUnits()
            && (f.input().equals(spec.input()) || graph.hasTensor(f.input()))) {
          layerInputs.put(layer.getKey(), f.input());
          if (!f.input().equals(spec.input())) {
            wanted.add(f.input());
          }
        }
      }
    }
    List<String> expose = new ArrayList<>();
    for (String t : wanted) {
      if (!graph.isOutput(t)) {
        expose.add(t);
      }
    }
    byte[] bytes = expose.isEmpty() ? model : OnnxGraph.withOutputs(model, expose);
    return new Plan(
        bytes,
        io.probestream.contracts.result.ProbeResult.sha256Hex(bytes),
        List.copyOf(wanted),
        classifierTensor,
        weight,
        ifm,
        layerInputs);
  }

  private static void checkInputShape(long[] declared, String input, List<ReferenceBatch> batches) {
    for (ReferenceBatch b : batches) {
      long[] s = b.shape();
      boolean ok = s.length == declared.length;
      for (int a = 1; ok && a < s.length; a++) {
        ok = declared[a] < 0 || declared[a] == s[a];
      }
      if (!ok) {
        throw new InferenceException(
            DlqReason.INPUT_MISMATCH,
            "input '"
                + input
                + "' is "
                + shape(declared)
                + " in the model but the data is "
                + Arrays.toString(s));
      }
    }
  }

  private static String shape(long[] dims) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < dims.length; i++) {
      sb.append(i == 0 ? "" : ", ").append(dims[i] < 0 ? "N" : Long.toString(dims[i]));
    }
    return sb.append(']').toString();
  }
}
