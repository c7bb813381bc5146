package io.probestream.service.engine;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.safetensors.TensorInfo;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.inference.CheckpointEvaluator;
import io.probestream.inference.EvaluationSpec;
import io.probestream.inference.ModelBytes;
import io.probestream.inference.Reduction;
import io.probestream.inference.ReferenceBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.CollapseMoments;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.service.ingest.ReferenceIngest;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.work.Workers;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Live splits ({@code train}, {@code eval}): each batch is evaluated against the latest checkpoint
 * of its run ({@code ce_run}) whose results were published, and its pass-1 statistics are merged
 * per (checkpoint, split, layer) into a result whose {@code samples} grows with every batch. nc1
 * and nc4 need the same samples twice, so they are null with a note. A batch whose run has no
 * checkpoint yet waits, bounded by the pending limits. Owned by the intake verticle's event loop.
 */
public final class LiveSplits {
  private final Context context;
  private final ProbestreamConfig config;
  private final Workers workers;
  private final CheckpointEngine engine;
  private final ResultPublisher publisher;
  private final Map<String, CheckpointManifest> latest = new HashMap<>(); // experiment|run
  private final Map<String, Deque<Waiting>> waiting = new LinkedHashMap<>(); // experiment|run
  private final Map<String, Live> state = new HashMap<>(); // experiment|run|split
  // experiment|run|split → its last publish: results of one key go out in merge order
  private final Map<String, Future<Void>> publishing = new HashMap<>();
  private final io.probestream.service.work.InOrder mergedInOrder =
      new io.probestream.service.work.InOrder(); // by experiment|run|split

  private record Waiting(InputRecord record, String split, Promise<Void> done, long since) {}

  /** The merged pass-1 state of one checkpoint on one live split. */
  private static final class Live {
    final long step;
    final Map<String, CollapseMoments> moments = new LinkedHashMap<>();
    int batches;

    Live(long step) {
      this.step = step;
    }
  }

  public LiveSplits(
      Context context,
      ProbestreamConfig config,
      Workers workers,
      CheckpointEngine engine,
      ResultPublisher publisher) {
    this.context = context;
    this.config = config;
    this.workers = workers;
    this.engine = engine;
    this.publisher = publisher;
    engine.onEvaluated(this::onCheckpoint);
  }

  private static String key(String experiment, String run) {
    return experiment + "|" + run;
  }

  /** A checkpoint's results were published: later live batches of its run use it. */
  void onCheckpoint(CheckpointManifest m) {
    String k = key(m.experiment(), m.run());
    CheckpointManifest held = latest.get(k);
    if (held != null && held.step() > m.step()) {
      return; // an older checkpoint arriving late does not replace a newer one
    }
    latest.put(k, m);
    Deque<Waiting> q = waiting.remove(k);
    if (q != null) {
      for (Waiting w : q) {
        evaluate(w.record(), w.split(), m).onComplete(w.done());
      }
    }
  }

  /**
   * Drops what this instance holds for {@code experiments} (waiting batches, the checkpoints they
   * follow, merged statistics) before their records are read again elsewhere or here.
   */
  public void forget(java.util.Set<String> experiments) {
    for (String e : experiments) {
      String prefix = e + "|";
      latest.keySet().removeIf(k -> k.startsWith(prefix));
      state.keySet().removeIf(k -> k.startsWith(prefix));
      for (java.util.Iterator<Map.Entry<String, Deque<Waiting>>> it = waiting.entrySet().iterator();
          it.hasNext(); ) {
        Map.Entry<String, Deque<Waiting>> w = it.next();
        if (w.getKey().startsWith(prefix)) {
          it.remove();
          w.getValue()
              .forEach(
                  x ->
                      x.done()
                          .fail(
                              new CheckpointEngine.Abandoned(
                                  "experiment '" + e + "' was handed over or rewound")));
        }
      }
    }
  }

  /** Follows a checkpoint evaluated before a handover (from the experiment's snapshot). */
  public void follow(CheckpointManifest m) {
    onCheckpoint(m);
  }

  public Future<Void> onBatch(InputRecord r, String split) {
    r.requireCloudEvent(Headers.TYPE_BATCH);
    String experiment = r.require(Headers.EXPERIMENT);
    String recordKey = r.requireKey();
    if (!recordKey.equals(experiment)) {
      throw new PoisonException(
          DlqReason.KEY_MISMATCH,
          "record key '"
              + recordKey
              + "' is not the experiment '"
              + experiment
              + "' of header "
              + Headers.EXPERIMENT);
    }
    String run = r.require(Headers.RUN);
    if (r.value().length > config.limits().maxBatchBytes()) {
      throw new PoisonException(
          DlqReason.PAYLOAD_TOO_LARGE,
          "batch is "
              + r.value().length
              + " bytes; limit probestream.limits.max-batch-bytes = "
              + config.limits().maxBatchBytes());
    }
    CheckpointManifest m = latest.get(key(experiment, run));
    if (m != null) {
      return evaluate(r, split, m);
    }
    Promise<Void> done = Promise.promise();
    Deque<Waiting> q = waiting.computeIfAbsent(key(experiment, run), k -> new ArrayDeque<>());
    q.addLast(new Waiting(r, split, done, System.currentTimeMillis()));
    while (q.size() > config.pending().maxCheckpoints()) {
      q.removeFirst()
          .done()
          .fail(
              missing(
                  experiment,
                  run,
                  "more than probestream.pending.max-checkpoints = "
                      + config.pending().maxCheckpoints()
                      + " live batches are waiting"));
    }
    return done.future();
  }

