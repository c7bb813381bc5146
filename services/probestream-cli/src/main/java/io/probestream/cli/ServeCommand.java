package io.probestream.cli;

import io.probestream.contracts.config.ConfigException;
import io.probestream.contracts.config.ProbestreamConfig;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code probestream serve}: the streaming service, against a cluster or its own broker. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    sortOptions = false,
    description = {
      "Consumes checkpoints, blobs and reference batches from Kafka, evaluates every checkpoint"
          + " and publishes probe results, with /metrics, /health and /api over HTTP.",
      "Runs until Ctrl-C or SIGTERM."
    })
final class ServeCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ServiceOptions options;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    ProbestreamConfig config;
    try {
      config = options.load(System.getenv(), Map.of());
    } catch (ConfigException e) {
      throw new Main.UsageException(e.getMessage());
    }
    try (ServiceRuntime rt = ServiceRuntime.start(config, err)) {
      err.printf(
          "probestream: serving; Kafka %s%s, topics %s*, data %s%n",
          rt.bootstrap,
          rt.broker != null ? " (embedded)" : "",
          config.topics().prefix(),
          config.dataDir());
      printUrls(err, rt.service.httpPort(), config.http().tlsEnabled());
      err.flush();
      rt.runUntilStopped(err);
    }
    return 0;
  }

  static void printUrls(PrintWriter err, int port, boolean https) {
    String base = (https ? "https" : "http") + "://localhost:" + port;
    err.printf("probestream: dashboard  %s/%n", base);
    err.printf("probestream: metrics    %s/metrics%n", base);
    err.printf("probestream: health     %s/health/ready%n", base);
    err.printf("probestream: results    %s/api/v1/experiments%n", base);
  }
}
