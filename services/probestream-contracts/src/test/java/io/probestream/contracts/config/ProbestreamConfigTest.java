package io.probestream.contracts.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProbestreamConfigTest {
  @TempDir Path dir;

  @Test
  void flagsBeatEnvironmentWhichBeatsTheFileWhichBeatsDefaults() throws Exception {
    Path file = dir.resolve("p.properties");
    Files.writeString(
        file,
        "probestream.http.port=9000\nworkers.threads=3\nprobestream.pending.max-checkpoints=5\n"
            + "probestream.kafka.embedded=true\n");
    Map<String, String> env =
        Map.of("PROBESTREAM_WORKERS_THREADS", "2", "PROBESTREAM_PENDING_MAX_CHECKPOINTS", "7");
    ProbestreamConfig c =
        ProbestreamConfig.load(ConfigSource.of(file, env, Map.of("pending.max-checkpoints", "9")));
    assertThat(c.http().port()).isEqualTo(9000); // file over default
    assertThat(c.workers().threads()).isEqualTo(3); // file over environment for the same key
    assertThat(c.pending().maxCheckpoints()).isEqualTo(9); // flag over both
    assertThat(c.workers().maxInFlight()).isEqualTo(6); // default: 2 × threads
    assertThat(c.limits().maxBatchBytes()).isEqualTo(67_108_864); // default
    assertThat(c.topicNames().batches()).isEqualTo("probestream.batches");
  }

  @Test
  void environmentFillsWhatNoFileOrFlagSets() {
    ProbestreamConfig c =
        ProbestreamConfig.load(
            ConfigSource.of(
                null,
                Map.of(
                    "PROBESTREAM_KAFKA_BOOTSTRAP_SERVERS", "k:9092", "PROBESTREAM_HTTP_PORT", "81"),
                Map.of()));
    assertThat(c.kafka().bootstrapServers()).isEqualTo("k:9092");
    assertThat(c.http().port()).isEqualTo(81);
  }

  @Test
  void anUnknownKeyIsAnErrorThatSuggestsTheNearestOne() {
    assertThatThrownBy(
            () -> ProbestreamConfig.of(Map.of("kafka.embedded", "true", "worker.threads", "2")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.worker.threads: unknown key; did you mean probestream.workers.threads?");
  }

  @Test
  void invalidValuesNameTheKeyAndTheRule() {
    assertThatThrownBy(
            () -> ProbestreamConfig.of(Map.of("kafka.embedded", "true", "workers.threads", "0")))
        .hasMessage("probestream.workers.threads = 0: must be 1..256");
    assertThatThrownBy(() -> ProbestreamConfig.of(Map.of("kafka.embedded", "yes")))
        .hasMessage("probestream.kafka.embedded = 'yes': must be true or false");
    assertThatThrownBy(
            () ->
                ProbestreamConfig.of(
                    Map.of(
                        "kafka.embedded",
                        "true",
                        "workers.threads",
                        "4",
                        "workers.max-in-flight",
                        "2")))
        .hasMessage(
            "probestream.workers.max-in-flight = 2 is below probestream.workers.threads = 4, so threads"
                + " would sit idle; raise the first or lower the second");
    assertThatThrownBy(() -> ProbestreamConfig.of(Map.of()))
        .hasMessage(
            "probestream.kafka.bootstrap-servers is empty and probestream.kafka.embedded = false: name a"
                + " cluster (--bootstrap-servers) or use --embedded-kafka");
  }

  @Test
  void allowedHostsAreHostsOrHostPortsAndNothingElse() {
    ProbestreamConfig c =
        ProbestreamConfig.of(
            Map.of(
                "kafka.embedded",
                "true",
                "model.allowed-hosts",
                "Models.Example.com, 127.0.0.1:8080,[::1]:9000"));
    assertThat(c.model().allowedHosts())
        .containsExactly("models.example.com", "127.0.0.1:8080", "[::1]:9000");
    assertThat(c.model().httpTimeoutMs()).isEqualTo(30_000);
    for (String bad : new String[] {"http://models.example.com", "*.example.com", "h:0", "h/x"}) {
      assertThatThrownBy(
              () ->
                  ProbestreamConfig.of(
                      Map.of("kafka.embedded", "true", "model.allowed-hosts", bad)))
          .as(bad)
          .hasMessage(
              "probestream.model.allowed-hosts entry '"
                  + bad
                  + "': must be a host or host:port (port 1..65535), without scheme, path or"
                  + " wildcard");
    }
  }

  @Test
  void withoutATokenFileHttpAuthIsOffAndTheOpenPathsAreTheDefaults() {
    ProbestreamConfig c = ProbestreamConfig.of(Map.of("kafka.embedded", "true"));
    assertThat(c.http().authEnabled()).isFalse();
    assertThat(c.http().authToken()).isEmpty();
    assertThat(c.http().openPaths()).containsExactly("/health/", "/metrics");
  }

  @Test
  void theTokenIsReadOnceTrimmedAndNeverShown() throws Exception {
    Path file = dir.resolve("token");
    Files.writeString(file, "  s3cret-token-0123456789\n");
    ProbestreamConfig c =
        ProbestreamConfig.of(
            Map.of(
                "kafka.embedded",
                "true",
                "http.auth-token-file",
                file.toString(),
                "http.open-paths",
                "/health/, /metrics,/webjars/"));
    Files.writeString(file, "changed-afterwards-0123456789");
    assertThat(c.http().authEnabled()).isTrue();
    assertThat(c.http().authToken()).isEqualTo("s3cret-token-0123456789");
    assertThat(c.http().openPaths()).containsExactly("/health/", "/metrics", "/webjars/");
    assertThat(c.toString()).doesNotContain("s3cret").contains("authToken=(set)");
  }

  @Test
  void anEmptyShortMissingTokenFileOrABadOpenPathIsAClearError() throws Exception {
    Path empty = dir.resolve("empty");
    Files.writeString(empty, " \n");
    Path shortToken = dir.resolve("short");
    Files.writeString(shortToken, "fifteen-chars-x\n");
    assertThatThrownBy(
            () ->
                ProbestreamConfig.of(
                    Map.of("kafka.embedded", "true", "http.auth-token-file", empty.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage("probestream.http.auth-token-file = " + empty + ": the token file is empty");
    assertThatThrownBy(
            () ->
                ProbestreamConfig.of(
                    Map.of(
                        "kafka.embedded", "true", "http.auth-token-file", shortToken.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.http.auth-token-file = "
                + shortToken
                + ": the token is 15 characters; use at least 16")
        .message()
        .doesNotContain("fifteen");
    Path missing = dir.resolve("missing");
    assertThatThrownBy(
            () ->
                ProbestreamConfig.of(
                    Map.of("kafka.embedded", "true", "http.auth-token-file", missing.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessageStartingWith(
            "probestream.http.auth-token-file = " + missing + ": cannot read the token file");
    assertThatThrownBy(
            () -> ProbestreamConfig.of(Map.of("kafka.embedded", "true", "http.open-paths", "api/")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.http.open-paths entry 'api/': must be a path prefix starting with /");
  }

  @Test
  void environmentNamesDeriveFromKeys() {
    assertThat(ConfigKey.of("probestream.workers.max-in-flight", "", "").environmentVariable())
        .isEqualTo("PROBESTREAM_WORKERS_MAX_IN_FLIGHT");
  }

  @Test
  void readmeConfigTableIsTheGeneratedOne() throws Exception {
    String readme = Files.readString(Path.of("../../README.md"));
    int start = readme.indexOf("<!-- config-table:start -->\n");
    int end = readme.indexOf("<!-- config-table:end -->");
    assertThat(start).as("README has the config table markers").isNotNegative();
    assertThat(readme.substring(start + "<!-- config-table:start -->\n".length(), end))
        .isEqualTo(ProbestreamConfig.markdownTable());
  }

  @Test
  void everyDeclaredKeyIsListedForTheDocumentation() throws Exception {
    // Every static ConfigKey of the configuration records must appear in keys(), or the README
    // table (and the unknown-key suggestions) would silently miss it.
    java.util.Set<String> declared = new java.util.TreeSet<>();
    for (Class<?> c : ProbestreamConfig.class.getDeclaredClasses()) {
      collect(c, declared);
    }
    collect(ProbestreamConfig.class, declared);
    java.util.Set<String> listed = new java.util.TreeSet<>();
    ProbestreamConfig.keys().forEach(k -> listed.add(k.name()));
    assertThat(listed).isEqualTo(declared);
  }

  private static void collect(Class<?> c, java.util.Set<String> out) throws IllegalAccessException {
    for (java.lang.reflect.Field f : c.getDeclaredFields()) {
      if (f.getType() == ConfigKey.class && java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
        f.setAccessible(true);
        out.add(((ConfigKey) f.get(null)).name());
      }
    }
  }
}
