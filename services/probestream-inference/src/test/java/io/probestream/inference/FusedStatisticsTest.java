package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.probes.ProbeOutput;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.OnnxModelBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The statistic nodes appended to the graph (the GPU path of DESIGN.md §5), run on CPU: they must
 * give the plain path's metrics within PROBES.md §0's float32 allowance (1e-5 relative), counts and
 * NC4 exactly.
 */
class FusedStatisticsTest {
  private static CheckpointEvaluator evaluator(boolean fused, int batch) {
    return new CheckpointEvaluator(
        new CheckpointEvaluator.Config(batch, 1 << 26, Device.CPU, 1, 65_536, 1L << 30, fused));
  }

  private static void assertSame(Map<String, ProbeOutput> fused, Map<String, ProbeOutput> plain) {
    assertThat(fused.keySet()).isEqualTo(plain.keySet());
    plain.forEach(
        (layer, p) -> {
          ProbeOutput f = fused.get(layer);
          assertThat(f.metrics().keySet()).as(layer).isEqualTo(p.metrics().keySet());
          assertThat(f.params()).as(layer).isEqualTo(p.params());
          p.metrics()
              .forEach(
                  (k, v) -> {
                    Double g = f.metrics().get(k);
                    if (v == null) {
                      assertThat(g).as(layer + "." + k).isNull();
                    } else if (List.of(
                            "samples", "classes_seen", "nonfinite", "sb_rank", "nc4_ncc_mismatch")
                        .contains(k)) {
                      assertThat(g).as(layer + "." + k).isEqualTo(v);
                    } else {
                      assertThat(g)
                          .as(layer + "." + k)
                          .isCloseTo(v, within(1e-5 * Math.max(1e-2, Math.abs(v))));
                    }
                  });
        });
  }

  @Test
  void mlpLayersMatchThePlainPathForSeveralBatchSizes() {
    Mlp mlp = Mlp.random(21, 6, 16, 8, 4);
    Random rnd = new Random(5);
    List<ReferenceBatch> data = new ArrayList<>();
    for (int b = 0; b < 3; b++) {
      int rows = 50 + 13 * b;
      float[] x = new float[rows * 6];
      int[] y = new int[rows];
      for (int i = 0; i < rows; i++) {
        y[i] = rnd.nextInt(4);
        for (int j = 0; j < 6; j++) {
          x[i * 6 + j] = (float) (rnd.nextGaussian() + (j == y[i] ? 2.5 : 0));
        }
      }
      data.add(new ReferenceBatch(x, new long[] {rows, 6}, y));
    }
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("pre1", "z1");
    layers.put("h1", "h1");
    layers.put("h2", "h2");
    EvaluationSpec spec =
        new EvaluationSpec("input", layers, "logits", "classifier.weight", 4, null);
    Map<String, ProbeOutput> plain =
        evaluator(false, 32)
            .evaluate(mlp.onnx(), spec, data, CheckpointEvaluator.Progress.NONE)
            .layers();
    for (int batch : new int[] {7, 32, 1000}) {
      assertSame(
          evaluator(true, batch)
              .evaluate(mlp.onnx(), spec, data, CheckpointEvaluator.Progress.NONE)
              .layers(),
          plain);
    }
  }

  @Test
  void ncbGivesThePrintedValuesAndNonFiniteRowsAreDropped() {
    byte[] model =
        new OnnxModelBuilder()
            .input("input", 2)
            .matrix("classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}})
            .vector("classifier.bias", 0, -2.5, 0)
            .node("Reciprocal", new String[] {"input"}, new String[] {"r"})
            .node("Reciprocal", new String[] {"r"}, new String[] {"h"}) // h = x, except 1/(1/0) = 0
            .linear("input", "classifier.weight", "classifier.bias", "logits")
            .output("logits", 3)
            .build();
    // NC-B plus a row whose features are not finite: Reciprocal(Reciprocal(NaN)) stays NaN.
    float[] x = {2, 0, 4, 0, 0, 2, 0, 4, 0, 3, -1, -1, -3, -3, Float.NaN, 1};
    int[] y = {0, 0, 1, 1, 1, 2, 2, 0};
    List<ReferenceBatch> data = List.of(new ReferenceBatch(x, new long[] {8, 2}, y));
    // Reciprocal(Reciprocal(0)) = 1/inf = 0, so h = x exactly for NC-B's zeros too.
    EvaluationSpec spec = new EvaluationSpec("input", Map.of("h", "h"), "logits", null, 3, null);
    Map<String, Double> m =
        evaluator(true, 3)
            .evaluate(model, spec, data, CheckpointEvaluator.Progress.NONE)
            .layers()
            .get("h")
            .metrics();
    assertThat(m.get("nonfinite")).isEqualTo(1);
    assertThat(m.get("samples")).isEqualTo(7);
    assertThat(m.get("nc1")).isCloseTo(352.0 / 3969, within(1e-6));
    assertThat(m.get("nc1_trace")).isCloseTo(11.0 / 76, within(1e-6));
    assertThat(m).doesNotContainKey("nc4_ncc_mismatch"); // h does not feed the classifier here
  }

  @Test
  void convolutionalLayersOfThePytorchCnnMatchThePlainPath() throws IOException {
    Path cnn = Path.of("../../examples/cnn");
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("stem", "/stem/relu/Relu_output_0");
    layers.put("block2", "/block2/relu/Relu_output_0");
    layers.put("pooled", "/flatten/Flatten_output_0");
    List<ReferenceBatch> data = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      Safetensors st =
          Safetensors.parse(Files.readAllBytes(cnn.resolve("reference-" + i + ".safetensors")));
      data.add(
          new ReferenceBatch(st.floats("input"), st.tensor("input").shape(), st.ints("labels")));
    }
    byte[] model = Files.readAllBytes(cnn.resolve("model.onnx"));
    EvaluationSpec spec =
        new EvaluationSpec("input", layers, "logits", "classifier.weight", 4, null);
    assertSame(
        evaluator(true, 64).evaluate(model, spec, data, CheckpointEvaluator.Progress.NONE).layers(),
        evaluator(false, 64)
            .evaluate(model, spec, data, CheckpointEvaluator.Progress.NONE)
            .layers());
  }
}
