package io.probestream.cli;

import io.probestream.contracts.config.ConfigException;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.kafka.KafkaSettings;
import io.probestream.service.publish.Publisher;
import io.probestream.trainer.SimulatedTrainer;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code probestream demo}: the embedded broker, the service, and the simulated trainer (several
 * seeds of small MLPs trained in plain Java) publishing to it through the same {@link Publisher} as
 * {@code probestream publish}; probe results are printed as they arrive, training progress on
 * stderr.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    sortOptions = false,
    description = {
      "Starts an in-process Kafka broker and the service, trains small MLPs (three seeds by"
          + " default) on a synthetic task, publishes a checkpoint of each every few steps, and"
          + " prints probe results as they arrive.",
      "Runs until Ctrl-C (or, with --once, until the last checkpoint's results are in)."
    })
final class DemoCommand implements Callable<Integer> {
  private static final String EXPERIMENT = "demo-sim";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ServiceOptions options;

  @Mixin TrainSimCommand.Training training;

  @Option(
      names = "--once",
      description = "Exit once every checkpoint's results are in (for scripts and tests).")
  boolean once;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    PrintWriter out = spec.commandLine().getOut();
    SimulatedTrainer.Options trainer = training.options(EXPERIMENT);
    Map<String, String> forced = new LinkedHashMap<>();
    if (options.bootstrapServers == null) {
      forced.put("kafka.embedded", "true");
    }
    if (options.dataDir == null) {
      forced.put("data-dir", Files.createTempDirectory("probestream-demo-").toString());
    }
    if (options.httpPort == null && !options.set.containsKey("http.port")) {
      forced.put("http.port", "0");
    }
    ProbestreamConfig config;
    try {
      config = options.load(System.getenv(), forced);
    } catch (ConfigException e) {
      throw new Main.UsageException(e.getMessage());
    }
    try (ServiceRuntime rt = ServiceRuntime.start(config, err)) {
      // Per checkpoint one result per layer (h1, h2) and per-layer probe, and one for the
      // experiment's predictive multiplicity.
      List<String> probes = config.probes().enabled();
      int multiplicity = probes.contains("predictive_multiplicity") ? 1 : 0;
      long perCheckpoint = 2L * (probes.size() - multiplicity) + multiplicity;
      long checkpoints = trainer.seeds() * trainer.checkpointsPerRun();
      CountDownLatch results = new CountDownLatch((int) (checkpoints * perCheckpoint));
      rt.service
          .results()
          .addListener(
              r -> {
                synchronized (out) {
                  out.println(line(r));
                  out.flush();
                }
                if (r.experiment().equals(EXPERIMENT)) {
                  results.countDown();
                }
              });
      err.printf("probestream: Kafka %s (embedded: %s)%n", rt.bootstrap, rt.broker != null);
      ServeCommand.printUrls(err, rt.service.httpPort(), config.http().tlsEnabled());
      err.printf(
          "probestream: training %s: %d seed(s) × %d steps, a checkpoint every %d steps (%d"
              + " checkpoints, %d results to come)%n",
          EXPERIMENT,
          trainer.seeds(),
          trainer.steps(),
          trainer.checkpointEvery(),
          checkpoints,
          checkpoints * perCheckpoint);
      err.flush();
      Training job = new Training(rt.bootstrap, config, trainer, err);
      job.thread.start();
      if (once) {
        job.thread.join();
        if (job.failure != null) {
          throw new Main.Failure(
              "the simulated trainer failed: " + job.failure.getMessage(), job.failure);
        }
        if (!results.await(120, TimeUnit.SECONDS)) {
          throw new Main.Failure(
              "training finished but "
                  + results.getCount()
                  + " results had not arrived 120 s later; see the log above",
              null);
        }
        return 0;
      }
      err.println("probestream: watching; Ctrl-C stops");
      err.flush();
      CountDownLatch stopped = new CountDownLatch(1);
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    err.println("probestream: stopping…");
                    err.flush();
                    job.thread.interrupt();
                    try {
                      job.thread.join(10_000);
                    } catch (InterruptedException e) {
                      Thread.currentThread().interrupt();
                    }
                    stop(rt);
                    stopped.countDown();
                  },
                  "probestream-shutdown"));
      job.thread.join();
      if (job.failure != null) {
        err.println("probestream: the simulated trainer failed: " + job.failure.getMessage());
      } else if (!job.interrupted) {
        err.println("probestream: training finished; the service keeps serving; Ctrl-C stops");
      }
      err.flush();
      stopped.await();
    }
    return 0;
  }

  // The trainer thread is stopped first, so it never publishes to a closed broker.
  private static void stop(ServiceRuntime rt) {
    rt.close();
  }

  /** The trainer on its own thread; {@code failure} is set when it ends in error. */
  private static final class Training {
    final Thread thread;
    volatile Exception failure;
    volatile boolean interrupted;

    Training(
        String bootstrap,
        ProbestreamConfig config,
        SimulatedTrainer.Options options,
        PrintWriter err) {
      this.thread =
          new Thread(
              () -> {
                try (Publisher p =
                    new Publisher(
                        bootstrap,
                        config.topicNames(),
                        config.limits().maxBatchBytes() + KafkaSettings.SLACK_BYTES,
                        "probestream-demo")) {
                  new SimulatedTrainer(options)
                      .run(
                          TrainSimCommand.sink(p),
                          c -> {
                            synchronized (err) {
                              err.println(
                                  "probestream: "
                                      + TrainSimCommand.progress(EXPERIMENT, options, c));
                              err.flush();
                            }
                          });
                } catch (InterruptedException e) {
                  interrupted = true; // Ctrl-C: the shutdown hook stops training first
                } catch (Exception e) {
                  failure = e;
                }
              },
              "probestream-trainer");
      thread.setDaemon(true);
    }
  }

  static String line(ProbeResult r) {
    Map<String, Double> m = r.metrics();
    String head =
        String.format(
            Locale.ROOT,
            "%s %s%s step %d%s samples %s",
            r.probe(),
            r.experiment(),
            r.run() == null ? "" : "/" + r.run(),
            r.step(),
            r.layer() == null ? "" : String.format(Locale.ROOT, " layer %-4s", r.layer()),
            fmt(m.get("samples")));
    String body;
    if (r.probe().equals("neural_collapse")) {
      body =
          String.format(
              Locale.ROOT,
              " nc1 %s nc1_trace %s etf %s cdnv %s%s%s",
              fmt(m.get("nc1")),
              fmt(m.get("nc1_trace")),
              fmt(m.get("nc2_etf_distance")),
              fmt(m.get("cdnv")),
              m.containsKey("nc3_self_duality") ? " nc3 " + fmt(m.get("nc3_self_duality")) : "",
              m.containsKey("nc4_ncc_mismatch") ? " nc4 " + fmt(m.get("nc4_ncc_mismatch")) : "");
    } else {
      StringBuilder b = new StringBuilder();
      m.forEach(
          (k, v) -> {
            if (!k.equals("samples") && !k.equals("nonfinite")) {
              b.append(' ').append(k).append(' ').append(fmt(v));
            }
          });
      if (r.members() != null) {
        // which runs the ε-Rashomon set draws on: checkpoints per run, by run
        Map<String, Integer> perRun = new java.util.TreeMap<>();
        r.members().forEach(c -> perRun.merge(String.valueOf(c.run()), 1, Integer::sum));
        b.append(" members");
        perRun.forEach((run, n) -> b.append(' ').append(run).append(':').append(n));
      }
      body = b.toString();
    }
    return String.format(Locale.ROOT, "%s%s  (%d ms, %s)", head, body, r.latencyMs(), r.device());
  }

  private static String fmt(Double v) {
    if (v == null) {
      return "null";
    }
    return v == Math.rint(v) && Math.abs(v) < 1e15
        ? Long.toString(v.longValue())
        : String.format(Locale.ROOT, "%.4g", v);
  }
}
