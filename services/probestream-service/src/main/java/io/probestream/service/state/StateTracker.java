package io.probestream.service.state;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * What each experiment's next snapshot holds, kept up to date as input records finish: where its
 * reference batches and model blob chunks lie, which records after the committed offsets already
 * produced their results, the manifests live splits follow. Owned by the intake verticle's event
 * loop; not thread-safe.
 */
public final class StateTracker {
  /** Unused blobs kept per experiment beyond those a checkpoint still needs. */
  static final int SPARE_BLOBS = 8;

  private final String writer;
  private final Map<String, Tracked> experiments = new HashMap<>();

  private static final class Tracked {
    int partition = -1;
    long seq;
    boolean dirty;
    final TreeMap<Integer, Long> reference = new TreeMap<>();
    final LinkedHashMap<String, TreeSet<Long>> blobs = new LinkedHashMap<>(); // oldest first
    final Map<String, TreeSet<Long>> done = new HashMap<>(); // topic → offsets
    final Map<String, String> latest = new LinkedHashMap<>(); // run → manifest JSON
    final Map<String, String> latestBlob = new HashMap<>(); // run → its blob sha
    final Set<String> used = new java.util.HashSet<>(); // blobs a checkpoint was evaluated on
  }

  public StateTracker(String writer) {
    this.writer = writer;
  }

  public String writer() {
    return writer;
  }

  private Tracked at(String experiment, int partition) {
    Tracked t = experiments.computeIfAbsent(experiment, k -> new Tracked());
    t.partition = partition;
    return t;
  }

  /** A reference batch was stored (the first record of an index wins). */
  public void referenceBatch(String experiment, int partition, int index, long offset) {
    Tracked t = at(experiment, partition);
    if (t.reference.putIfAbsent(index, offset) == null) {
      t.dirty = true;
    }
  }

  /** A model blob chunk was stored. */
  public void blobChunk(String experiment, int partition, String sha, long offset) {
    Tracked t = at(experiment, partition);
    if (t.blobs.computeIfAbsent(sha, k -> new TreeSet<>()).add(offset)) {
      t.dirty = true;
    }
  }

  /** An input record's results were acknowledged. */
  public void done(String experiment, int partition, String topic, long offset) {
    Tracked t = at(experiment, partition);
    t.done.computeIfAbsent(topic, k -> new TreeSet<>()).add(offset);
    t.dirty = true;
  }

  /**
   * A checkpoint was evaluated: live splits of its run follow it, and blobs no checkpoint needs any
   * more ({@code needed}: named by a waiting checkpoint) leave the snapshot.
   */
  public void evaluated(
      String experiment,
      String run,
      String manifestJson,
      String blobSha,
      Predicate<String> needed) {
    Tracked t = experiments.get(experiment);
    if (t == null) {
      return;
    }
    t.latest.put(run, manifestJson);
    if (blobSha != null) {
      t.latestBlob.put(run, blobSha);
    }
    t.dirty = true;
    if (blobSha != null) {
      t.used.add(blobSha);
    }
    Set<String> keep = new java.util.HashSet<>(t.latestBlob.values());
    // Used blobs go unless a run's live splits follow them or a waiting checkpoint names them.
    t.blobs
        .keySet()
        .removeIf(sha -> t.used.contains(sha) && !keep.contains(sha) && !needed.test(sha));
    t.used.retainAll(t.blobs.keySet());
    // Blobs no checkpoint has used yet stay, up to SPARE_BLOBS of them (the oldest go first).
    List<String> spare = new ArrayList<>();
    for (String sha : t.blobs.keySet()) {
      if (!t.used.contains(sha) && !needed.test(sha)) {
        spare.add(sha);
      }
    }
    for (int i = 0; i < spare.size() - SPARE_BLOBS; i++) {
      t.blobs.remove(spare.get(i));
    }
  }

  /** Whether the record at {@code topic}/{@code offset} of this experiment already had results. */
  public boolean isDone(String experiment, String topic, long offset) {
    Tracked t = experiments.get(experiment);
    if (t == null) {
      return false;
    }
    TreeSet<Long> d = t.done.get(topic);
    return d != null && d.contains(offset);
  }

  /** Offsets up to {@code position} of {@code topic}/{@code partition} are committed. */
  public void committed(String topic, int partition, long position) {
    for (Tracked t : experiments.values()) {
      if (t.partition == partition) {
        TreeSet<Long> d = t.done.get(topic);
        if (d != null && !d.isEmpty() && d.first() < position) {
          d.headSet(position).clear();
          t.dirty = true;
        }
      }
    }
  }

  /**
   * The snapshots of experiments changed since the last call ({@code multiplicity} gives their
   * multiplicity states); each one's sequence number goes up.
   */
  public List<Snapshot> drainDirty(Function<String, Map<String, byte[]>> multiplicity) {
    List<Snapshot> out = new ArrayList<>();
    experiments.forEach(
        (e, t) -> {
          if (t.dirty) {
            t.dirty = false;
            t.seq++;
            out.add(snapshot(e, t, multiplicity.apply(e)));
          }
        });
    return out;
  }

  /** Whether any experiment changed since its last snapshot. */
  public boolean dirty() {
    for (Tracked t : experiments.values()) {
      if (t.dirty) {
        return true;
      }
    }
    return false;
  }

  /** Marks experiments dirty again (their snapshot was not written). */
  public void markDirty(List<Snapshot> unwritten) {
    for (Snapshot s : unwritten) {
      Tracked t = experiments.get(s.experiment());
      if (t != null) {
        t.dirty = true;
      }
    }
  }

  private Snapshot snapshot(String experiment, Tracked t, Map<String, byte[]> multiplicity) {
    Map<String, List<Long>> blobs = new LinkedHashMap<>();
    t.blobs.forEach((sha, o) -> blobs.put(sha, List.copyOf(o)));
    Map<String, List<Long>> done = new LinkedHashMap<>();
    t.done.forEach(
        (topic, o) -> {
          if (!o.isEmpty()) {
            done.put(topic, List.copyOf(o));
          }
        });
    return new Snapshot(
        experiment, writer, t.seq, t.partition, t.reference, blobs, done, multiplicity, t.latest);
  }

  /** Takes a snapshot's state as this experiment's (replacing what was tracked). */
  public void restore(Snapshot s, Map<String, String> latestBlobs) {
    Tracked t = new Tracked();
    t.partition = s.partition();
    t.seq = s.seq();
    t.reference.putAll(s.reference());
    s.blobs().forEach((sha, o) -> t.blobs.put(sha, new TreeSet<>(o)));
    s.done().forEach((topic, o) -> t.done.put(topic, new TreeSet<>(o)));
    t.latest.putAll(s.latest());
    t.latestBlob.putAll(latestBlobs);
    t.used.addAll(latestBlobs.values());
    experiments.put(s.experiment(), t);
  }

  /** The experiments whose records are on one of these input partitions. */
  public Set<String> on(Set<Integer> partitions) {
    Set<String> out = new java.util.TreeSet<>();
    experiments.forEach(
        (e, t) -> {
          if (partitions.contains(t.partition)) {
            out.add(e);
          }
        });
    return out;
  }

  public void forget(String experiment) {
    experiments.remove(experiment);
  }

  public Set<String> experiments() {
    return Set.copyOf(experiments.keySet());
  }
}
