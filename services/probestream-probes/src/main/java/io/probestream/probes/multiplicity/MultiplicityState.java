package io.probestream.probes.multiplicity;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ForkJoinPool;

/**
 * The candidates of one experiment's predictive multiplicity that can still matter (PROBES.md
 * §3.4): a model that leaves the ε-set never returns (the best loss only decreases), so only the
 * members are kept, at most {@code maxModels} of them (past it the member with the highest loss is
 * dropped, and results say so). With a {@code window} W it keeps instead the last W checkpoints of
 * one run (the window variant of §3.1). Serialisable with {@link #toBytes()} / {@link
 * #fromBytes(byte[])}. Not thread-safe: one owner feeds it.
 */
public final class MultiplicityState {
  private static final int FORMAT = 1;

  private final double epsilon;
  private final int maxModels;
  private final int window; // 0: the experiment scope
  private final List<Candidate> kept = new ArrayList<>(); // canonical order
  private final Set<String> seen = new LinkedHashSet<>();
  private long nonfinite;
  private long dropped;

  /**
   * @param window 0 for the experiment scope, else W ≥ 1: the last W checkpoints of one run
   */
  public MultiplicityState(double epsilon, int maxModels, int window) {
    if (!(epsilon >= 0) || !Double.isFinite(epsilon)) {
      throw new IllegalArgumentException("epsilon = " + epsilon + ": must be a finite number ≥ 0");
    }
    if (maxModels < 1) {
      throw new IllegalArgumentException("max models = " + maxModels + ": must be at least 1");
    }
    if (window < 0) {
      throw new IllegalArgumentException("window = " + window + ": must be ≥ 1 (or 0: none)");
    }
    this.epsilon = epsilon;
    this.maxModels = maxModels;
    this.window = window;
  }

  private static String key(Candidate c) {
    return c.run() + "@" + c.step() + "@" + (c.modelSha256() == null ? "" : c.modelSha256());
  }

  /**
   * Adds an evaluated checkpoint (again: replaces its earlier record, counted once) and drops what
   * can no longer matter.
   */
  public void add(Candidate c) {
    String key = key(c);
    boolean again = !seen.add(key);
    kept.removeIf(k -> key(k).equals(key));
    if (!c.finite()) {
      if (!again) {
        nonfinite++;
      }
      return;
    }
    int at = 0;
    while (at < kept.size() && Candidate.CANONICAL.compare(kept.get(at), c) < 0) {
      at++;
    }
    kept.add(at, c);
    if (window > 0) {
      Deque<Candidate> last = new ArrayDeque<>(kept);
      while (last.size() > window) {
        last.removeFirst(); // canonical order is step order within a run
      }
      kept.retainAll(last);
      return;
    }
    double best = Double.POSITIVE_INFINITY;
    for (Candidate k : kept) {
      best = Math.min(best, k.loss());
    }
    double bound = best + epsilon;
    kept.removeIf(k -> k.loss() > bound);
    while (kept.size() > maxModels) {
      Candidate worst = kept.get(0);
      for (Candidate k : kept) {
        if (k.loss() >= worst.loss()) {
          worst = k; // the highest loss; among ties the latest
        }
      }
      kept.remove(worst);
      dropped++;
    }
  }

  /** The candidates kept, in canonical order. */
  public List<Candidate> candidates() {
    return List.copyOf(kept);
  }

  /** PROBES.md §3 over what is kept; notes say when members were dropped at the cap. */
  public PredictiveMultiplicity.Result result(ForkJoinPool pool) {
    PredictiveMultiplicity.Result r =
        PredictiveMultiplicity.compute(kept, epsilon, seen.size(), nonfinite, pool);
    if (dropped == 0) {
      return r;
    }
    List<String> notes = new ArrayList<>(r.notes());
    notes.add(
        dropped
            + " member(s) with the highest loss dropped at max-models = "
            + maxModels
            + " (probestream.multiplicity.max-models)");
    return new PredictiveMultiplicity.Result(r.metrics(), r.members(), r.baseline(), notes);
  }

  /** Float32 probabilities and bookkeeping held: Σ N·K·4 bytes over the kept candidates. */
  public long bytes() {
    long b = 0;
    for (Candidate c : kept) {
      b += 4L * c.probs().length;
    }
    return b;
  }

  public byte[] toBytes() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(FORMAT);
      out.writeDouble(epsilon);
      out.writeInt(maxModels);
      out.writeInt(window);
      out.writeLong(nonfinite);
      out.writeLong(dropped);
      out.writeInt(seen.size());
      for (String s : seen) {
        out.writeUTF(s);
      }
      out.writeInt(kept.size());
      for (Candidate c : kept) {
        c.write(out);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** The state {@link #toBytes()} wrote; IllegalArgumentException if the bytes are not one. */
  public static MultiplicityState fromBytes(byte[] bytes) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
      int format = in.readInt();
      if (format != FORMAT) {
        throw new IllegalArgumentException(
            "multiplicity state format " + format + "; this version reads " + FORMAT);
      }
      MultiplicityState s = new MultiplicityState(in.readDouble(), in.readInt(), in.readInt());
      s.nonfinite = in.readLong();
      s.dropped = in.readLong();
      int seen = in.readInt();
      for (int i = 0; i < seen; i++) {
        s.seen.add(in.readUTF());
      }
      int kept = in.readInt();
      for (int i = 0; i < kept; i++) {
        s.kept.add(Candidate.read(in));
      }
      return s;
    } catch (IOException e) {
      throw new IllegalArgumentException("not a multiplicity state: " + e.getMessage(), e);
    }
  }
}
