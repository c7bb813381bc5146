package io.probestream.embedded;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The optional SASL_PLAINTEXT listener with SCRAM-SHA-512 users, on a real broker. */
@Timeout(value = 90, unit = SECONDS)
class EmbeddedKafkaSaslTest {
  // Quotes, a backslash, '=' and ';' must all survive the JAAS line on the client side.
  private static final String PASSWORD = "p\"w\\rd=1; x";

  @Test
  void scramUserProducesAndConsumesOnTheSaslListenerAndAWrongPasswordIsRefused() throws Exception {
    try (EmbeddedKafka kafka =
        EmbeddedKafka.start(
            EmbeddedKafka.Options.defaults().withScramUsers(Map.of("svc", PASSWORD)))) {
      assertThat(kafka.saslBootstrapServers()).startsWith("127.0.0.1:");
      assertThat(kafka.saslBootstrapServers()).isNotEqualTo(kafka.bootstrapServers());
      String topic = "sasl-round-trip";
      try (Admin admin = Admin.create(sasl(kafka, "svc", PASSWORD))) {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, SECONDS);
      }
      try (KafkaProducer<byte[], byte[]> producer =
          new KafkaProducer<>(
              sasl(kafka, "svc", PASSWORD), new ByteArraySerializer(), new ByteArraySerializer())) {
        producer.send(new ProducerRecord<>(topic, "over sasl".getBytes(UTF_8))).get(30, SECONDS);
      }
      Map<String, Object> consumerConfig = sasl(kafka, "svc", PASSWORD);
      consumerConfig.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
      List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
      try (KafkaConsumer<byte[], byte[]> consumer =
          new KafkaConsumer<>(
              consumerConfig, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        TopicPartition p = new TopicPartition(topic, 0);
        consumer.assign(List.of(p));
        consumer.seekToBeginning(List.of(p));
        long deadline = System.nanoTime() + SECONDS.toNanos(30);
        while (records.isEmpty() && System.nanoTime() < deadline) {
          consumer.poll(Duration.ofMillis(100)).forEach(records::add);
        }
      }
      assertThat(records).hasSize(1);
      assertThat(new String(records.get(0).value(), UTF_8)).isEqualTo("over sasl");

      assertRefused(kafka, "svc", PASSWORD + "x");
      assertRefused(kafka, "nobody", PASSWORD);
      // The PLAINTEXT listener is unchanged.
      try (Admin plain =
          Admin.create(
              Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
        assertThat(plain.listTopics().names().get(30, SECONDS)).contains(topic);
      }
    }
  }

  @Test
  void reusedDataDirCreatesAndUpdatesUsersAfterStart(@TempDir Path dir) throws Exception {
    EmbeddedKafka.Options options =
        EmbeddedKafka.Options.defaults()
            .withDataDir(dir.resolve("kafka"))
            .withScramUsers(Map.of("a", "first-password"));
    try (EmbeddedKafka first = EmbeddedKafka.start(options)) {
      assertLogsIn(first, "a", "first-password");
    }
    Map<String, String> users = Map.of("a", "second-password", "b", "b-password");
    try (EmbeddedKafka second = EmbeddedKafka.start(options.withScramUsers(users))) {
      assertLogsIn(second, "a", "second-password");
      assertLogsIn(second, "b", "b-password");
      assertRefused(second, "a", "first-password");
    }
  }

  @Test
  void withoutUsersThereIsNoSaslListenerAndOptionsNeverShowPasswords() throws Exception {
    EmbeddedKafka.Options options =
        EmbeddedKafka.Options.defaults().withScramUsers(Map.of("svc", "hunter2-secret"));
    assertThat(options.toString()).contains("scramUsers=[svc]").doesNotContain("hunter2");
    assertThatThrownBy(() -> options.withScramUsers(Map.of("svc", "")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("scramUsers: user 'svc' needs a non-blank name and a password");
    try (EmbeddedKafka plain = EmbeddedKafka.start()) {
      assertThatThrownBy(plain::saslBootstrapServers)
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("no SASL listener: start the broker with Options.withScramUsers(...)");
    }
  }

  private static Map<String, Object> sasl(EmbeddedKafka kafka, String user, String password) {
    Map<String, Object> m = new HashMap<>();
    m.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.saslBootstrapServers());
    m.put(AdminClientConfig.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
    m.put("sasl.mechanism", "SCRAM-SHA-512");
    m.put("sasl.jaas.config", ScramUsers.jaas(user, password));
    return m;
  }

  private static void assertLogsIn(EmbeddedKafka kafka, String user, String password)
      throws Exception {
    try (Admin admin = Admin.create(sasl(kafka, user, password))) {
      assertThat(admin.describeCluster().clusterId().get(30, SECONDS)).isEqualTo(kafka.clusterId());
    }
  }

  private static void assertRefused(EmbeddedKafka kafka, String user, String password) {
    try (Admin admin = Admin.create(sasl(kafka, user, password))) {
      assertThatThrownBy(() -> admin.describeCluster().clusterId().get(30, SECONDS))
          .isInstanceOf(ExecutionException.class)
          .hasCauseInstanceOf(SaslAuthenticationException.class)
          .hasMessageContaining("Authentication failed");
    }
  }
}
