package io.probestream.service.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reference batches as received, under {@code <data-dir>/reference/<hex(experiment)>/}: {@code
 * <index>.safetensors}, plus {@code <index>.final} for the batch marked final. Restores the
 * reference sets after a restart. File I/O: call from a worker thread. Thread-safe for distinct
 * (experiment, index) pairs.
 */
public final class ReferenceStore {
  private final Path dir;

  /** One stored batch: its bytes' location and whether it was marked final. */
  public record Stored(Path file, boolean isFinal) {}

  public ReferenceStore(Path dataDir) {
    this.dir = dataDir.resolve("reference");
  }

  /** Creates the folder and lists what is there: experiment → index → batch. */
  public Map<String, TreeMap<Integer, Stored>> open() {
    Map<String, TreeMap<Integer, Stored>> found = new LinkedHashMap<>();
    try {
      Files.createDirectories(dir);
      try (DirectoryStream<Path> experiments = Files.newDirectoryStream(dir)) {
        for (Path e : experiments) {
          String experiment;
          try {
            experiment =
                new String(
                    HexFormat.of().parseHex(e.getFileName().toString()), StandardCharsets.UTF_8);
          } catch (IllegalArgumentException notOurs) {
            continue;
          }
          TreeMap<Integer, Stored> batches = new TreeMap<>();
          try (DirectoryStream<Path> files = Files.newDirectoryStream(e, "*.safetensors")) {
            for (Path f : files) {
              String n = f.getFileName().toString();
              int index = Integer.parseInt(n.substring(0, n.length() - ".safetensors".length()));
              batches.put(index, new Stored(f, Files.exists(e.resolve(index + ".final"))));
            }
          }
          found.put(experiment, batches);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot open the reference store " + dir + ": " + e.getMessage(), e);
    }
    return found;
  }

  /** Writes one batch atomically and returns where it is. */
  public Path write(String experiment, int index, boolean isFinal, byte[] bytes)
      throws IOException {
    Path e = experimentDir(experiment);
    Files.createDirectories(e);
    Path target = e.resolve(index + ".safetensors");
    Path tmp = e.resolve(index + ".safetensors.tmp");
    Files.write(tmp, bytes);
    if (isFinal) {
      Files.write(e.resolve(index + ".final"), new byte[0]);
    }
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException x) {
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
    }
    return target;
  }

  /** Deletes an experiment's stored batches (blocking). */
  public void delete(String experiment) throws IOException {
    Path e = experimentDir(experiment);
    if (!Files.isDirectory(e)) {
      return;
    }
    try (java.util.stream.Stream<Path> files = Files.list(e)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.deleteIfExists(f);
      }
    }
    Files.deleteIfExists(e);
  }

  private Path experimentDir(String experiment) {
    // Hex keeps any experiment id a safe, reversible folder name (no traversal, no case folding).
    return dir.resolve(HexFormat.of().formatHex(experiment.getBytes(StandardCharsets.UTF_8)));
  }
}
