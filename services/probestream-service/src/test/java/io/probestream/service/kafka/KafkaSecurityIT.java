package io.probestream.service.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.embedded.EmbeddedKafka;
import io.probestream.service.Fixtures;
import io.probestream.service.ProbestreamService;
import io.probestream.service.ServiceHarness;
import io.probestream.testkit.KafkaTestCluster;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The service against a broker that demands SASL/SCRAM-SHA-512: every client of the service (admin,
 * producer, results reader, intake consumer) logs in on the SASL listener, and a wrong password
 * fails the start quickly with an error that names the settings. The test's own clients (the
 * "trainer" and the observer) use the broker's PLAINTEXT listener.
 */
@Tag("it")
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class KafkaSecurityIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String USER = "probestream-svc";
  // Characters the JAAS line must quote: the real broker checks the password the service sends.
  private static final String PASSWORD = "s3cret \"quoted\" back\\slash=;";
  private static final String EXPERIMENT = "ncb";

  private static EmbeddedKafka broker;

  @TempDir static Path dir;

  @BeforeAll
  static void startBroker() throws Exception {
    broker =
        EmbeddedKafka.start(
            EmbeddedKafka.Options.defaults().withScramUsers(Map.of(USER, PASSWORD)));
  }

  @AfterAll
  static void stopBroker() throws Exception {
    if (broker != null) {
      broker.close();
    }
  }

  private static Map<String, String> sasl(String passwordFile) {
    Map<String, String> set = new LinkedHashMap<>();
    set.put("kafka.bootstrap-servers", broker.saslBootstrapServers());
    set.put("kafka.security-protocol", "SASL_PLAINTEXT");
    set.put("kafka.sasl-mechanism", "SCRAM-SHA-512");
    set.put("kafka.sasl-username", USER);
    set.put("kafka.sasl-password-file", passwordFile);
    return set;
  }

  @Test
  void serviceLogsInWithScramAndPublishesTheCheckpointsResults() throws Exception {
    Path passwordFile = Files.writeString(dir.resolve("kafka-password"), PASSWORD + "\n");
    KafkaTestCluster kafka = new KafkaTestCluster(broker.bootstrapServers(), "sasl-ok-");
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, sasl(passwordFile.toString()))) {
      assertThat(h.service.readiness().brokerUp()).isTrue();
      h.sendBlob(EXPERIMENT, model);
      h.sendReference(EXPERIMENT, Fixtures.ncbBatch(0), Fixtures.ncbBatch(1));
      h.sendCheckpoint(
          EXPERIMENT,
          Fixtures.manifest(
                  EXPERIMENT,
                  "run-1",
                  5,
                  sha,
                  model.length,
                  1,
                  "{\"h\":\"h\"}",
                  ",\"classifier_weight\":\"classifier.weight\",\"classes\":3")
              .getBytes(StandardCharsets.UTF_8));

      List<ConsumerRecord<byte[], byte[]>> out =
          h.read(h.topics.results(), 1, Duration.ofSeconds(90));
      assertThat(out).hasSize(1);
      JsonNode r = JSON.readTree(out.get(0).value());
      assertThat(r.get("experiment").asText()).isEqualTo(EXPERIMENT);
      assertThat(r.get("run").asText()).isEqualTo("run-1");
      assertThat(r.get("step").asLong()).isEqualTo(5);
      assertThat(r.get("probe").asText()).isEqualTo("neural_collapse");
      assertThat(r.get("layer").asText()).isEqualTo("h");
      assertThat(r.get("model_sha256").asText()).isEqualTo(sha);
      assertThat(r.get("metrics").get("samples").asInt()).isEqualTo(7);
      assertThat(r.get("metrics").get("classes_seen").asInt()).isEqualTo(3);
      // PROBES.md §1.6's NC-B value, so the service really evaluated the checkpoint.
      assertThat(r.get("metrics").get("nc1").asDouble()).isCloseTo(352.0 / 3969, within(1e-7));

      // The intake consumer's group (a SASL client too) commits what it handled.
      try (Admin admin =
          Admin.create(
              Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers()))) {
        Map<TopicPartition, OffsetAndMetadata> committed = Map.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        TopicPartition checkpoints = new TopicPartition(h.topics.checkpoints(), 0);
        while (System.nanoTime() < deadline
            && (committed.get(checkpoints) == null || committed.get(checkpoints).offset() < 1)) {
          Thread.sleep(200);
          committed =
              admin
                  .listConsumerGroupOffsets(h.config.kafka().groupId())
                  .partitionsToOffsetAndMetadata()
                  .get(30, TimeUnit.SECONDS);
        }
        assertThat(committed.get(checkpoints)).isNotNull();
        assertThat(committed.get(checkpoints).offset()).isEqualTo(1);
      }
    }
  }

  @Test
  void wrongPasswordFailsTheStartQuicklyNamingTheSettings() throws Exception {
    Path passwordFile = Files.writeString(dir.resolve("wrong-password"), "not-the-password-42");
    Map<String, String> flags = new LinkedHashMap<>(sasl(passwordFile.toString()));
    flags.put("kafka.group-id", "sasl-bad-group");
    flags.put("topics.prefix", "sasl-bad-");
    flags.put("http.port", "0");
    flags.put("http.host", "127.0.0.1");
    flags.put("data-dir", dir.resolve("bad-data").toString());
    ProbestreamConfig config = ProbestreamConfig.of(flags);
    Vertx vertx = Vertx.vertx();
    long started = System.nanoTime();
    try {
      assertThatThrownBy(
              () ->
                  ProbestreamService.start(vertx, config, config.kafka().bootstrapServers())
                      .toCompletionStage()
                      .toCompletableFuture()
                      .get(60, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .cause()
          .isInstanceOf(IllegalStateException.class)
          .hasMessageStartingWith(
              "Kafka at " + broker.saslBootstrapServers() + " refused the connection: ")
          .hasMessageContaining("Authentication failed")
          .hasMessageContaining("SCRAM-SHA-512")
          .hasMessageContaining("probestream.kafka.sasl-password-file")
          .hasMessageContaining("user=" + USER)
          .satisfies(
              e ->
                  assertThat(e.getMessage())
                      .doesNotContain("not-the-password-42")
                      .doesNotContain(PASSWORD));
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    // An authentication failure is final for Kafka's clients: no retrying until a timeout.
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(20));
  }
}
