package io.probestream.cli;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import io.probestream.trainer.SimulatedTrainer;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code probestream train-sim}: the simulated trainer alone against any cluster, publishing
 * through the same {@link Publisher} as {@code probestream publish}; one progress line per
 * checkpoint on stdout.
 */
@Command(
    name = "train-sim",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    sortOptions = false,
    description = {
      "Trains small ReLU MLPs (several seeds of one experiment) on a synthetic 5-class Gaussian"
          + " mixture in 20 dimensions, in plain Java, and publishes the reference set and an ONNX"
          + " checkpoint every few steps, as an external training job would.",
      "Prints one line per checkpoint: run, step, training loss and accuracy."
    })
final class TrainSimCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--bootstrap-servers",
      required = true,
      paramLabel = "HOST:PORT,…",
      description = "Kafka cluster.")
  String bootstrapServers;

  @Option(
      names = "--experiment",
      defaultValue = "sim-mlp",
      description = "Experiment id (default: ${DEFAULT-VALUE}).")
  String experiment;

  @Option(
      names = "--topic-prefix",
      defaultValue = Topics.DEFAULT_PREFIX,
      description = "Topic prefix (default: ${DEFAULT-VALUE}).")
  String prefix;

  @Mixin Training training;

  @Option(
      names = "--max-request-bytes",
      defaultValue = "68157440",
      description = "Largest record to send (default: 64 MiB + 1 MiB, the service's batch limit).")
  long maxRequestBytes;

  /** The trainer's flags, shared with {@code demo}. */
  static final class Training {
    /** Optimiser steps per second of each run at {@code --speed 1}. */
    static final double BASE_STEPS_PER_SECOND = 25;

    @Option(
        names = "--seeds",
        defaultValue = "3",
        description = "Runs seed-1 … seed-N (default: ${DEFAULT-VALUE}).")
    int seeds;

    @Option(
        names = "--steps",
        defaultValue = "1000",
        description = "Optimiser steps per run (default: ${DEFAULT-VALUE}).")
    long steps;

    @Option(
        names = "--checkpoint-every",
        defaultValue = "50",
        paramLabel = "K",
        description = "Steps between checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointEvery;

    @Option(
        names = "--speed",
        defaultValue = "1",
        paramLabel = "X|max",
        description =
            "Pace: X × 25 steps per second per run (at the default --checkpoint-every, a"
                + " checkpoint of every run each 2 s / X); max trains without pauses (default:"
                + " ${DEFAULT-VALUE}).")
    String speed;

    SimulatedTrainer.Options options(String experiment) {
      double stepsPerSecond;
      if (speed.equals("max")) {
        stepsPerSecond = 0;
      } else {
        double x;
        try {
          x = Double.parseDouble(speed);
        } catch (NumberFormatException e) {
          x = Double.NaN;
        }
        if (!(x > 0) || Double.isInfinite(x)) {
          throw new Main.UsageException(
              "--speed " + speed + ": expected a number above 0 (1 = 25 steps/s per run) or max");
        }
        stepsPerSecond = x * BASE_STEPS_PER_SECOND;
      }
      try {
        return SimulatedTrainer.Options.standard(
            experiment, seeds, steps, checkpointEvery, stepsPerSecond);
      } catch (IllegalArgumentException e) {
        throw new Main.UsageException(e.getMessage());
      }
    }
  }

  @Override
  public Integer call() throws Exception {
    SimulatedTrainer.Options options = training.options(experiment);
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    err.printf(
        "probestream: training %s: %d run(s) × %d steps, a checkpoint every %d steps, to %s%n",
        experiment, options.seeds(), options.steps(), options.checkpointEvery(), bootstrapServers);
    err.flush();
    try (Publisher p =
        new Publisher(
            bootstrapServers, new Topics(prefix), maxRequestBytes, "probestream-train-sim")) {
      new SimulatedTrainer(options)
          .run(sink(p), c -> println(out, progress(experiment, options, c)));
    }
    err.printf("probestream: training %s finished%n", experiment);
    return 0;
  }

  /** The trainer's records, sent through {@code p} (blobs in its default chunk size). */
  static SimulatedTrainer.Sink sink(Publisher p) {
    return new SimulatedTrainer.Sink() {
      @Override
      public void reference(String experiment, List<byte[]> batches) throws Exception {
        p.reference(experiment, batches);
      }

      @Override
      public CheckpointManifest.Blob blob(String experiment, byte[] model) throws Exception {
        return p.blob(experiment, model, Publisher.DEFAULT_CHUNK_BYTES);
      }

      @Override
      public void checkpoint(CheckpointManifest manifest) throws Exception {
        p.checkpoint(manifest);
      }
    };
  }

  /** One progress line: run, step, training loss and accuracy, reference accuracy. */
  static String progress(
      String experiment, SimulatedTrainer.Options options, SimulatedTrainer.Checkpoint c) {
    long index = (c.step() + options.checkpointEvery() - 1) / options.checkpointEvery();
    return String.format(
        Locale.ROOT,
        "train %s/%s step %d loss %.4f accuracy %.4f val_accuracy %.4f  (checkpoint %d/%d, %d bytes)",
        experiment,
        c.run(),
        c.step(),
        c.train().loss(),
        c.train().accuracy(),
        c.reference().accuracy(),
        index,
        options.checkpointsPerRun(),
        c.model().length);
  }

  private static void println(PrintWriter w, String line) {
    synchronized (w) {
      w.println(line);
      w.flush();
    }
  }
}
