package io.probestream.cli;

import io.probestream.contracts.onnx.OnnxGraph;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code probestream inspect}: what a model offers to probe (inputs, tensors, classifier). */
@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description =
        "Lists an ONNX model's inputs, outputs, candidate layer tensors and 2-D initializers.")
final class InspectCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(paramLabel = "MODEL", description = "ONNX model file.")
  Path model;

  @Override
  public Integer call() throws Exception {
    if (!Files.isRegularFile(model)) {
      throw new Main.UsageException("MODEL " + model + ": no such file");
    }
    OnnxGraph g = OnnxGraph.parse(Files.readAllBytes(model));
    PrintWriter out = spec.commandLine().getOut();
    out.println("inputs:");
    for (OnnxGraph.ValueInfo v : g.inputs()) {
      out.println("  " + v.name() + " " + (v.dims() == null ? "[?]" : v.dims()));
    }
    out.println("outputs:");
    for (OnnxGraph.ValueInfo v : g.outputs()) {
      out.println("  " + v.name() + " " + (v.dims() == null ? "[?]" : v.dims()));
    }
    out.println("node outputs (candidate --layer tensors):");
    for (OnnxGraph.Node n : g.nodes()) {
      out.println("  " + String.join(", ", n.outputs()) + "  <- " + n.opType() + " " + n.inputs());
    }
    out.println("2-D initializers (candidate --classifier-weight):");
    for (Map.Entry<String, OnnxGraph.Initializer> e : g.initializers().entrySet()) {
      long[] dims = e.getValue().dims();
      if (dims.length == 2) {
        out.println("  " + e.getKey() + " " + Arrays.toString(dims) + consumers(g, e.getKey()));
      }
    }
    return 0;
  }

  private static String consumers(OnnxGraph g, String name) {
    for (OnnxGraph.Node n : g.nodes()) {
      List<String> in = n.inputs();
      if (in.indexOf(name) == 1 && (n.opType().equals("Gemm") || n.opType().equals("MatMul"))) {
        return "  weight of " + n.opType() + "(" + in.get(0) + ")";
      }
    }
    return "";
  }
}
