package io.probestream.service.ingest;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.DType;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.safetensors.SafetensorsException;
import io.probestream.contracts.safetensors.TensorInfo;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.store.ReferenceStore;
import io.probestream.service.view.ReferenceBoard;
import io.probestream.service.work.Workers;
import io.vertx.core.Future;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Collects each experiment's reference set from {@code batches} (split {@code reference}): checks
 * every batch on arrival, stores it before its record counts as done, and declares the set complete
 * once the final batch and every index before it are stored (DESIGN.md §3). Owned by the intake
 * verticle's event loop.
 */
public final class ReferenceIngest {
  private static final int MAX_BATCH_INDEX = 1_000_000;

  private final ReferenceStore store;
  private final Workers workers;
  private final ProbestreamConfig.Limits limits;
  private final ReferenceBoard board;
  private final Consumer<String> onComplete;
  private final Map<String, ReferenceSet> sets = new HashMap<>();
  private final io.probestream.service.work.InOrder checkedInOrder =
      new io.probestream.service.work.InOrder(); // by experiment

  /**
   * One stored batch: the sha256 of its bytes, its sample count, and its file (null while written).
   */
  record Batch(String sha256, int rows, Path file) {}

  /** An experiment's reference set as far as it has arrived. */
  static final class ReferenceSet {
    final TreeMap<Integer, Batch> batches = new TreeMap<>();
    Integer finalIndex;
    long samples;
    String sha256; // set once complete
    boolean completing;

    boolean stored() {
      if (finalIndex == null || batches.size() != finalIndex + 1) {
        return false;
      }
      for (Batch b : batches.values()) {
        if (b.file() == null) {
          return false;
        }
      }
      return true;
    }
  }

  /** A complete reference set: its identity and its batch files in index order. */
  public record Complete(String sha256, List<Path> files, long samples) {}

  public ReferenceIngest(
      ReferenceStore store,
      Workers workers,
      ProbestreamConfig.Limits limits,
      ReferenceBoard board,
      Consumer<String> onComplete) {
    this.store = store;
    this.workers = workers;
    this.limits = limits;
    this.board = board;
    this.onComplete = onComplete;
  }

  /**
   * Drops an experiment's reference set and deletes its stored batches (on a worker); a later set
   * for the same experiment starts afresh.
   */
  public Future<Void> forget(String experiment) {
    sets.remove(experiment);
    board.forget(experiment);
    return workers.run(
        () -> {
          store.delete(experiment);
          return null;
        });
  }

  /** The complete reference set of an experiment, or null while it is not complete. */
  public Complete complete(String experiment) {
    ReferenceSet s = sets.get(experiment);
    if (s == null || s.sha256 == null) {
      return null;
    }
    List<Path> files = new ArrayList<>();
    for (Batch b : s.batches.values()) {
      files.add(b.file());
    }
    return new Complete(s.sha256, files, s.samples);
  }

  /** What a batch holds, learnt off the event loop. */
  public record Inspected(String sha256, int rows) {}

  /** A batch found in the store at start-up. */
  public record Restored(int index, boolean isFinal, Inspected inspected, Path file) {}

  /**
   * Rebuilds the sets stored before a restart (blocking: reads every stored batch); call from a
   * worker, then hand the result to {@link #restore}.
   */
  public static Map<String, List<Restored>> scan(
      Map<String, TreeMap<Integer, ReferenceStore.Stored>> found) throws java.io.IOException {
    Map<String, List<Restored>> out = new HashMap<>();
    for (Map.Entry<String, TreeMap<Integer, ReferenceStore.Stored>> e : found.entrySet()) {
      List<Restored> rows = new ArrayList<>();
      for (Map.Entry<Integer, ReferenceStore.Stored> b : e.getValue().entrySet()) {
        Path file = b.getValue().file();
        Inspected i = inspect(Files.readAllBytes(file));
        rows.add(new Restored(b.getKey(), b.getValue().isFinal(), i, file));
      }
      out.put(e.getKey(), rows);
    }
    return out;
  }

