package io.probestream.trainer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.probestream.inference.Device;
import io.probestream.inference.ModelSession;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OnnxExportTest {
  @Test
  void exportedModelGivesTheJavaForwardPassInOnnxRuntime() {
    SyntheticTask task = SyntheticTask.standard();
    Dataset train = task.train();
    Dataset ref = task.reference().slice(0, 200);
    TrainingRun run = new TrainingRun("seed-2", 2, train, new int[] {64, 32}, 32, 3e-3, 0.05);
    for (int round = 0; round < 2; round++) {
      run.train(round == 0 ? 0 : 300); // at initialisation, then fitted (logits of ~10)
      byte[] onnx = OnnxExport.toOnnx(run.model());
      // The Java pass on the float32 parameters that were exported, in float64; ORT accumulates
      // in float32, ~1e-7 relative per term over at most 64 terms of magnitude ≤ 10: ≤ 1e-5.
      ReluMlp exported = run.model().roundedToFloat();
      try (ModelSession s =
          ModelSession.open(onnx, "input", List.of("h1", "h2", "logits"), Device.CPU, 1)) {
        Map<String, ModelSession.Output> out =
            s.run(ref.inputs(), new long[] {ref.rows(), ref.dims()});
        assertThat(out.get("logits").shape()).containsExactly(200, 5);
        assertThat(out.get("h1").shape()).containsExactly(200, 64);
        assertThat(out.get("h2").shape()).containsExactly(200, 32);
        double largest = 0;
        for (int i = 0; i < ref.rows(); i++) {
          double[][] a = exported.forward(ref.row(i));
          for (int k = 0; k < 5; k++) {
            assertThat((double) out.get("logits").values()[i * 5 + k])
                .as("row %d logit %d at step %d", i, k, run.step())
                .isCloseTo(a[3][k], within(1e-5));
            largest = Math.max(largest, Math.abs(a[3][k]));
          }
          for (int j = 0; j < 32; j++) {
            assertThat((double) out.get("h2").values()[i * 32 + j])
                .isCloseTo(a[2][j], within(1e-5));
          }
        }
        assertThat(largest).isGreaterThan(round == 0 ? 0.5 : 5);
      }
    }
  }
}
