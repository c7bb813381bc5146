package io.probestream.cli;

import io.probestream.contracts.onnx.OnnxFormatException;
import io.probestream.contracts.onnx.OnnxGraph;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The options that say which tensors of a model to probe, shared by {@code probe} and {@code
 * publish checkpoint} so they read and check the same way.
 */
final class ModelOptions {
  @Option(
      names = "--input",
      paramLabel = "TENSOR",
      description = "Model input tensor (default: the model's only input).")
  String input;

  @Option(
      names = "--layer",
      paramLabel = "NAME=TENSOR",
      description =
          "A probed layer and the graph tensor (any tensor) holding its features. Repeatable.")
  Map<String, String> layers = new LinkedHashMap<>();

  @Option(
      names = "--layers",
      paramLabel = "auto",
      description =
          "'auto': every activation output and the classifier's input (the last 8). Instead of --layer.")
  String layersMode;

  @Option(
      names = "--logits",
      required = true,
      paramLabel = "TENSOR",
      description = "Logits tensor.")
  String logits;

  @Option(
      names = "--classifier-weight",
      paramLabel = "INITIALIZER",
      description = "Classifier weight initializer (enables nc3 on the layer that feeds it).")
  String classifierWeight;

  @Option(names = "--classes", description = "Number of classes (default: the logits' width).")
  Integer classes;

  @Option(
      names = "--ifm-weights",
      paramLabel = "LAYER=IN,BIAS,OUT",
      description =
          "feature_complexity: the initializers IFM uses for LAYER instead of those found in the"
              + " graph: incoming weight [units, inputs], its bias (may be left empty) and the next"
              + " layer's weight [outputs, units]. Repeatable.")
  Map<String, String> ifmWeights = new LinkedHashMap<>();

  /** {@code --ifm-weights}, parsed: layer → (in, bias or null, out). */
  Map<String, String[]> ifmWeights() {
    Map<String, String[]> out = new LinkedHashMap<>();
    ifmWeights.forEach(
        (layer, spec) -> {
          String[] parts = spec.split(",", -1);
          if (parts.length != 3 || parts[0].isBlank() || parts[2].isBlank()) {
            throw new Main.UsageException(
                "--ifm-weights "
                    + layer
                    + "="
                    + spec
                    + ": expected LAYER=IN,BIAS,OUT (BIAS may be empty, e.g. h1=fc1.weight,,fc2.weight)");
          }
          if (!layers.isEmpty() && !layers.containsKey(layer)) {
            throw new Main.UsageException(
                "--ifm-weights " + layer + ": not a probed layer; layers are " + layers.keySet());
          }
          out.put(
              layer,
              new String[] {
                parts[0].trim(), parts[1].isBlank() ? null : parts[1].trim(), parts[2].trim()
              });
        });
    return out;
  }

  /** Whether the layers are to be picked from the graph; checks --layer and --layers agree. */
  boolean auto() {
    if (layersMode != null && !layersMode.equals("auto")) {
      throw new Main.UsageException(
          "--layers " + layersMode + ": only 'auto' is accepted; name layers with --layer");
    }
    if (layersMode != null && !layers.isEmpty()) {
      throw new Main.UsageException("--layers auto and --layer exclude each other");
    }
    if (layersMode == null && layers.isEmpty()) {
      throw new Main.UsageException(
          "at least one --layer NAME=TENSOR (or --layers auto) is needed");
    }
    return layersMode != null;
  }

  /** {@code --input}, or the model's only data input. */
  String input(byte[] model, Object where) {
    if (input != null) {
      return input;
    }
    try {
      List<OnnxGraph.ValueInfo> ins = OnnxGraph.parse(model).inputs();
      if (ins.size() != 1) {
        List<String> names = new ArrayList<>();
        ins.forEach(v -> names.add(v.name()));
        throw new Main.UsageException(
            "the model has " + ins.size() + " inputs " + names + "; choose one with --input");
      }
      return ins.get(0).name();
    } catch (OnnxFormatException e) {
      throw new Main.Failure(where + ": " + e.getMessage(), e);
    }
  }
}
