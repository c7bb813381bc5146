package io.probestream.service.engine;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.checkpoint.ManifestException;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.safetensors.SafetensorsException;
import io.probestream.contracts.safetensors.TensorInfo;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.inference.CheckpointEvaluator;
import io.probestream.inference.EvaluationSpec;
import io.probestream.inference.ModelBytes;
import io.probestream.inference.Reduction;
import io.probestream.inference.ReferenceBatch;
import io.probestream.inference.SessionCache;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.complexity.FeatureComplexity;
import io.probestream.probes.multiplicity.Candidate;
import io.probestream.probes.multiplicity.MultiplicityState;
import io.probestream.probes.multiplicity.PredictiveMultiplicity;
import io.probestream.service.ingest.ReferenceIngest;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.schema.Schemas;
import io.probestream.service.store.BlobStore;
import io.probestream.service.work.Workers;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
import java.util.logging.Logger;

/**
 * Turns checkpoint records into probe results: validates the manifest, keeps the checkpoint waiting
 * (bounded by count and age) until its model blob and its experiment's reference set are complete,
 * evaluates it on the worker pool, and publishes the results. A checkpoint record is done when its
 * results are acknowledged, or fails with a {@link PoisonException}. Owned by the intake verticle's
 * event loop.
 */
public final class CheckpointEngine {
  private static final Logger LOG = Logger.getLogger(CheckpointEngine.class.getName());
  private static final long DECODED_CACHE_BYTES = 256L << 20;

  private final Context context;
  private final ProbestreamConfig config;
  private final Workers workers;
  private final BlobStore blobs;
  private final ReferenceIngest references;
  private final ResultPublisher publisher;
  private final ServiceMetrics metrics;
  private final CheckpointEvaluator evaluator;
  private final SessionCache sessions;
  private final ModelSource models;
  private final Schemas schemas = Schemas.get(); // loaded with the engine, not on the event loop
  private final List<java.util.function.Consumer<CheckpointManifest>> evaluated = new ArrayList<>();
  private final Map<String, Deque<Waiting>> waiting = new LinkedHashMap<>();
  private final Map<String, Future<Void>> publishing = new HashMap<>(); // experiment → last publish
  private final Map<String, List<ReferenceBatch>> parsed = new LinkedHashMap<>(); // worker-owned
  // experiment (scope experiment) or experiment|run (scope run) → its multiplicity state; each
  // state is updated under its own lock on a worker
  private final Map<String, MultiplicityState> multiplicity =
      new java.util.concurrent.ConcurrentHashMap<>();
  // scope key → the state's bytes after its last update, taken on the worker that updated it, so
  // snapshots never wait on a state's lock from the event loop
  private final Map<String, byte[]> multiplicityBytes =
      new java.util.concurrent.ConcurrentHashMap<>();
  // experiment → bumped by forget(): an evaluation started before publishes nothing
  private final Map<String, Integer> epochs = new HashMap<>();
  static final int HARD_CAP_FACTOR = 4;
  private java.util.function.IntConsumer backlogFull = p -> {};
  private java.util.function.IntConsumer backlogEased = p -> {};
  private final java.util.Set<Integer> backlogged = new java.util.TreeSet<>();

  /** What one checkpoint's evaluation gave before the ordered multiplicity step. */
  private record Computed(
      List<ProbeResult> results,
      CheckpointEvaluator.Evaluation evaluation,
      String modelSha,
      String referenceSha,
      Instant now,
      long t0) {}

