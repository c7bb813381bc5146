package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.inference.Device;
import io.probestream.inference.ModelSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Models exported by other tools (examples/cnn: PyTorch CNN with batch-norm and a residual block,
 * intermediates not graph outputs; examples/layouts: MatMul+Add and transB=0 classifiers), against
 * references computed in numpy from PyTorch's own features (loadtests/reference).
 */
class RealModelsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path CNN = Path.of("../../examples/cnn");
  private static final Path LAYOUTS = Path.of("../../examples/layouts");

  /**
   * {@code --probe feature_complexity} on PyTorch MLPs (one as trained, one with planted duplicate
   * and scaled-duplicate units) against loadtests/reference/complexity_reference.py, an independent
   * numpy implementation of PROBES.md §2 (direct loops and SVDs, no streaming): unit counts
   * exactly, the rest within 1e-4 relative.
   */
  @ParameterizedTest
  @ValueSource(strings = {"mlp", "mlp-planted"})
  void featureComplexityMatchesTheNumpyReference(String example) throws IOException {
    Path dir = Path.of("../../examples").resolve(example);
    CliTest.Run r =
        CliTest.run(
            "probe",
            "--model",
            dir.resolve("model.onnx").toString(),
            "--data",
            dir.resolve("reference-0.safetensors").toString(),
            "--data",
            dir.resolve("reference-1.safetensors").toString(),
            "--layer",
            "h1=h1",
            "--layer",
            "h2=h2",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "--probe",
            "feature_complexity",
            "-q");
    assertThat(r.code()).as(r.err()).isZero();
    JsonNode expected = JSON.readTree(dir.resolve("expected-complexity.json").toFile());
    Map<String, JsonNode> got = new HashMap<>();
    for (String line : r.out().split("\n")) {
      JsonNode o = JSON.readTree(line);
      assertThat(o.get("probe").asText()).isEqualTo("feature_complexity");
      got.put(o.get("layer").asText(), o);
    }
    for (Iterator<String> it = expected.get("layers").fieldNames(); it.hasNext(); ) {
      String layer = it.next();
      JsonNode want = expected.get("layers").get(layer);
      JsonNode metrics = got.get(layer).get("metrics");
      assertThat(iterable(metrics.fieldNames()))
          .as(layer + " keys")
          .containsExactlyInAnyOrderElementsOf(iterable(want.fieldNames()));
      for (Iterator<String> k = want.fieldNames(); k.hasNext(); ) {
        String key = k.next();
        JsonNode e = want.get(key);
        if (e.isIntegralNumber()) {
          assertThat(metrics.get(key).asDouble()).as(layer + "." + key).isEqualTo(e.asDouble());
        } else {
          assertThat(metrics.get(key).asDouble())
              .as(layer + "." + key)
              .isCloseTo(e.asDouble(), within(1e-4 * Math.abs(e.asDouble())));
        }
      }
    }
    if (example.equals("mlp-planted")) {
      // Five planted units in h1 and two in h2 merge away, and nothing else does.
      assertThat(got.get("h1").get("metrics").get("ifm_units").asInt()).isEqualTo(64 - 5);
      assertThat(got.get("h2").get("metrics").get("ifm_units").asInt()).isEqualTo(32 - 2);
    }
  }

  private static List<String> iterable(Iterator<String> it) {
    List<String> out = new ArrayList<>();
    it.forEachRemaining(out::add);
    return out;
  }

  @Test
  void ortIntermediatesMatchPytorchForwardHooksWithin1e5() throws IOException {
    JsonNode names = JSON.readTree(CNN.resolve("layers.json").toFile());
    Safetensors hooks = Safetensors.parse(Files.readAllBytes(CNN.resolve("features.safetensors")));
    Safetensors data =
        Safetensors.parse(Files.readAllBytes(CNN.resolve("reference-0.safetensors")));
    List<String> layers = List.of("stem", "block1", "block2", "pooled");
    List<String> tensors = new ArrayList<>();
    layers.forEach(l -> tensors.add(names.get(l).asText()));
    byte[] model = OnnxGraph.withOutputs(Files.readAllBytes(CNN.resolve("model.onnx")), tensors);
    long[] shape = data.tensor("input").shape();
    int n = 32; // the hooks hold the first 32 samples
    int per = (int) (shape[1] * shape[2] * shape[3]);
    float[] x = Arrays.copyOf(data.floats("input"), n * per);
    try (ModelSession s = ModelSession.open(model, "input", tensors, Device.CPU, 1)) {
      Map<String, ModelSession.Output> out = s.run(x, new long[] {n, shape[1], shape[2], shape[3]});
      for (int i = 0; i < layers.size(); i++) {
        float[] want = hooks.floats(layers.get(i));
        float[] got = out.get(tensors.get(i)).values();
        assertThat(got).hasSameSizeAs(want);
        double worst = 0;
        for (int j = 0; j < want.length; j++) {
          worst = Math.max(worst, Math.abs(got[j] - want[j]));
        }
        assertThat(worst).as(layers.get(i)).isLessThan(1e-5);
      }
    }
  }

  @Test
  void layersAutoOnTheCnnMatchesTheReferenceFromPytorchFeatures() throws IOException {
    JsonNode names = JSON.readTree(CNN.resolve("layers.json").toFile());
    CliTest.Run r =
        CliTest.run(
            "probe",
            "--model",
            CNN.resolve("model.onnx").toString(),
            "--data",
            CNN.resolve("reference-0.safetensors").toString(),
            "--data",
            CNN.resolve("reference-1.safetensors").toString(),
            "--layers",
            "auto",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "-q");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    Map<String, JsonNode> byTensor = new HashMap<>();
    for (JsonNode o : r.lines()) {
      byTensor.put(o.get("layer").asText(), o);
    }
    // auto: every ReLU output (stem, the block's inner and outer ReLU, block2) and the classifier's
    // input (the flattened pooling).
    assertThat(byTensor.keySet())
        .containsExactlyInAnyOrder(
            "/stem/relu/Relu_output_0",
            "/block1/relu1/Relu_output_0",
            "/block1/relu2/Relu_output_0",
            "/block2/relu/Relu_output_0",
            "/flatten/Flatten_output_0");
    JsonNode expected = JSON.readTree(CNN.resolve("expected.json").toFile()).get("layers");
    for (Iterator<String> it = expected.fieldNames(); it.hasNext(); ) {
      String layer = it.next();
      JsonNode o = byTensor.get(names.get(layer).asText());
      assertThat(o.get("params").get("reduction").asText())
          .isEqualTo(layer.equals("pooled") ? "none" : "gap");
      compare(layer, expected.get(layer), o.get("metrics"), 1e-4);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"matmul_add", "gemm_transposed"})
  void classifierLayoutsGiveTheReferenceIncludingNc3(String name) throws IOException {
    CliTest.Run r =
        CliTest.run(
            "probe",
            "-q",
            "--model",
            LAYOUTS.resolve(name + ".onnx").toString(),
            "--data",
            LAYOUTS.resolve("reference.safetensors").toString(),
            "--layer",
            "h=h",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    JsonNode expected =
        JSON.readTree(LAYOUTS.resolve(name + ".expected.json").toFile()).get("layers").get("h");
    // W is stored features × classes here; nc3 is only right if it is read as rows = classes.
    compare(name, expected, r.lines().get(0).get("metrics"), 1e-5);
  }

  /** Every key of the reference, to {@code rel} relative (counts exactly). */
  private static void compare(String what, JsonNode want, JsonNode got, double rel) {
    List<String> keys = new ArrayList<>();
    want.fieldNames().forEachRemaining(keys::add);
    List<String> gotKeys = new ArrayList<>();
    got.fieldNames().forEachRemaining(gotKeys::add);
    assertThat(gotKeys).as(what).containsExactlyInAnyOrderElementsOf(keys);
    for (String k : keys) {
      double v = want.get(k).asDouble();
      assertThat(got.get(k).asDouble())
          .as(what + "." + k)
          .isCloseTo(v, within(rel * Math.max(1e-3, Math.abs(v))));
    }
  }
}
