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
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Content-addressed model blobs under {@code <data-dir>/blobs}: assembled blobs as {@code
 * <sha256>}, chunks still arriving under {@code partial/<sha256>/}. Every method but {@link #has}
 * does file I/O: call it from a worker thread. Thread-safe for distinct blobs.
 */
public final class BlobStore {
  private final Path dir;
  private final Path partial;
  private final Set<String> complete = ConcurrentHashMap.newKeySet();

  /** What is on disk of a blob still arriving: its announced count and size, chunks held. */
  public record Partial(int count, long size, Set<Integer> chunks) {}

  public BlobStore(Path dataDir) {
    this.dir = dataDir.resolve("blobs");
    this.partial = dir.resolve("partial");
  }

  /** Creates the folders and indexes what is there; returns the partial blobs found. */
  public Map<String, Partial> open() {
    Map<String, Partial> found = new LinkedHashMap<>();
    try {
      Files.createDirectories(partial);
      try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
        for (Path p : s) {
          String name = p.getFileName().toString();
          if (Files.isRegularFile(p) && name.matches("[0-9a-f]{64}")) {
            complete.add(name);
          }
        }
      }
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
          try (DirectoryStream<Path> c = Files.newDirectoryStream(p, "*.chunk")) {
            for (Path chunk : c) {
              String n = chunk.getFileName().toString();
              chunks.add(Integer.parseInt(n.substring(0, n.length() - ".chunk".length())));
            }
          }
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

  /** Whether an assembled blob with this sha256 is present; no I/O. */
  public boolean has(String sha256) {
    return complete.contains(sha256);
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
    move(tmp, d.resolve(index + ".chunk"));
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
    move(tmp, dir.resolve(sha256));
    complete.add(sha256);
    deleteTree(d);
  }

  /** Deletes the chunks of a blob still arriving. */
  public void discard(String sha256) throws IOException {
    deleteTree(partial.resolve(sha256));
  }

  /** Whether chunks of this blob are on disk (for tests and diagnostics). */
  public boolean hasPartial(String sha256) {
    return Files.isDirectory(partial.resolve(sha256));
  }

  /** The bytes of an assembled blob. */
  public byte[] read(String sha256) throws IOException {
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