  /**
   * The outcome of a checkpoint record whose experiment this instance gave up (a rebalance or a
   * rewind) before it finished: neither dead-lettered nor committed, so it is read again.
   */
  public static final class Abandoned extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public Abandoned(String message) {
      super(message, null, false, false);
    }
  }

  private record Waiting(
      CheckpointManifest manifest, InputRecord record, Promise<Void> done, long since) {
    String blobSha() {
      return manifest.model() instanceof CheckpointManifest.Blob b ? b.sha256() : null;
    }
  }

  public CheckpointEngine(
      Context context,
      ProbestreamConfig config,
      Workers workers,
      BlobStore blobs,
      ReferenceIngest references,
      ResultPublisher publisher,
      ServiceMetrics metrics) {
    this.context = context;
    this.config = config;
    this.workers = workers;
    this.blobs = blobs;
    this.references = references;
    this.publisher = publisher;
    this.metrics = metrics;
    this.models = new ModelSource(config.model(), config.limits(), blobs);
    // Workers run checkpoints side by side; one intra-op thread each avoids oversubscription.
    this.sessions = new SessionCache(config.model().sessionCacheBytes());
    this.evaluator =
        new CheckpointEvaluator(
            new CheckpointEvaluator.Config(
                config.model().batchSize(),
                config.model().featureCacheBytes(),
                io.probestream.inference.Device.parse(config.model().device()),
                1,
                config.limits().maxFeatureWidth(),
                config.limits().maxStateBytes()),
            sessions);
  }

  /** Closes the cached ORT sessions (those in use close when their evaluation ends). */
  public void close() {
    sessions.close();
  }

  public Future<Void> onCheckpoint(InputRecord r) {
    r.requireCloudEvent(Headers.TYPE_CHECKPOINT);
    String key = r.requireKey();
    CheckpointManifest m;
    try {
      m = CheckpointManifest.parse(r.value());
    } catch (ManifestException e) {
      DlqReason reason =
          e.getCause() instanceof JsonProcessingException
              ? DlqReason.INVALID_JSON
              : DlqReason.INVALID_MANIFEST;
      throw new PoisonException(reason, e.getMessage(), e);
    }
    List<String> broken = schemas.validateManifest(r.value());
    if (!broken.isEmpty()) {
      throw new PoisonException(
          DlqReason.INVALID_MANIFEST,
          "manifest breaks schemas/checkpoint-manifest.v1.schema.json: "
              + String.join("; ", broken));
    }
    if (!key.equals(m.experiment())) {
      throw new PoisonException(
          DlqReason.KEY_MISMATCH,
          "record key '" + key + "' is not the manifest's experiment '" + m.experiment() + "'");
    }
    if (m.model() instanceof CheckpointManifest.Blob b
        && b.size() > config.limits().maxModelBytes()) {
      throw new PoisonException(
          DlqReason.PAYLOAD_TOO_LARGE,
          "model.blob.size = "
              + b.size()
              + "; limit probestream.limits.max-model-bytes = "
              + config.limits().maxModelBytes());
    }
    if (m.model() instanceof CheckpointManifest.Uri u) {
      checkUri(u.uri());
    }
    if (m.model() instanceof CheckpointManifest.Blob b) {
      blobs.requireFits(b.sha256(), b.size()); // probestream.blobs.store-bytes
    }
    Promise<Void> done = Promise.promise();
    Deque<Waiting> q = waiting.computeIfAbsent(m.experiment(), k -> new ArrayDeque<>());
    q.addLast(new Waiting(m, r, done, System.currentTimeMillis()));
    // At the bound the checkpoints partition pauses (backlog(): the blobs and batches a waiting
    // checkpoint needs may simply be further behind in their topics); records fetched before the
    // pause took effect still arrive, and past four times the bound the oldest goes to the DLQ.
    int hardCap = HARD_CAP_FACTOR * config.pending().maxCheckpoints();
    while (q.size() > hardCap) {
      Waiting oldest = q.removeFirst();
      oldest
          .done()
          .fail(
              incomplete(
                  oldest,
                  "more than "
                      + HARD_CAP_FACTOR
                      + " × probestream.pending.max-checkpoints = "
                      + hardCap
                      + " checkpoints are waiting"));
    }
    tryStart(m.experiment());
    backlog();
    return done.future();
  }

  /**
   * Tells the intake which checkpoints partitions hold an experiment with {@code
   * pending.max-checkpoints} or more checkpoints waiting (pause them), and which no longer do
   * (resume them).
   */
  public void onBacklog(java.util.function.IntConsumer full, java.util.function.IntConsumer eased) {
    this.backlogFull = full;
    this.backlogEased = eased;
  }

  private void backlog() {
    java.util.Set<Integer> now = new java.util.TreeSet<>();
    for (Deque<Waiting> q : waiting.values()) {
      if (q.size() >= config.pending().maxCheckpoints()) {
        now.add(q.peekLast().record().raw().partition());
      }
    }
    for (Integer p : now) {
      if (!backlogged.contains(p)) {
        backlogFull.accept(p);
      }
    }
    for (Integer p : backlogged) {
      if (!now.contains(p)) {
        backlogEased.accept(p);
      }
    }
    backlogged.clear();
    backlogged.addAll(now);
  }

  private void checkUri(String uri) {
    models.checkUri(uri);
  }

  /** A blob became available: start what waited for it. */
  public void onBlob(String sha256) {
    for (String experiment : List.copyOf(waiting.keySet())) {
      tryStart(experiment);
    }
  }

  /** A blob failed its checks: the checkpoints naming it fail the same way. */
  public void onBlobFailed(String sha256, PoisonException cause) {
    for (Deque<Waiting> q : waiting.values()) {
      for (Iterator<Waiting> it = q.iterator(); it.hasNext(); ) {
        Waiting w = it.next();
        if (sha256.equals(w.blobSha())) {
          it.remove();
          w.done().fail(new PoisonException(cause.reason(), cause.getMessage()));
        }
      }
    }
  }

  /** An experiment's reference set became complete. */
  public void onReferenceComplete(String experiment) {
    tryStart(experiment);
  }

  /** Sends checkpoints that waited longer than the configured age to the DLQ. */
  public void expire() {
    long cutoff = System.currentTimeMillis() - config.pending().maxAgeMs();
    for (Deque<Waiting> q : waiting.values()) {
      while (!q.isEmpty() && q.peekFirst().since() < cutoff) {
        Waiting w = q.removeFirst();
        w.done()
            .fail(
                incomplete(
                    w,
                    "it waited longer than probestream.pending.max-age-ms = "
                        + config.pending().maxAgeMs()));
      }
    }
    backlog();
  }

  /** Checkpoints waiting now, over all experiments. */
  public int waitingCount() {
    int n = 0;
    for (Deque<Waiting> q : waiting.values()) {
      n += q.size();
    }
    return n;
  }

  private PoisonException incomplete(Waiting w, String why) {
    String experiment = w.manifest().experiment();
    if (references.complete(experiment) == null) {
      return new PoisonException(
          DlqReason.REFERENCE_SET_INCOMPLETE,
          "checkpoint step "
              + w.manifest().step()
              + " of run '"
              + w.manifest().run()
              + "' dropped: the reference set of experiment '"
              + experiment
              + "' is incomplete (its final batch and every index before it must arrive) and "
              + why);
    }
    return new PoisonException(
        DlqReason.BLOB_INCOMPLETE,
        "checkpoint step "
            + w.manifest().step()
            + " of run '"
            + w.manifest().run()
            + "' dropped: model blob "
            + w.blobSha()
            + " is incomplete and "
            + why);
  }

  private void tryStart(String experiment) {
    Deque<Waiting> q = waiting.get(experiment);
    if (q == null) {
      return;
    }
    ReferenceIngest.Complete reference = references.complete(experiment);
    if (reference == null) {
      return;
    }
    for (Iterator<Waiting> it = q.iterator(); it.hasNext(); ) {
      Waiting w = it.next();
      String sha = w.blobSha();
      if (sha == null || blobs.has(sha)) {
        it.remove();
        evaluate(w, reference);
      }
    }
    if (q.isEmpty()) {
      waiting.remove(experiment);
    }
    backlog();
  }

  private void evaluate(Waiting w, ReferenceIngest.Complete reference) {
    CheckpointManifest m = w.manifest();
    long start = System.nanoTime();
    int epoch = epochs.getOrDefault(m.experiment(), 0);
    // Checkpoints compute side by side but update the multiplicity state and publish in the order
    // they started, per experiment, so results (and probestream_probe_last_step) never go back in
    // step order and the multiplicity results do not depend on which computation ends first.
    Future<Void> previous = publishing.getOrDefault(m.experiment(), Future.succeededFuture());
    Future<Void> published =
        workers
            .runRetrying(() -> compute(m, reference))
            .compose(
                c -> {
                  metrics.inferenceSeconds((System.nanoTime() - start) / 1e9);
                  return previous.transform(
                      x -> {
                        if (epochs.getOrDefault(m.experiment(), 0) != epoch) {
                          return Future.failedFuture(abandoned(m));
                        }
                        if (c.evaluation().logits() == null) {
                          return Future.succeededFuture(c.results());
                        }
                        return workers.run(
                            () -> {
                              List<ProbeResult> all = new ArrayList<>(c.results());
                              all.add(
                                  multiplicity(
                                      m,
                                      c.modelSha(),
                                      c.referenceSha(),
                                      c.evaluation(),
                                      c.now(),
                                      c.t0()));
                              return all;
                            });
                      });
                })
            .compose(
                results ->
                    epochs.getOrDefault(m.experiment(), 0) != epoch
                        ? Future.failedFuture(abandoned(m))
                        : publisher.publish(context, results));
    Future<Void> tail =
        Future.join(previous, published).transform(x -> Future.<Void>succeededFuture());
    publishing.put(m.experiment(), tail);
    tail.onComplete(x -> publishing.remove(m.experiment(), tail));
    published
        .onSuccess(
            v -> {
              metrics.checkpointSeconds((System.nanoTime() - start) / 1e9);
              LOG.info(
                  "published "
                      + String.join(", ", config.probes().enabled())
                      + " of "
                      + m.experiment()
                      + "/"
                      + m.run()
                      + " step "
                      + m.step()
                      + " ("
                      + w.record().where()
                      + ") in "
                      + (System.nanoTime() - start) / 1_000_000
                      + " ms");
              evaluated.forEach(l -> l.accept(m));
              w.done().complete();
            })
        .onFailure(w.done()::fail);
  }

  /** Blocking: the checkpoint's model, from the blob store or its URI ({@link ModelSource}). */
  ModelBytes loadModel(CheckpointManifest m) throws IOException {
    return models.load(m);
  }

  /** The manifest's layers, or those {@code "auto"} picks from the model's graph. */
  static Map<String, String> layersOf(CheckpointManifest m, byte[] model) {
    return m.autoLayers()
        ? CheckpointEvaluator.autoLayers(model, m.logits(), m.classifierWeight())
        : m.layers();
  }

  /** As {@link #layersOf(CheckpointManifest, byte[])}, on a loaded model. */
  static Map<String, String> layersOf(CheckpointManifest m, ModelBytes model) {
    return layersOf(m, model.bytes());
  }

  /** The evaluator, shared with live splits. */
  CheckpointEvaluator evaluator() {
    return evaluator;
  }

  /** Called with each checkpoint whose results were published: live splits follow it. */
  public void onEvaluated(java.util.function.Consumer<CheckpointManifest> listener) {
    evaluated.add(listener);
  }

  private static Abandoned abandoned(CheckpointManifest m) {
    return new Abandoned(
        "experiment '"
            + m.experiment()
            + "' was handed over or rewound while step "
            + m.step()
            + " of run '"
            + m.run()
            + "' was evaluated; it is read again");
  }

  /**
   * Drops what this instance holds for {@code experiments} (waiting checkpoints, the results of
   * evaluations still running, multiplicity states) before their records are read again.
   */
  public void forget(java.util.Set<String> experiments) {
    for (String e : experiments) {
      epochs.merge(e, 1, Integer::sum);
      Deque<Waiting> q = waiting.remove(e);
      if (q != null) {
        q.forEach(w -> w.done().fail(abandoned(w.manifest())));
      }
      multiplicity.keySet().removeIf(k -> ownedBy(k, e));
      multiplicityBytes.keySet().removeIf(k -> ownedBy(k, e));
    }
    backlog();
  }

  private static boolean ownedBy(String scopeKey, String experiment) {
    return scopeKey.equals(experiment) || scopeKey.startsWith(experiment + "|");
  }

  /** The experiment's multiplicity states as of their last update (scope key → bytes). */
  public Map<String, byte[]> multiplicitySnapshot(String experiment) {
    Map<String, byte[]> out = new LinkedHashMap<>();
    multiplicityBytes.forEach(
        (k, v) -> {
          if (ownedBy(k, experiment)) {
            out.put(k, v);
          }
        });
    return out;
  }

  /** Takes back multiplicity states a snapshot held; IllegalArgumentException on bad bytes. */
  public void restoreMultiplicity(Map<String, byte[]> states) {
    states.forEach(
        (k, v) -> {
          multiplicity.put(k, MultiplicityState.fromBytes(v));
          multiplicityBytes.put(k, v);
        });
  }

  /** Whether a waiting checkpoint names this model blob. */
  public boolean waitsFor(String sha256) {
    for (Deque<Waiting> q : waiting.values()) {
      for (Waiting w : q) {
        if (sha256.equals(w.blobSha())) {
          return true;
        }
      }
    }
    return false;
  }

  /** Blocking: loads the model and the reference data, runs inference and the probes. */
  private Computed compute(CheckpointManifest m, ReferenceIngest.Complete reference)
      throws IOException {
    ModelBytes model = loadModel(m);
    String modelSha =
        m.model() instanceof CheckpointManifest.Blob b
            ? b.sha256()
            : ProbeResult.sha256Hex(model.bytes());
    List<ReferenceBatch> batches = referenceBatches(reference, m.input());
    EvaluationSpec spec = spec(m, layersOf(m, model), config.probes());
    long t0 = System.nanoTime();
    CheckpointEvaluator.Evaluation e =
        evaluator.evaluate(model, spec, batches, CheckpointEvaluator.Progress.NONE);
    long latency = (System.nanoTime() - t0) / 1_000_000;
    Instant now = Instant.now();
    List<ProbeResult> results = new ArrayList<>();
    for (Map.Entry<String, Map<String, ProbeOutput>> p : e.byProbe().entrySet()) {
      for (Map.Entry<String, ProbeOutput> o : p.getValue().entrySet()) {
        results.add(
            ProbeResult.of(
                m.experiment(),
                m.run(),
                m.step(),
                modelSha,
                reference.sha256(),
                p.getKey(),
                o.getKey(),
                Headers.SPLIT_REFERENCE,
                o.getValue().metrics(),
                o.getValue().params(),
                o.getValue().joinedNotes(),
                e.device(),
                now,
                latency));
      }
    }
    return new Computed(results, e, modelSha, reference.sha256(), now, t0);
  }

  /**
   * Adds the checkpoint to its experiment's (or run's) multiplicity state and gives the updated
   * result (PROBES.md §3): every evaluated checkpoint re-forms the Rashomon set.
   */
  private ProbeResult multiplicity(
      CheckpointManifest m,
      String modelSha,
      String referenceSha,
      CheckpointEvaluator.Evaluation e,
      Instant now,
      long t0) {
    ProbestreamConfig.Multiplicity cfg = config.multiplicity();
    boolean perRun = cfg.scope().equals("run");
    CheckpointEvaluator.Logits l = e.logits();
    Candidate c;
    try {
      c = Candidate.ofLogits(m.run(), m.step(), modelSha, l.values(), l.columns(), l.labels());
    } catch (IllegalArgumentException x) {
      throw new PoisonException(DlqReason.LABEL_OUT_OF_RANGE, x.getMessage(), x);
    }
    MultiplicityState state =
        multiplicity.computeIfAbsent(
            perRun ? m.experiment() + "|" + m.run() : m.experiment(),
            k -> new MultiplicityState(cfg.epsilon(), cfg.maxModels(), perRun ? cfg.window() : 0));
    PredictiveMultiplicity.Result r;
    synchronized (state) {
      state.add(c);
      r = state.result(ForkJoinPool.commonPool());
      multiplicityBytes.put(
          perRun ? m.experiment() + "|" + m.run() : m.experiment(), state.toBytes());
    }
    Map<String, Object> params = new LinkedHashMap<>();
    params.put("epsilon", cfg.epsilon());
    params.put("scope", cfg.scope());
    if (perRun) {
      params.put("window", cfg.window());
    }
    String notes = r.notes().isEmpty() ? null : String.join("; ", r.notes());
    long latency = (System.nanoTime() - t0) / 1_000_000;
    List<ProbeResult.Member> members = new ArrayList<>();
    r.members()
        .forEach(x -> members.add(new ProbeResult.Member(x.run(), x.step(), x.modelSha256())));
    return ProbeResult.ofMembers(
        m.experiment(),
        perRun ? m.run() : null,
        m.step(),
        modelSha,
        referenceSha,
        PredictiveMultiplicity.NAME,
        Headers.SPLIT_REFERENCE,
        r.metrics(),
        params,
        notes,
        e.device(),
        now,
        latency,
        members,
        r.baseline());
  }

  /**
   * What the evaluator runs for a checkpoint: the configured probes and their settings, and the IFM
   * weights the manifest names (only for layers that are probed).
   */
  static EvaluationSpec spec(
      CheckpointManifest m, Map<String, String> layers, ProbestreamConfig.Probes probes) {
    Map<String, EvaluationSpec.IfmNames> named = new LinkedHashMap<>();
    m.complexity()
        .forEach(
            (layer, w) -> {
              if (layers.containsKey(layer)) {
                named.put(layer, new EvaluationSpec.IfmNames(w.in(), w.bias(), w.out()));
              }
            });
    return new EvaluationSpec(
        m.input(),
        layers,
        m.logits(),
        m.classifierWeight(),
        m.classes(),
        Reduction.GAP,
        new LinkedHashSet<>(probes.enabled()),
        new FeatureComplexity.Settings(
            probes.beta(),
            probes.tau(),
            probes.k(),
            probes.alpha(),
            probes.maxWidth(),
            probes.ifmDataMaxUnits()),
        named);
  }

  /**
   * The reference batches decoded for this input tensor; sets stay decoded within a 256 MiB budget,
   * since every checkpoint of an experiment reads the same one. Called from workers; synchronized.
   */
  private long decodedBytes() {
    long bytes = 0;
    for (List<ReferenceBatch> set : parsed.values()) {
      for (ReferenceBatch b : set) {
        bytes += 4L * b.input().length + 4L * b.labels().length;
      }
    }
    return bytes;
  }

  private List<ReferenceBatch> referenceBatches(ReferenceIngest.Complete reference, String input)
      throws IOException {
    String key = reference.sha256() + "|" + input;
    synchronized (parsed) {
      List<ReferenceBatch> hit = parsed.get(key);
      if (hit != null) {
        return hit;
      }
    }
    List<ReferenceBatch> batches = new ArrayList<>();
    int index = 0;
    for (Path f : reference.files()) {
      Safetensors st = Safetensors.parse(Files.readAllBytes(f));
      TensorInfo x = st.tensors().get(input);
      if (x == null || !x.dtype().isFloat()) {
        throw new PoisonException(
            DlqReason.INPUT_MISMATCH,
            "reference batch "
                + index
                + " has no floating-point tensor '"
                + input
                + "' (the manifest's input); it has "
                + st.tensors().keySet());
      }
      try {
        batches.add(new ReferenceBatch(st.floats(input), x.shape(), st.ints("labels")));
      } catch (SafetensorsException e) {
        throw new PoisonException(
            DlqReason.MALFORMED_SAFETENSORS, "reference batch " + index + ": " + e.getMessage(), e);
      }
      index++;
    }
    synchronized (parsed) {
      parsed.put(key, batches);
      // Keep decoded sets while they fit the cache budget (the newest always stays).
      while (parsed.size() > 1 && decodedBytes() > DECODED_CACHE_BYTES) {
        parsed.remove(parsed.keySet().iterator().next());
      }
    }
    return batches;
  }
}
