package io.probestream.cli;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code probestream publish}: sends checkpoints and batches to any cluster (DESIGN.md §3). */
@Command(
    name = "publish",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description =
        "Publishes a checkpoint, a reference set or one batch, so no other Kafka client is needed.",
    subcommands = {
      PublishCommand.Checkpoint.class,
      PublishCommand.Reference.class,
      PublishCommand.Batch.class
    })
final class PublishCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(), "choose what to publish: checkpoint, reference or batch");
  }

  /** Options every publish subcommand takes. */
  static final class Target {
    @Option(
        names = "--bootstrap-servers",
        required = true,
        paramLabel = "HOST:PORT,…",
        description = "Kafka cluster.")
    String bootstrapServers;

    @Option(
        names = "--topic-prefix",
        defaultValue = Topics.DEFAULT_PREFIX,
        description = "Topic prefix (default: ${DEFAULT-VALUE}).")
    String prefix;

    @Option(
        names = "--experiment",
        required = true,
        description = "Experiment id (the record key).")
    String experiment;

    @Option(
        names = "--max-request-bytes",
        defaultValue = "68157440",
        description =
            "Largest record to send (default: 64 MiB + 1 MiB, the service's batch limit).")
    long maxRequestBytes;

    Publisher publisher() {
      return new Publisher(
          bootstrapServers, new Topics(prefix), maxRequestBytes, "probestream-cli");
    }
  }

  static byte[] read(Path p) throws java.io.IOException {
    try {
      return Files.readAllBytes(p);
    } catch (NoSuchFileException e) {
      throw new Main.UsageException(p + ": no such file");
    }
  }

  @Command(
      name = "checkpoint",
      mixinStandardHelpOptions = true,
      sortOptions = false,
      description = "Sends a model as blob chunks (or names a file:// URI) and its manifest.")
  static final class Checkpoint implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin Target target;
    @CommandLine.Mixin ModelOptions tensors;

    @Option(names = "--run", required = true, description = "Run id.")
    String run;

    @Option(names = "--step", required = true, description = "Training step.")
    long step;

    @Option(names = "--epoch", description = "Epoch.")
    Long epoch;

    @Option(
        names = "--model",
        required = true,
        paramLabel = "FILE",
        description = "ONNX model file.")
    Path model;

    @Option(
        names = "--model-uri",
        paramLabel = "URI",
        description = "Send this file:// URI in the manifest instead of the model bytes.")
    String modelUri;

    @Option(
        names = "--metric",
        paramLabel = "NAME=VALUE",
        description = "A training metric (loss, accuracy…). Repeatable.")
    Map<String, Double> metrics = new LinkedHashMap<>();

    @Option(
        names = "--chunk-bytes",
        defaultValue = "524288",
        description = "Blob chunk size (default: ${DEFAULT-VALUE}).")
    int chunkBytes;

    @Override
    public Integer call() throws Exception {
      byte[] bytes = read(model);
      boolean auto = tensors.auto();
      String in = tensors.input(bytes, model);
      int c = tensors.classes != null ? tensors.classes : logitsWidth(OnnxGraph.parse(bytes));
      PrintWriter err = spec.commandLine().getErr();
      Map<String, CheckpointManifest.IfmWeights> ifm = new LinkedHashMap<>();
      tensors
          .ifmWeights()
          .forEach((l, w) -> ifm.put(l, new CheckpointManifest.IfmWeights(w[0], w[1], w[2])));
      try (Publisher p = target.publisher()) {
        CheckpointManifest.ModelRef ref =
            modelUri != null
                ? new CheckpointManifest.Uri(modelUri)
                : p.blob(target.experiment, bytes, chunkBytes);
        CheckpointManifest m =
            new CheckpointManifest(
                target.experiment,
                run,
                step,
                epoch,
                metrics,
                ref,
                in,
                tensors.layers,
                tensors.logits,
                tensors.classifierWeight,
                c,
                auto,
                ifm);
        p.checkpoint(m);
        err.printf(
            "probestream: published checkpoint %s/%s step %d (%s)%n",
            target.experiment,
            run,
            step,
            ref instanceof CheckpointManifest.Blob b
                ? b.chunks() + " chunk(s), sha256 " + b.sha256()
                : "uri " + modelUri);
      }
      return 0;
    }

    private int logitsWidth(OnnxGraph g) {
      for (OnnxGraph.ValueInfo v : g.outputs()) {
        if (v.name().equals(tensors.logits)
            && v.dims() != null
            && v.dims().size() == 2
            && v.dims().get(1).fixed()) {
          return (int) v.dims().get(1).size();
        }
      }
      throw new Main.UsageException(
          "the width of '" + tensors.logits + "' is not fixed in the model; give --classes");
    }
  }

  @Command(
      name = "reference",
      mixinStandardHelpOptions = true,
      description =
          "Sends safetensors files as an experiment's reference set (index 0.., the last final).")
  static final class Reference implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin Target target;

    @Parameters(
        arity = "1..*",
        paramLabel = "FILE",
        description = "Batches in reference-set order.")
    List<Path> files;

    @Override
    public Integer call() throws Exception {
      List<byte[]> batches = new ArrayList<>();
      for (Path f : files) {
        batches.add(read(f));
      }
      try (Publisher p = target.publisher()) {
        p.reference(target.experiment, batches);
      }
      spec.commandLine()
          .getErr()
          .printf(
              "probestream: published a reference set of %d batch(es) for %s%n",
              batches.size(), target.experiment);
      return 0;
    }
  }

  @Command(name = "batch", mixinStandardHelpOptions = true, description = "Sends one batch.")
  static final class Batch implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin Target target;

    @Option(
        names = "--split",
        defaultValue = Headers.SPLIT_REFERENCE,
        description = "reference (default), train or eval.")
    String split;

    @Option(names = "--index", required = true, description = "Batch index (0-based).")
    int index;

    @Option(names = "--final", description = "Mark the reference set's last batch.")
    boolean last;

    @Option(names = "--run", description = "Run id (live splits).")
    String run;

    @Option(names = "--step", description = "Step (live splits).")
    Long step;

    @Parameters(paramLabel = "FILE", description = "safetensors file.")
    Path file;

    @Override
    public Integer call() throws Exception {
      try (Publisher p = target.publisher()) {
        p.batch(target.experiment, split, index, last, read(file), run, step);
      }
      spec.commandLine().getErr().printf("probestream: published batch %d (%s)%n", index, split);
      return 0;
    }
  }
}
