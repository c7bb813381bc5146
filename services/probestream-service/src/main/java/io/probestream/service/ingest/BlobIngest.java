package io.probestream.service.ingest;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.store.BlobStore;
import io.probestream.service.work.Workers;
import io.vertx.core.Future;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * Reassembles model blobs from chunks on the {@code blobs} topic, in any order: each chunk is
 * written to the blob store before its record counts as done; the last one triggers assembly, which
 * checks size and sha256. Owned by the intake verticle's event loop.
 */
public final class BlobIngest {
  private static final int MAX_CHUNKS = 1 << 20;

  private static final java.util.logging.Logger LOG =
      java.util.logging.Logger.getLogger(BlobIngest.class.getName());

  private final BlobStore store;
  private final Workers workers;
  private final ProbestreamConfig.Limits limits;
  private final Consumer<String> onAssembled;
  private final BiConsumer<String, PoisonException> onFailed;
  private final Map<String, Partial> partials = new HashMap<>();

  private static final class Partial {
    final int count;
    final long size;
    final Set<Integer> written = new HashSet<>();
    final Set<Integer> reserved = new HashSet<>();
    boolean assembling;
    long touched = System.currentTimeMillis();

    Partial(int count, long size) {
      this.count = count;
      this.size = size;
    }
  }

  public BlobIngest(
      BlobStore store,
      Workers workers,
      ProbestreamConfig.Limits limits,
      Consumer<String> onAssembled,
      BiConsumer<String, PoisonException> onFailed) {
    this.store = store;
    this.workers = workers;
    this.limits = limits;
    this.onAssembled = onAssembled;
    this.onFailed = onFailed;
  }

  /**
   * Gives up the least recently used blobs no waiting checkpoint names while the store is over
   * probestream.blobs.store-bytes (decided here, on the event loop, where checkpoints wait), and
   * deletes their files on a worker.
   */
  public void evictOverBudget() {
    List<String> victims = store.claimOverBudget();
    if (!victims.isEmpty()) {
      workers.run(
          () -> {
            store.delete(victims);
            return null;
          });
    }
  }

  /** Takes in what the store held at start-up, and evicts what is over its budget. */
  public void restore(Map<String, BlobStore.Partial> found) {
    found.forEach(
        (sha, p) -> {
          Partial s = new Partial(p.count(), p.size());
          s.written.addAll(p.chunks());
          s.reserved.addAll(p.chunks());
          partials.put(sha, s);
        });
    evictOverBudget();
  }

  /** Whether the blob is assembled in the store. */
  public boolean has(String sha256) {
    return store.has(sha256);
  }

  /** The sha256 of every blob with chunks still missing. */
  public Set<String> incomplete() {
    return partials.keySet();
  }

  public Future<Void> onChunk(InputRecord r) {
    r.requireCloudEvent(Headers.TYPE_BLOB);
    r.requireKey();
    String sha = r.require(Headers.BLOB_SHA256);
    if (!sha.matches("[0-9a-f]{64}")) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER,
          "header " + Headers.BLOB_SHA256 + " = '" + sha + "': must be 64 lower-case hex digits");
    }
    int count = (int) r.requireLong(Headers.BLOB_COUNT, 1, MAX_CHUNKS);
    int index = (int) r.requireLong(Headers.BLOB_INDEX, 0, count - 1L);
    long size = r.requireLong(Headers.BLOB_SIZE, 1, Long.MAX_VALUE);
    if (size > limits.maxModelBytes()) {
      throw new PoisonException(
          DlqReason.PAYLOAD_TOO_LARGE,
          "blob "
              + sha
              + " is "
              + size
              + " bytes; limit probestream.limits.max-model-bytes = "
              + limits.maxModelBytes());
    }
    if (store.has(sha)) {
      return Future.succeededFuture(); // assembled already: a resend, or a model reused
    }
    try {
      store.requireFits(sha, size);
    } catch (PoisonException tooLarge) {
      onFailed.accept(sha, tooLarge); // the checkpoints waiting for it fail the same way
      throw tooLarge;
    }
    Partial p = partials.computeIfAbsent(sha, k -> new Partial(count, size));
    if (p.count != count || p.size != size) {
      throw new PoisonException(
          DlqReason.BLOB_CONFLICT,
          "chunk "
              + index
              + " of blob "
              + sha
              + " says "
              + count
              + " chunks of "
              + size
              + " bytes in all; earlier chunks said "
              + p.count
              + " chunks of "
              + p.size);
    }
    p.touched = System.currentTimeMillis();
    if (!p.reserved.add(index)) {
      return Future.succeededFuture(); // a chunk already held or being written
    }
    byte[] bytes = r.value();
    return workers
        .runRetrying(
            () -> {
              store.writeChunk(sha, index, count, size, bytes);
              return null;
            })
        .recover(
            e -> {
              p.reserved.remove(index);
              return Future.failedFuture(e);
            })
        .compose(
            v -> {
              p.written.add(index);
              return p.written.size() == p.count && !p.assembling
                  ? assemble(sha, p)
                  : Future.succeededFuture();
            });
  }

  private Future<Void> assemble(String sha, Partial p) {
    p.assembling = true;
    return workers
        .run(
            () -> {
              store.assemble(sha, p.count, p.size);
              return null;
            })
        .<Void>mapEmpty()
        .andThen(
            done -> {
              partials.remove(sha);
              if (done.succeeded()) {
                onAssembled.accept(sha);
                evictOverBudget();
              } else if (done.cause() instanceof PoisonException poison) {
                onFailed.accept(sha, poison);
              }
            });
  }

  /**
   * Forgets blobs whose chunks stopped arriving more than {@code maxAgeMs} ago and deletes their
   * chunks (the checkpoints that waited for them have gone to the DLQ as blob_incomplete by then);
   * a later resend starts the blob afresh.
   */
  public void expire(long maxAgeMs) {
    long cutoff = System.currentTimeMillis() - maxAgeMs;
    for (Map.Entry<String, Partial> e : Map.copyOf(partials).entrySet()) {
      Partial p = e.getValue();
      if (!p.assembling && p.touched < cutoff && p.written.size() == p.reserved.size()) {
        partials.remove(e.getKey());
        LOG.warning(
            "blob "
                + e.getKey()
                + ": "
                + p.written.size()
                + " of "
                + p.count
                + " chunks arrived, none for longer than probestream.pending.max-age-ms = "
                + maxAgeMs
                + "; its chunks are deleted");
        workers.run(
            () -> {
              store.discard(e.getKey());
              return null;
            });
      }
    }
  }

  /** Restarts assembly of blobs that were complete on disk but not assembled before a stop. */
  public void resumeAssembly() {
    for (Map.Entry<String, Partial> e : Map.copyOf(partials).entrySet()) {
      Partial p = e.getValue();
      if (p.written.size() == p.count && !p.assembling) {
        assemble(e.getKey(), p);
      }
    }
  }
}
