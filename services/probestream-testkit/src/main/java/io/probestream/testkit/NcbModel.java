package io.probestream.testkit;

/**
 * PROBES.md hand case NC-B as a model: h = Identity(input) (d = 2), logits = Gemm(h, W, b) with
 * transB = 1, W = [[1,0],[0,1],[−1,−1]], b = (0, −2.5, 0). Feed it NC-B's seven samples and the
 * neural-collapse values are the ones printed in PROBES.md §1.6.
 */
public final class NcbModel {
  private NcbModel() {}

  /** With a symbolic batch dimension. */
  public static byte[] onnx() {
    return builder(new OnnxModelBuilder());
  }

  /** With a fixed batch dimension, as PyTorch exports without dynamic_axes. */
  public static byte[] onnx(long fixedBatch) {
    return builder(new OnnxModelBuilder().fixedBatch(fixedBatch));
  }

  private static byte[] builder(OnnxModelBuilder b) {
    return b.input("input", 2)
        .matrix("classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}})
        .vector("classifier.bias", 0, -2.5, 0)
        .identity("input", "h")
        .linear("h", "classifier.weight", "classifier.bias", "logits")
        .output("h", 2)
        .output("logits", 3)
        .build();
  }
}
