package io.probestream.service.store;

import io.probestream.contracts.topics.DlqReason;
import io.probestream.service.record.PoisonException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.logging.Logger;

/**
 * Content-addressed model blobs under {@code <data-dir>/blobs}: assembled blobs as {@code
 * <sha256>}, chunks still arriving under {@code partial/<sha256>/}. Every method but {@link #has},
 * {@link #bytes}, {@link #requireFits} and {@link #claimOverBudget} does file I/O: call it from a
 * worker thread. Thread-safe for distinct blobs.
 *
 * <p>The bytes of assembled and partial blobs on disk are accounted against {@code
 * probestream.blobs.store-bytes}. Past it, {@link #claimOverBudget} gives up assembled blobs least
 * recently used first ({@link #has}, {@link #read} and assembly count as a use), skipping those the
 * pin predicate names (the blobs checkpoints are waiting for); {@link #delete} then removes their
 * files. Partial blobs are never evicted: a blob too large for the whole budget is refused by
 * {@link #requireFits} before its chunks are written.
 */
public final class BlobStore {
  private static final Logger LOG = Logger.getLogger(BlobStore.class.getName());

  private final Path dir;
  private final Path partial;
  private final long budget;
  // assembled blob → its size; a blob is usable (has) while it is a key here
  private final Map<String, Long> complete = new ConcurrentHashMap<>();
  // assembled blob → its last use, as a tick of useClock (higher is more recent)
  private final Map<String, Long> lastUse = new ConcurrentHashMap<>();
  // blob still arriving → the bytes of its chunks on disk
  private final Map<String, Long> partialBytes = new ConcurrentHashMap<>();
  private final AtomicLong useClock = new AtomicLong();
  private volatile Predicate<String> pinned = sha -> false;

  /** What is on disk of a blob still arriving: its announced count and size, chunks held. */
  public record Partial(int count, long size, Set<Integer> chunks) {}

  /** A store without a budget (nothing is ever evicted). */
  public BlobStore(Path dataDir) {
    this(dataDir, Long.MAX_VALUE);
  }

  /**
   * A store that keeps the bytes of its blobs on disk within {@code budgetBytes} ({@code
   * probestream.blobs.store-bytes}).
   */
  public BlobStore(Path dataDir, long budgetBytes) {
    if (budgetBytes <= 0) {
      throw new IllegalArgumentException(
          "probestream.blobs.store-bytes = " + budgetBytes + ": must be positive");
    }
    this.dir = dataDir.resolve("blobs");
    this.partial = dir.resolve("partial");
    this.budget = budgetBytes;
  }

  /**
   * Which assembled blobs must not be evicted (those a waiting checkpoint names). It is called from
   * {@link #claimOverBudget} only, so on the thread that calls that.
   */
  public void pinnedBy(Predicate<String> isPinned) {
    this.pinned = isPinned;
  }

  /** The budget, {@code probestream.blobs.store-bytes}. */
  public long budget() {
    return budget;
  }

  /** Bytes of assembled and partial blobs on disk, as accounted; no I/O. */
  public long bytes() {
    long n = 0;
    for (long b : complete.values()) {
      n += b;
    }
    for (long b : partialBytes.values()) {
      n += b;
    }
    return n;
  }

  /**
   * Refuses a blob of {@code size} bytes that could never fit the budget, even with every other
   * blob evicted; no I/O.
   *
   * @throws PoisonException {@code payload_too_large}, naming the key and its value
   */
  public void requireFits(String sha256, long size) {
    if (size > budget) {
      throw new PoisonException(
          DlqReason.PAYLOAD_TOO_LARGE,
          "model blob "
              + sha256
              + " is "
              + size
              + " bytes; it alone exceeds the blob store budget probestream.blobs.store-bytes = "
              + budget);
    }
  }