  /** Takes in what {@link #scan} found; completes the sets that were complete. */
  public void restore(Map<String, List<Restored>> scanned) {
    scanned.forEach(
        (experiment, rows) -> {
          ReferenceSet s = sets.computeIfAbsent(experiment, k -> new ReferenceSet());
          board.incomplete(experiment);
          for (Restored row : rows) {
            Inspected i = row.inspected();
            s.batches.put(row.index(), new Batch(i.sha256(), i.rows(), row.file()));
            s.samples += i.rows();
            if (row.isFinal()) {
              s.finalIndex = row.index();
            }
          }
          maybeComplete(experiment, s);
        });
  }

  public Future<Void> onBatch(InputRecord r) {
    r.requireCloudEvent(Headers.TYPE_BATCH);
    String experiment = r.require(Headers.EXPERIMENT);
    String key = r.requireKey();
    if (!key.equals(experiment)) {
      throw new PoisonException(
          DlqReason.KEY_MISMATCH,
          "record key '"
              + key
              + "' is not the experiment '"
              + experiment
              + "' of header "
              + Headers.EXPERIMENT);
    }
    String split = r.require(Headers.SPLIT);
    if (!split.equals(Headers.SPLIT_REFERENCE)) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER,
          "header " + Headers.SPLIT + " = '" + split + "': expected reference, train or eval");
    }
    int index = (int) r.requireLong(Headers.BATCH_INDEX, 0, MAX_BATCH_INDEX);
    String fin = r.header(Headers.FINAL);
    if (fin != null && !fin.equalsIgnoreCase("true") && !fin.equalsIgnoreCase("false")) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER,
          "header " + Headers.FINAL + " = '" + fin + "': expected true or false");
    }
    boolean isFinal = fin != null && fin.equalsIgnoreCase("true");
    byte[] bytes = r.value();
    if (bytes.length > limits.maxBatchBytes()) {
      throw new PoisonException(
          DlqReason.PAYLOAD_TOO_LARGE,
          "batch is "
              + bytes.length
              + " bytes; limit probestream.limits.max-batch-bytes = "
              + limits.maxBatchBytes());
    }
    // Batches are inspected side by side, but checked against the set in arrival order: "after
    // the final batch" and "already held" depend on which came first.
    return checkedInOrder.after(
        experiment,
        workers.run(() -> inspect(bytes)),
        i -> accept(experiment, index, isFinal, i, bytes));
  }

  /**
   * Checks a batch on arrival: safetensors structure, integer 1-D labels, at least one floating
   * input tensor with one row per label, every input value finite (DESIGN.md §3, §7).
   */
  public static Inspected inspect(byte[] bytes) {
    Safetensors st;
    try {
      st = Safetensors.parse(bytes);
    } catch (SafetensorsException e) {
      throw new PoisonException(DlqReason.MALFORMED_SAFETENSORS, e.getMessage(), e);
    }
    TensorInfo labels = st.tensors().get("labels");
    if (labels == null) {
      throw new PoisonException(
          DlqReason.MALFORMED_SAFETENSORS,
          "batch has no 'labels' tensor; it has " + st.tensors().keySet());
    }
    if (labels.dtype() != DType.I64 && labels.dtype() != DType.I32) {
      throw new PoisonException(
          DlqReason.WRONG_DTYPE, "tensor 'labels' is " + labels.dtype() + "; I64 or I32 is needed");
    }
    if (labels.rank() != 1) {
      throw new PoisonException(
          DlqReason.SHAPE_MISMATCH,
          "tensor 'labels' has shape "
              + java.util.Arrays.toString(labels.shape())
              + "; one label per sample (rank 1) is needed");
    }
    int rows = (int) labels.dim(0);
    int inputs = 0;
    for (TensorInfo t : st.tensors().values()) {
      if (t == labels) {
        continue;
      }
      if (!t.dtype().isFloat()) {
        throw new PoisonException(
            DlqReason.WRONG_DTYPE,
            "tensor '" + t.name() + "' is " + t.dtype() + "; input tensors must be F32 or F64");
      }
      if (t.rank() < 1 || t.dim(0) != rows) {
        throw new PoisonException(
            DlqReason.SHAPE_MISMATCH,
            "tensor '"
                + t.name()
                + "' has shape "
                + java.util.Arrays.toString(t.shape())
                + "; its first dimension must be the "
                + rows
                + " samples of 'labels'");
      }
      checkFinite(t, st.floats(t.name()), rows);
      inputs++;
    }
    if (inputs == 0) {
      throw new PoisonException(
          DlqReason.MALFORMED_SAFETENSORS, "batch has no input tensor besides 'labels'");
    }
    return new Inspected(ProbeResult.sha256Hex(bytes), rows);
  }

  private static void checkFinite(TensorInfo t, float[] values, int rows) {
    long bad = 0;
    int first = -1;
    for (int i = 0; i < values.length; i++) {
      if (!Float.isFinite(values[i]) && bad++ == 0) {
        first = i;
      }
    }
    if (bad > 0) {
      int perRow = rows == 0 ? 1 : values.length / rows;
      throw new PoisonException(
          DlqReason.NONFINITE_INPUT,
          "tensor '"
              + t.name()
              + "' holds "
              + bad
              + " non-finite value(s), the first ("
              + values[first]
              + ") in sample "
              + first / perRow
              + "; inputs must be finite");
    }
  }

  private Future<Void> accept(
      String experiment, int index, boolean isFinal, Inspected i, byte[] bytes) {
    ReferenceSet s = sets.computeIfAbsent(experiment, k -> new ReferenceSet());
    Batch held = s.batches.get(index);
    if (held != null) {
      if (held.sha256().equals(i.sha256())) {
        return Future.succeededFuture(); // an identical resend is ignored
      }
      throw new PoisonException(
          DlqReason.REFERENCE_CONFLICT,
          "reference batch "
              + index
              + " of experiment '"
              + experiment
              + "' is already held with other values; a reference set is immutable");
    }
    if (s.finalIndex != null && index > s.finalIndex) {
      throw new PoisonException(
          DlqReason.REFERENCE_CONFLICT,
          "reference batch "
              + index
              + " comes after the final batch "
              + s.finalIndex
              + " of experiment '"
              + experiment
              + "'");
    }
    if (isFinal && s.finalIndex != null) {
      throw new PoisonException(
          DlqReason.REFERENCE_CONFLICT,
          "batch " + index + " is marked final but batch " + s.finalIndex + " already is");
    }
    if (isFinal && !s.batches.isEmpty() && s.batches.lastKey() > index) {
      throw new PoisonException(
          DlqReason.REFERENCE_CONFLICT,
          "batch "
              + index
              + " is marked final but batch "
              + s.batches.lastKey()
              + " is already held");
    }
    if (s.samples + i.rows() > limits.maxReferenceSamples()) {
      throw new PoisonException(
          DlqReason.REFERENCE_SET_TOO_LARGE,
          "reference set of experiment '"
              + experiment
              + "' would hold "
              + (s.samples + i.rows())
              + " samples; limit probestream.limits.max-reference-samples = "
              + limits.maxReferenceSamples());
    }
    board.incomplete(experiment);
    s.batches.put(index, new Batch(i.sha256(), i.rows(), null));
    s.samples += i.rows();
    if (isFinal) {
      s.finalIndex = index;
    }
    return workers
        .runRetrying(() -> store.write(experiment, index, isFinal, bytes))
        .recover(
            e -> {
              s.batches.remove(index);
              s.samples -= i.rows();
              if (isFinal) {
                s.finalIndex = null;
              }
              return Future.failedFuture(e);
            })
        .map(
            file -> {
              s.batches.put(index, new Batch(i.sha256(), i.rows(), file));
              maybeComplete(experiment, s);
              return null;
            });
  }

  private void maybeComplete(String experiment, ReferenceSet s) {
    if (s.sha256 != null || s.completing || !s.stored()) {
      return;
    }
    s.completing = true;
    List<Path> files = new ArrayList<>();
    for (Batch b : s.batches.values()) {
      files.add(b.file());
    }
    workers
        .runRetrying(() -> identity(files))
        .onComplete(
            done -> {
              s.completing = false;
              if (done.succeeded()) {
                s.sha256 = done.result();
                board.complete(experiment);
                onComplete.accept(experiment);
              }
            });
  }

  /** sha256 over the batch values in index order (DESIGN.md §3, reference_sha256). */
  static String identity(List<Path> files) throws java.io.IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    for (Path f : files) {
      md.update(Files.readAllBytes(f));
    }
    return HexFormat.of().formatHex(md.digest());
  }
}
