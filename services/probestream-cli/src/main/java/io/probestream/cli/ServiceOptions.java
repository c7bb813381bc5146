package io.probestream.cli;

import io.probestream.contracts.config.ConfigSource;
import io.probestream.contracts.config.ProbestreamConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Option;

/**
 * The settings every service-side subcommand shares (DESIGN.md §6); each flag is a shorthand for
 * one configuration key, and {@code --set key=value} reaches any other.
 */
final class ServiceOptions {
  @Option(
      names = "--bootstrap-servers",
      paramLabel = "HOST:PORT,…",
      description = "Kafka cluster to use.")
  String bootstrapServers;

  @Option(
      names = "--embedded-kafka",
      description = "Run a single-node Kafka broker inside this process.")
  Boolean embeddedKafka;

  @Option(
      names = "--kafka-port",
      paramLabel = "PORT",
      description = "Port of the embedded broker (default: a free one).")
  Integer kafkaPort;

  @Option(
      names = "--http-port",
      paramLabel = "PORT",
      description = "HTTP port for /metrics, /health, /api (default 8080).")
  Integer httpPort;

  @Option(
      names = "--data-dir",
      paramLabel = "DIR",
      description = "Blobs, reference sets and the embedded broker's data.")
  Path dataDir;

  @Option(names = "--device", paramLabel = "DEVICE", description = "auto, cpu or cuda[:N].")
  String device;

  @Option(
      names = "--config",
      paramLabel = "FILE",
      description = "A properties file of probestream.* keys.")
  Path configFile;

  @Option(
      names = "--set",
      paramLabel = "KEY=VALUE",
      description = "Any configuration key (see README), e.g. --set workers.threads=2.")
  Map<String, String> set = new LinkedHashMap<>();

  /** Defaults &lt; file &lt; PROBESTREAM_* environment &lt; --set &lt; the shorthand flags. */
  ProbestreamConfig load(Map<String, String> environment, Map<String, String> forced) {
    Map<String, String> flags = new LinkedHashMap<>(set);
    put(flags, "kafka.bootstrap-servers", bootstrapServers);
    put(flags, "kafka.embedded", embeddedKafka);
    put(flags, "kafka.port", kafkaPort);
    put(flags, "http.port", httpPort);
    put(flags, "data-dir", dataDir);
    put(flags, "model.device", device);
    flags.putAll(forced);
    return ProbestreamConfig.load(ConfigSource.of(configFile, environment, flags));
  }

  private static void put(Map<String, String> flags, String key, Object value) {
    if (value != null) {
      flags.put(key, value.toString());
    }
  }
}