  /** Creates the folders and indexes what is there; returns the partial blobs found. */
  public Map<String, Partial> open() {
    Map<String, Partial> found = new LinkedHashMap<>();
    try {
      Files.createDirectories(partial);
      Map<String, Long> modified = new LinkedHashMap<>();
      try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
        for (Path p : s) {
          String name = p.getFileName().toString();
          if (Files.isRegularFile(p) && name.matches("[0-9a-f]{64}")) {
            complete.put(name, Files.size(p));
            modified.put(name, Files.getLastModifiedTime(p).toMillis());
          }
        }
      }
      // Before a restart, the last use is not known: the oldest file counts as least recently used.
      modified.entrySet().stream()
          .sorted(Map.Entry.comparingByValue())
          .forEach(e -> lastUse.put(e.getKey(), useClock.incrementAndGet()));
      try (DirectoryStream<Path> s = Files.newDirectoryStream(partial)) {
        for (Path p : s) {
          Path meta = p.resolve("blob.properties");
          if (!Files.isRegularFile(meta)) {
            continue;
          }
          Properties props = new Properties();
          try (InputStream in = Files.newInputStream(meta)) {
            props.load(in);
          }
          Set<Integer> chunks = new TreeSet<>();
          long held = 0;
          try (DirectoryStream<Path> c = Files.newDirectoryStream(p, "*.chunk")) {
            for (Path chunk : c) {
              String n = chunk.getFileName().toString();
              chunks.add(Integer.parseInt(n.substring(0, n.length() - ".chunk".length())));
              held += Files.size(chunk);
            }
          }
          partialBytes.put(p.getFileName().toString(), held);
          found.put(
              p.getFileName().toString(),
              new Partial(
                  Integer.parseInt(props.getProperty("count")),
                  Long.parseLong(props.getProperty("size")),
                  chunks));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot open the blob store " + dir + ": " + e.getMessage(), e);
    }
    return found;
  }

  /** Whether an assembled blob with this sha256 is present, which counts as a use; no I/O. */
  public boolean has(String sha256) {
    if (!complete.containsKey(sha256)) {
      return false;
    }
    touch(sha256);
    return true;
  }

  private void touch(String sha256) {
    lastUse.put(sha256, useClock.incrementAndGet());
  }

  /** Writes one chunk (and, with the first, the blob's announced count and size). */
  public void writeChunk(String sha256, int index, int count, long size, byte[] bytes)
      throws IOException {
    Path d = partial.resolve(sha256);
    Files.createDirectories(d);
    Path meta = d.resolve("blob.properties");
    if (!Files.exists(meta)) {
      Properties p = new Properties();
      p.setProperty("count", Integer.toString(count));
      p.setProperty("size", Long.toString(size));
      // Chunks of one blob are written side by side: each writer needs a temp file of its own.
      Path tmp = d.resolve("blob.properties." + index + ".tmp");
      try (OutputStream out = Files.newOutputStream(tmp)) {
        p.store(out, null);
      }
      move(tmp, meta);
    }
    Path tmp = d.resolve(index + ".chunk.tmp");
    Files.write(tmp, bytes);
    Path chunk = d.resolve(index + ".chunk");
    long before = Files.exists(chunk) ? Files.size(chunk) : 0;
    move(tmp, chunk);
    partialBytes.merge(sha256, bytes.length - before, Long::sum);
  }

  /**
   * Concatenates the chunks in index order, checks size and sha256, and moves the blob into place.
   * On a mismatch the chunks are deleted and a {@link PoisonException} says which.
   */
  public void assemble(String sha256, int count, long size) throws IOException {
    Path d = partial.resolve(sha256);
    Path tmp = dir.resolve(sha256 + ".tmp");
    MessageDigest md = sha256();
    long written = 0;
    try (OutputStream out = new DigestOutputStream(Files.newOutputStream(tmp), md)) {
      for (int i = 0; i < count; i++) {
        Path chunk = d.resolve(i + ".chunk");
        written += Files.copy(chunk, out);
      }
    }
    String actual = HexFormat.of().formatHex(md.digest());
    if (written != size || !actual.equals(sha256)) {
      Files.deleteIfExists(tmp);
      deleteTree(d);
      if (written != size) {
        throw new PoisonException(
            DlqReason.BLOB_SIZE_MISMATCH,
            "blob "
                + sha256
                + " assembled from "
                + count
                + " chunks is "
                + written
                + " bytes; ce_blobsize says "
                + size);
      }
      throw new PoisonException(
          DlqReason.BLOB_SHA_MISMATCH,
          "blob assembled from "
              + count
              + " chunks has sha256 "
              + actual
              + "; ce_blobsha256 says "
              + sha256);
    }
    synchronized (this) { // against a delete of an earlier copy claimed for eviction
      move(tmp, dir.resolve(sha256));
      touch(sha256);
      complete.put(sha256, written);
    }
    deleteTree(d);
    partialBytes.remove(sha256);
  }

  /** Deletes the chunks of a blob still arriving. */
  public void discard(String sha256) throws IOException {
    deleteTree(partial.resolve(sha256));
    partialBytes.remove(sha256);
  }

  /**
   * While the accounted bytes exceed the budget, gives up the least recently used assembled blob
   * that is not pinned: from the return on, {@link #has} says no for it and its bytes no longer
   * count. Call {@link #delete} with the result (on a worker) to remove the files. No I/O; call it
   * on the thread the pin predicate belongs to.
   *
   * @return the given-up blobs, least recently used first; empty when within budget
   */
  public synchronized List<String> claimOverBudget() {
    List<String> victims = new ArrayList<>();
    long total = bytes();
    if (total <= budget) {
      return victims;
    }
    List<String> byAge = new ArrayList<>(complete.keySet());
    byAge.sort(Comparator.comparingLong(sha -> lastUse.getOrDefault(sha, 0L)));
    for (String sha : byAge) {
      if (total <= budget) {
        break;
      }
      if (pinned.test(sha)) {
        continue;
      }
      Long size = complete.remove(sha);
      lastUse.remove(sha);
      if (size != null) {
        total -= size;
        victims.add(sha);
      }
    }
    if (total > budget) {
      LOG.warning(
          "blob store holds "
              + total
              + " bytes, over probestream.blobs.store-bytes = "
              + budget
              + ": what is left is pinned by waiting checkpoints or still arriving");
    }
    return victims;
  }

  /** Deletes the files of blobs given up by {@link #claimOverBudget}. */
  public void delete(List<String> claimed) throws IOException {
    for (String sha : claimed) {
      synchronized (this) {
        if (complete.containsKey(sha)) {
          continue; // assembled again since it was claimed
        }
        Files.deleteIfExists(dir.resolve(sha));
      }
      LOG.info(
          "evicted model blob "
              + sha
              + " (least recently used) to stay within probestream.blobs.store-bytes = "
              + budget);
    }
  }

  /** {@link #claimOverBudget} and {@link #delete} in one call, on one thread. */
  public List<String> evictOverBudget() throws IOException {
    List<String> victims = claimOverBudget();
    delete(victims);
    return victims;
  }

  /** Whether chunks of this blob are on disk (for tests and diagnostics). */
  public boolean hasPartial(String sha256) {
    return Files.isDirectory(partial.resolve(sha256));
  }

  /** The bytes of an assembled blob, which counts as a use. */
  public byte[] read(String sha256) throws IOException {
    if (complete.containsKey(sha256)) {
      touch(sha256);
    }
    return Files.readAllBytes(dir.resolve(sha256));
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  static void deleteTree(Path d) throws IOException {
    if (!Files.exists(d)) {
      return;
    }
    try (DirectoryStream<Path> s = Files.newDirectoryStream(d)) {
      for (Path p : s) {
        if (Files.isDirectory(p)) {
          deleteTree(p);
        } else {
          Files.deleteIfExists(p);
        }
      }
    }
    Files.deleteIfExists(d);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
