package io.probestream.inference;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * ORT sessions shared by every evaluation of the same model bytes (same exposed outputs, device,
 * threads and data directory), least recently used first out once their estimated native memory
 * exceeds the budget. A session is closed only after its last user released it: closing one while
 * {@code run} is in flight crashes the JVM (onnxruntime-java notes). Thread-safe.
 */
public final class SessionCache implements AutoCloseable {
  /** Native memory per model byte, from measurements (a 50 MB model took about 88 MB a session). */
  static final int COST_PER_MODEL_BYTE = 2;

  private final long budgetBytes;
  private final Map<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true); // LRU order
  private long held;
  private long hits;
  private long misses;

  private static final class Entry {
    final ModelSession session;
    final long cost;
    int users;
    boolean evicted;

    Entry(ModelSession session, long cost) {
      this.session = session;
      this.cost = cost;
    }
  }

  /**
   * A session in use; closing the lease releases it (and closes it if it was evicted meanwhile).
   */
  public final class Lease implements AutoCloseable {
    private final Entry entry;
    private boolean released;

    private Lease(Entry entry) {
      this.entry = entry;
    }

    public ModelSession session() {
      return entry.session;
    }

    @Override
    public void close() {
      synchronized (SessionCache.this) {
        if (released) {
          return;
        }
        released = true;
        entry.users--;
        if (entry.evicted && entry.users == 0) {
          entry.session.close();
        }
      }
    }
  }

  /**
   * @param budgetBytes estimated native memory the idle sessions may hold; 0 keeps none
   */
  public SessionCache(long budgetBytes) {
    this.budgetBytes = budgetBytes;
  }

  /**
   * The cached session for {@code key}, or a new one from {@code open} (opened under the cache's
   * lock, so one model is never opened twice at once). Release it by closing the lease.
   */
  public synchronized Lease acquire(String key, long modelBytes, Supplier<ModelSession> open) {
    Entry e = entries.get(key);
    if (e == null) {
      misses++;
      e = new Entry(open.get(), modelBytes * COST_PER_MODEL_BYTE);
      entries.put(key, e);
      held += e.cost;
    } else {
      hits++;
    }
    e.users++;
    evict();
    return new Lease(e);
  }

  private void evict() {
    for (Iterator<Map.Entry<String, Entry>> it = entries.entrySet().iterator();
        it.hasNext() && held > budgetBytes; ) {
      Entry e = it.next().getValue();
      it.remove();
      held -= e.cost;
      e.evicted = true;
      if (e.users == 0) {
        e.session.close();
      }
    }
  }

  /** Sessions held now (in use or idle). */
  public synchronized int size() {
    return entries.size();
  }

  public synchronized long hits() {
    return hits;
  }

  public synchronized long misses() {
    return misses;
  }

  /** Closes idle sessions now and the others when their users release them. */
  @Override
  public synchronized void close() {
    for (Entry e : entries.values()) {
      e.evicted = true;
      if (e.users == 0) {
        e.session.close();
      }
    }
    entries.clear();
    held = 0;
  }
}
