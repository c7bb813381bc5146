package io.probestream.inference;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.probestream.contracts.onnx.OnnxFormatException;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.DlqReason;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a model offers to probe: its inputs and outputs, every intermediate tensor with the op that
 * makes it and the type and shape ONNX Runtime infers for it, its initializers, the classifier it
 * detects and the layers {@code auto} would pick. Blocking; stateless.
 */
public final class ModelInspector {
  private ModelInspector() {}

  /** One tensor: name, producing op (or "input"/"initializer"), element type and shape. */
  public record Tensor(String name, String op, String type, List<String> shape) {}

  /** The report; {@code classifierWeight} and {@code classifierInput} may be null. */
  public record Report(
      List<Tensor> inputs,
      List<Tensor> outputs,
      List<Tensor> intermediates,
      List<Tensor> initializers,
      String classifierWeight,
      String classifierInput,
      List<String> autoLayers) {}

  /**
   * Inspects {@code model}; the logits are the graph output named {@code logits}, else the last
   * output made by a Gemm or MatMul (+Add), else the last output.
   */
  public static Report inspect(byte[] model) {
    OnnxGraph g;
    try {
      g = OnnxGraph.parse(model);
    } catch (OnnxFormatException e) {
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, e.getMessage(), e);
    }
    List<String> names = new ArrayList<>();
    Map<String, String> ops = new LinkedHashMap<>();
    for (OnnxGraph.Node n : g.nodes()) {
      for (String o : n.outputs()) {
        if (!o.isEmpty()) {
          names.add(o);
          ops.put(o, n.opType());
        }
      }
    }
    List<String> expose = new ArrayList<>();
    for (String n : names) {
      if (!g.isOutput(n)) {
        expose.add(n);
      }
    }
    Map<String, NodeInfo> inferred = new LinkedHashMap<>();
    Map<String, NodeInfo> inputs = new LinkedHashMap<>();
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
      // No optimisation: fused graphs would hide the tensors we want to list.
      so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      try (OrtSession s =
          ModelSession.environment().createSession(OnnxGraph.withOutputs(model, expose), so)) {
        inferred.putAll(s.getOutputInfo());
        inputs.putAll(s.getInputInfo());
      }
    } catch (OrtException e) {
      throw new InferenceException(
          DlqReason.MODEL_UNLOADABLE, "ONNX Runtime cannot load the model: " + e.getMessage(), e);
    }
    List<Tensor> in = new ArrayList<>();
    inputs.forEach((n, info) -> in.add(tensor(n, "input", info)));
    List<Tensor> out = new ArrayList<>();
    List<Tensor> mid = new ArrayList<>();
    for (OnnxGraph.ValueInfo v : g.outputs()) {
      out.add(tensor(v.name(), ops.getOrDefault(v.name(), "?"), inferred.get(v.name())));
    }
    for (String n : names) {
      if (!g.isOutput(n)) {
        mid.add(tensor(n, ops.get(n), inferred.get(n)));
      }
    }
    List<Tensor> inits = new ArrayList<>();
    g.initializers()
        .forEach(
            (n, t) -> {
              List<String> dims = new ArrayList<>();
              for (long d : t.dims()) {
                dims.add(Long.toString(d));
              }
              inits.add(new Tensor(n, "initializer", dtype(t.dataType()), dims));
            });
    String logits = logitsOf(g);
    String weight = null;
    String feed = logits == null ? null : g.classifierInputOf(logits);
    OnnxGraph.Node producer = logits == null ? null : g.producerOf(logits);
    if (producer != null && producer.opType().equals("Add")) {
      for (String i : producer.inputs()) {
        OnnxGraph.Node mm = g.producerOf(i);
        if (mm != null && mm.opType().equals("MatMul")) {
          producer = mm;
        }
      }
    }
    if (producer != null
        && producer.inputs().size() > 1
        && g.initializers().containsKey(producer.inputs().get(1))) {
      weight = producer.inputs().get(1);
    }
    return new Report(
        in, out, mid, inits, weight, feed, g.autoLayers(feed, CheckpointEvaluator.AUTO_LAYERS));
  }

  private static Tensor tensor(String name, String op, NodeInfo info) {
    if (info == null || !(info.getInfo() instanceof TensorInfo t)) {
      return new Tensor(name, op, "?", List.of());
    }
    List<String> dims = new ArrayList<>();
    String[] symbolic = t.getDimensionNames();
    long[] shape = t.getShape();
    for (int i = 0; i < shape.length; i++) {
      dims.add(
          shape[i] >= 0
              ? Long.toString(shape[i])
              : (symbolic != null && i < symbolic.length && !symbolic[i].isEmpty()
                  ? symbolic[i]
                  : "?"));
    }
    return new Tensor(name, op, t.type.toString().toLowerCase(java.util.Locale.ROOT), dims);
  }

  private static String logitsOf(OnnxGraph g) {
    String last = null;
    String classifier = null;
    for (OnnxGraph.ValueInfo v : g.outputs()) {
      if (v.name().equals("logits")) {
        return v.name();
      }
      last = v.name();
      if (g.classifierInputOf(v.name()) != null) {
        classifier = v.name();
      }
    }
    return classifier != null ? classifier : last;
  }

  /** TensorProto.DataType names (onnx.proto). */
  private static String dtype(int code) {
    return switch (code) {
      case 1 -> "float";
      case 2 -> "uint8";
      case 3 -> "int8";
      case 6 -> "int32";
      case 7 -> "int64";
      case 9 -> "bool";
      case 10 -> "float16";
      case 11 -> "double";
      case 16 -> "bfloat16";
      default -> "type " + code;
    };
  }
}
