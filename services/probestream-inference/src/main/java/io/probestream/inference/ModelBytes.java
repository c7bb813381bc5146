package io.probestream.inference;

import io.probestream.contracts.onnx.OnnxFormatException;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.DlqReason;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A model's ONNX bytes and, for a model that keeps tensors as ONNX external data, the directory its
 * data files are read from ({@code externalDataDir}, null for a model loaded from a blob or a
 * download, whose external data is refused). The bytes are never null and not copied: nobody
 * mutates them. Immutable.
 */
public record ModelBytes(byte[] bytes, Path externalDataDir) {
  public ModelBytes {
    if (bytes == null) {
      throw new IllegalArgumentException("model bytes are null");
    }
  }

  /** A model with every tensor inline. */
  public static ModelBytes inline(byte[] bytes) {
    return new ModelBytes(bytes, null);
  }

  /**
   * The raw bytes of the tensor {@code name} held as external data, read from {@link
   * #externalDataDir()}; null when the model keeps it inline or has no data directory. Blocking
   * file I/O.
   *
   * @throws InferenceException {@code uri_not_allowed} for a location that leaves the directory,
   *     {@code model_unloadable} for a missing or short file
   */
  public byte[] externalRaw(String name) {
    if (externalDataDir == null) {
      return null;
    }
    OnnxGraph.ExternalData found = null;
    try {
      for (OnnxGraph.ExternalData e : OnnxGraph.externalData(bytes)) {
        if (e.tensor().equals(name)) {
          found = e;
        }
      }
      if (found == null) {
        return null;
      }
      String escape = found.escape();
      if (escape != null) {
        throw new InferenceException(
            DlqReason.URI_NOT_ALLOWED,
            "tensor '"
                + name
                + "' has external data location '"
                + found.location()
                + "': "
                + escape);
      }
      return read(found);
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, e.getMessage(), e);
    }
  }

  private byte[] read(OnnxGraph.ExternalData e) {
    try {
      Path dir = externalDataDir.toRealPath();
      Path file = dir.resolve(e.location()).toRealPath();
      if (!file.startsWith(dir)) {
        throw new InferenceException(
            DlqReason.URI_NOT_ALLOWED,
            "external data '" + e.location() + "' of tensor '" + e.tensor() + "' leaves " + dir);
      }
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        long length = e.length() < 0 ? ch.size() - e.offset() : e.length();
        if (length < 0 || e.offset() + length > ch.size() || length > Integer.MAX_VALUE - 8) {
          throw new InferenceException(
              DlqReason.MODEL_UNLOADABLE,
              "external data of tensor '"
                  + e.tensor()
                  + "' is "
                  + length
                  + " bytes at offset "
                  + e.offset()
                  + " of '"
                  + e.location()
                  + "', a file of "
                  + ch.size()
                  + " bytes");
        }
        ByteBuffer buf = ByteBuffer.allocate((int) length);
        long at = e.offset();
        while (buf.hasRemaining()) {
          int n = ch.read(buf, at);
          if (n < 0) {
            throw new IOException("file ended early: " + file);
          }
          at += n;
        }
        return buf.array();
      }
    } catch (NoSuchFileException x) {
      throw new InferenceException(
          DlqReason.MODEL_UNLOADABLE,
          "external data file '"
              + e.location()
              + "' of tensor '"
              + e.tensor()
              + "' is not in "
              + externalDataDir,
          x);
    } catch (IOException x) {
      throw new UncheckedIOException(x); // transient: the caller's retries apply
    }
  }
}
