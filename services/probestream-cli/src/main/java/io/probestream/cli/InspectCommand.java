package io.probestream.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.probestream.inference.InferenceException;
import io.probestream.inference.ModelInspector;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code probestream inspect}: what a model offers to probe. */
@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = {
      "Lists an ONNX model's inputs, outputs, every intermediate tensor (op, type, inferred shape),"
          + " its initializers, the detected classifier and the layers --layers auto would probe."
    })
final class InspectCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Parameters(paramLabel = "MODEL", description = "ONNX model file.")
  Path model;

  @Option(names = "--format", defaultValue = "table", description = "table (default) or json.")
  String format;

  @Override
  public Integer call() throws Exception {
    if (!Files.isRegularFile(model)) {
      throw new Main.UsageException("MODEL " + model + ": no such file");
    }
    if (!format.equals("table") && !format.equals("json")) {
      throw new Main.UsageException("--format " + format + ": expected table or json");
    }
    ModelInspector.Report r;
    try {
      r = ModelInspector.inspect(Files.readAllBytes(model));
    } catch (InferenceException e) {
      throw new Main.Failure(model + ": " + e.getMessage(), e);
    }
    PrintWriter out = spec.commandLine().getOut();
    if (format.equals("json")) {
      out.println(
          new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(r));
      return 0;
    }
    section(out, "inputs", r.inputs());
    section(out, "outputs", r.outputs());
    section(out, "intermediate tensors (any can be a --layer)", r.intermediates());
    section(out, "initializers", r.initializers());
    out.println(
        "classifier: "
            + (r.classifierWeight() == null ? "not detected" : "weight " + r.classifierWeight())
            + (r.classifierInput() == null ? "" : ", fed by " + r.classifierInput()));
    out.println("layers auto: " + String.join(", ", r.autoLayers()));
    return 0;
  }

  private static void section(PrintWriter out, String title, List<ModelInspector.Tensor> tensors) {
    out.println(title + ":");
    int w = 4;
    int o = 2;
    for (ModelInspector.Tensor t : tensors) {
      w = Math.max(w, t.name().length());
      o = Math.max(o, t.op().length());
    }
    for (ModelInspector.Tensor t : tensors) {
      out.printf("  %-" + w + "s  %-" + o + "s  %-8s %s%n", t.name(), t.op(), t.type(), t.shape());
    }
  }
}