  /** Live batches that waited longer than the pending age go to the DLQ. */
  public void expire() {
    long cutoff = System.currentTimeMillis() - config.pending().maxAgeMs();
    for (Map.Entry<String, Deque<Waiting>> e : waiting.entrySet()) {
      Deque<Waiting> q = e.getValue();
      while (!q.isEmpty() && q.peekFirst().since() < cutoff) {
        String[] parts = e.getKey().split("\\|", 2);
        q.removeFirst()
            .done()
            .fail(
                missing(
                    parts[0],
                    parts[1],
                    "it waited longer than"
                        + " probestream.pending.max-age-ms = "
                        + config.pending().maxAgeMs()));
      }
    }
  }

  private static PoisonException missing(String experiment, String run, String why) {
    return new PoisonException(
        DlqReason.CHECKPOINT_MISSING,
        "live batch of run '"
            + run
            + "' (experiment '"
            + experiment
            + "') dropped: no checkpoint of"
            + " that run has been evaluated and "
            + why);
  }

  private Future<Void> evaluate(InputRecord r, String split, CheckpointManifest m) {
    byte[] bytes = r.value();
    CheckpointEvaluator evaluator = engine.evaluator();
    long start = System.nanoTime();
    Future<CheckpointEvaluator.PassOne> evaluated =
        workers.runRetrying(
            () -> {
              ReferenceIngest.inspect(bytes); // dtype, shape, finite inputs: the reference rules
              Safetensors st = Safetensors.parse(bytes);
              TensorInfo x = st.tensors().get(m.input());
              if (x == null) {
                throw new PoisonException(
                    DlqReason.INPUT_MISMATCH,
                    "live batch has no tensor '"
                        + m.input()
                        + "' (the checkpoint's input); it has "
                        + st.tensors().keySet());
              }
              ReferenceBatch batch =
                  new ReferenceBatch(st.floats(m.input()), x.shape(), st.ints("labels"));
              ModelBytes model = engine.loadModel(m);
              EvaluationSpec spec =
                  new EvaluationSpec(
                      m.input(),
                      CheckpointEngine.layersOf(m, model),
                      m.logits(),
                      m.classifierWeight(),
                      m.classes(),
                      Reduction.GAP);
              return evaluator.passOne(model, spec, batch);
            });
    // Evaluated side by side, merged in arrival order, so the result with live_batches = n holds
    // the first n batches whichever evaluation ends first.
    String k = key(m.experiment(), m.run()) + "|" + split;
    return mergedInOrder.after(
        k, evaluated, one -> publish(m, split, one, (System.nanoTime() - start) / 1_000_000));
  }

  private Future<Void> publish(
      CheckpointManifest m, String split, CheckpointEvaluator.PassOne one, long latency) {
    String k = key(m.experiment(), m.run()) + "|" + split;
    Live live = state.get(k);
    if (live != null && m.step() < live.step) {
      // Evaluated against a checkpoint that a newer one replaced meanwhile: its sums are closed
      // (reopening them would give a second result with the same id), so it adds to none.
      java.util.logging.Logger.getLogger(LiveSplits.class.getName())
          .info(
              "live batch of "
                  + k
                  + " evaluated on step "
                  + m.step()
                  + " after step "
                  + live.step
                  + " took over; it is not added");
      return Future.succeededFuture();
    }
    if (live == null || live.step != m.step()) {
      live = new Live(m.step()); // a newer checkpoint starts its live statistics afresh
      state.put(k, live);
    }
    live.batches++;
    int batches = live.batches;
    // Merging is cheap and stays here, in arrival order; the metrics (an SVD per layer) are
    // computed on a worker, and results of one key are published in merge order.
    Map<String, CollapseMoments> merged = new LinkedHashMap<>();
    for (Map.Entry<String, CollapseMoments> e : one.moments().entrySet()) {
      merged.put(e.getKey(), live.moments.merge(e.getKey(), e.getValue(), CollapseMoments::merge));
    }
    String modelSha = m.model() instanceof CheckpointManifest.Blob b ? b.sha256() : null;
    Future<List<ProbeResult>> built =
        workers.run(
            () -> {
              List<ProbeResult> results = new ArrayList<>();
              Instant now = Instant.now();
              for (Map.Entry<String, CollapseMoments> e : merged.entrySet()) {
                String layer = e.getKey();
                boolean feeds = one.feedsClassifier().get(layer);
                Map<String, Object> params = new LinkedHashMap<>();
                params.put("reduction", one.reductions().get(layer));
                params.put("live_batches", batches); // each update is its own result (and id)
                ProbeOutput out =
                    NeuralCollapseProbe.freeze(
                            e.getValue(), feeds, feeds ? one.classifierWeight() : null)
                        .finishPassOne(params);
                results.add(
                    ProbeResult.of(
                        m.experiment(),
                        m.run(),
                        m.step(),
                        modelSha,
                        null,
                        NeuralCollapseProbe.NAME,
                        layer,
                        split,
                        out.metrics(),
                        out.params(),
                        out.joinedNotes(),
                        one.device(),
                        now,
                        latency));
              }
              return results;
            });
    Future<Void> previous = publishing.getOrDefault(k, Future.succeededFuture());
    Future<Void> published =
        built.compose(results -> previous.transform(x -> publisher.publish(context, results)));
    Future<Void> tail = published.transform(x -> Future.<Void>succeededFuture());
    publishing.put(k, tail);
    tail.onComplete(x -> publishing.remove(k, tail));
    return published;
  }
}
