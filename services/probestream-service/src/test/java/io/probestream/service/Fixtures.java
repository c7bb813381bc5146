package io.probestream.service;

import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.testkit.NcbModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Models and batches for the service's integration tests. Stateless. */
public final class Fixtures {
  private Fixtures() {}

  /** The repository's bundled example (examples/mlp), with numpy's expected values beside it. */
  public static final Path EXAMPLE = Path.of("../../examples/mlp");

  public static byte[] example(String file) throws IOException {
    return Files.readAllBytes(EXAMPLE.resolve(file));
  }

  /** PROBES.md NC-B's model: h = Identity(input), logits = Gemm(h, W, b), transB = 1. */
  public static byte[] ncbModel() {
    return NcbModel.onnx();
  }

  /** NC-B's seven samples as two reference batches (4 + 3). */
  public static byte[] ncbBatch(int index) {
    return index == 0
        ? batch("input", new float[] {2, 0, 4, 0, 0, 2, 0, 4}, new long[] {0, 0, 1, 1}, 2)
        : batch("input", new float[] {0, 3, -1, -1, -3, -3}, new long[] {1, 2, 2}, 2);
  }

  /** A safetensors batch with a float input tensor of {@code width} columns and I64 labels. */
  public static byte[] batch(String input, float[] x, long[] labels, int width) {
    Map<String, Object> t = new LinkedHashMap<>();
    t.put(input, x);
    t.put("labels", labels);
    return Safetensors.write(
        t, Map.of(input, new long[] {labels.length, width}, "labels", new long[] {labels.length}));
  }

  /** A checkpoint manifest for a blob-held model. */
  public static String manifest(
      String experiment,
      String run,
      long step,
      String sha,
      long size,
      int chunks,
      String layers,
      String extra) {
    return "{\"experiment\":\""
        + experiment
        + "\",\"run\":\""
        + run
        + "\",\"step\":"
        + step
        + ",\"model\":{\"blob\":{\"sha256\":\""
        + sha
        + "\",\"size\":"
        + size
        + ",\"chunks\":"
        + chunks
        + "}},\"input\":\"input\",\"layers\":"
        + layers
        + ",\"logits\":\"logits\""
        + extra
        + "}";
  }
}
