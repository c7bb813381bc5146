package io.probestream.cli;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ConfigException;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.kafka.KafkaSettings;
import io.probestream.service.publish.Publisher;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.ArrayList;
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
 * {@code probestream demo}: the embedded broker, the service, and the bundled example published
 * through the same {@link Publisher} as {@code probestream publish}; results are printed as they
 * arrive.
 */
@Command(
    name = "demo",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    sortOptions = false,
    description = {
      "Starts an in-process Kafka broker and the service, publishes the bundled example (a small"
          + " MLP and its reference set), and prints probe results as they arrive.",
      "Runs until Ctrl-C (or, with --once, until the example's results are in)."
    })
final class DemoCommand implements Callable<Integer> {
  private static final String EXPERIMENT = "demo-mlp";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ServiceOptions options;

  @Option(names = "--once", description = "Exit once the example's results are in (for scripts).")
  boolean once;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    PrintWriter out = spec.commandLine().getOut();
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
      // One result per layer (h1, h2) and per-layer probe, and one for the experiment.
      List<String> probes = config.probes().enabled();
      boolean multiplicity = probes.contains("predictive_multiplicity");
      CountDownLatch results =
          new CountDownLatch(2 * (probes.size() - (multiplicity ? 1 : 0)) + (multiplicity ? 1 : 0));
      rt.service
          .results()
          .addListener(
              r -> {
                synchronized (out) {
                  out.println(line(r));
                  out.flush();
                }
                results.countDown();
              });
      err.printf("probestream: Kafka %s (embedded: %s)%n", rt.bootstrap, rt.broker != null);
      ServeCommand.printUrls(err, rt.service.httpPort());
      publishExample(rt.bootstrap, config, err);
      err.flush();
      if (once) {
        if (!results.await(120, TimeUnit.SECONDS)) {
          throw new Main.Failure("no results within 120 s; see the log above", null);
        }
        return 0;
      }
      err.println("probestream: watching; Ctrl-C stops");
      err.flush();
      rt.runUntilStopped(err);
    }
    return 0;
  }

  private static void publishExample(String bootstrap, ProbestreamConfig config, PrintWriter err)
      throws Exception {
    byte[] model = resource("model.onnx");
    List<byte[]> reference = new ArrayList<>();
    reference.add(resource("reference-0.safetensors"));
    reference.add(resource("reference-1.safetensors"));
    try (Publisher p =
        new Publisher(
            bootstrap,
            config.topicNames(),
            config.limits().maxBatchBytes() + KafkaSettings.SLACK_BYTES,
            "probestream-demo")) {
      p.reference(EXPERIMENT, reference);
      CheckpointManifest.Blob blob = p.blob(EXPERIMENT, model, Publisher.DEFAULT_CHUNK_BYTES);
      Map<String, String> layers = new LinkedHashMap<>();
      layers.put("h1", "h1");
      layers.put("h2", "h2");
      p.checkpoint(
          new CheckpointManifest(
              EXPERIMENT,
              "seed-7",
              30,
              30L,
              Map.of("accuracy", 0.978),
              blob,
              "input",
              layers,
              "logits",
              "classifier.weight",
              5));
    }
    err.printf(
        "probestream: published experiment %s: 2 reference batches (1,000 samples), a %s model, checkpoint step 30%n",
        EXPERIMENT, "" + model.length + " bytes");
  }

  private static byte[] resource(String name) {
    try (InputStream in = DemoCommand.class.getResourceAsStream("/examples/mlp/" + name)) {
      if (in == null) {
        throw new IllegalStateException(
            "the bundled example file " + name + " is missing from the jar");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
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
