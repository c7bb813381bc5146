package io.probestream.embedded;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, unit = SECONDS)
class EmbeddedKafkaTest {
  private static final int MIB = 1024 * 1024;
  // Room for a 5 MiB value plus batch overhead, but not for a 7 MiB one.
  private static final int BROKER_MAX_MESSAGE_BYTES = 6 * MIB;

  private static EmbeddedKafka kafka;

  @BeforeAll
  static void startBroker() throws IOException {
    kafka =
        EmbeddedKafka.start(
            EmbeddedKafka.Options.defaults().withMaxMessageBytes(BROKER_MAX_MESSAGE_BYTES));
  }

  @AfterAll
  static void stopBroker() throws IOException {
    if (kafka != null) {
      kafka.close(); // every client is closed inside its test
    }
  }

  @Test
  void idempotentProducerRecordReachesAGroupConsumer() throws Exception {
    String topic = "round-trip";
    createTopic(kafka, new NewTopic(topic, 1, (short) 1));
    try (KafkaProducer<byte[], byte[]> producer = producer(kafka)) {
      producer.send(new ProducerRecord<>(topic, bytes("k"), bytes("v"))).get(30, SECONDS);
    }

    // A subscribing group exercises the RF-1 offsets topic and the zero rebalance delay.
    Map<String, Object> config = consumerConfig(kafka);
    config.put(ConsumerConfig.GROUP_ID_CONFIG, "round-trip-group");
    config.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      consumer.subscribe(List.of(topic));
      long deadline = System.nanoTime() + SECONDS.toNanos(30);
      while (records.isEmpty() && System.nanoTime() < deadline) {
        consumer.poll(Duration.ofMillis(100)).forEach(records::add);
      }
      consumer.commitSync();
    }
    assertThat(records).hasSize(1);
    assertThat(new String(records.get(0).key(), UTF_8)).isEqualTo("k");
    assertThat(new String(records.get(0).value(), UTF_8)).isEqualTo("v");
    try (Admin admin = admin(kafka)) {
      long committed =
          admin
              .listConsumerGroupOffsets("round-trip-group")
              .partitionsToOffsetAndMetadata()
              .get(30, SECONDS)
              .get(new TopicPartition(topic, 0))
              .offset();
      assertThat(committed).isEqualTo(1);
    }
  }

  @Test
  void largeRecordPassesBrokerLimitButNotASmallerTopicLimitOrALargerRecord() throws Exception {
    String roomy = "large-records";
    String strict = "small-records";
    createTopic(kafka, new NewTopic(roomy, 1, (short) 1));
    createTopic(
        kafka,
        new NewTopic(strict, 1, (short) 1)
            .configs(Map.of("max.message.bytes", String.valueOf(MIB))));
    byte[] fiveMib = new byte[5 * MIB];
    Arrays.fill(fiveMib, (byte) 7);
    byte[] sevenMib = new byte[7 * MIB];

    try (KafkaProducer<byte[], byte[]> producer = producer(kafka)) {
      producer.send(new ProducerRecord<>(roomy, fiveMib)).get(30, SECONDS);
      // The producer's own max.request.size is 16 MiB, so both rejections come from the broker.
      assertThatThrownBy(() -> producer.send(new ProducerRecord<>(strict, fiveMib)).get())
          .isInstanceOf(ExecutionException.class)
          .cause()
          .isInstanceOf(RecordTooLargeException.class)
          .hasMessageContaining("server will accept");
      assertThatThrownBy(() -> producer.send(new ProducerRecord<>(roomy, sevenMib)).get())
          .isInstanceOf(ExecutionException.class)
          .cause()
          .isInstanceOf(RecordTooLargeException.class)
          .hasMessageContaining("server will accept");
    }

    List<ConsumerRecord<byte[], byte[]>> records = readAll(kafka, roomy, 1);
    assertThat(records).hasSize(1);
    assertThat(records.get(0).value()).isEqualTo(fiveMib);
  }

  @Test
  void restartOnPersistentDataDirKeepsClusterIdAndRecords(@TempDir Path dir) throws Exception {
    Path dataDir = dir.resolve("kafka");
    EmbeddedKafka.Options options = EmbeddedKafka.Options.defaults().withDataDir(dataDir);
    String topic = "survives-restart";
    String clusterId;
    try (EmbeddedKafka first = EmbeddedKafka.start(options)) {
      clusterId = first.clusterId();
      createTopic(first, new NewTopic(topic, 1, (short) 1));
      try (KafkaProducer<byte[], byte[]> producer = producer(first)) {
        producer.send(new ProducerRecord<>(topic, bytes("before restart"))).get(30, SECONDS);
      }
    }
    assertThat(dataDir.resolve("meta.properties")).exists();

    try (EmbeddedKafka second = EmbeddedKafka.start(options)) {
      assertThat(second.dataDir()).isEqualTo(dataDir.toAbsolutePath());
      assertThat(second.clusterId()).isEqualTo(clusterId);
      try (Admin admin = admin(second)) {
        assertThat(admin.describeCluster().clusterId().get(30, SECONDS)).isEqualTo(clusterId);
      }
      List<ConsumerRecord<byte[], byte[]>> records = readAll(second, topic, 1);
      assertThat(records).hasSize(1);
      assertThat(new String(records.get(0).value(), UTF_8)).isEqualTo("before restart");
    }
    assertThat(dataDir.resolve("meta.properties")).exists();
  }

  @Test
  void busyFixedPortFailsNamingThePort() throws IOException {
    // A developer's own broker usually listens on every address, so check that case as well as
    // a listener on 127.0.0.1 alone.
    try (ServerSocket loopback = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"));
        ServerSocket wildcard = new ServerSocket(0)) {
      for (int port : new int[] {loopback.getLocalPort(), wildcard.getLocalPort()}) {
        assertThatThrownBy(
                () -> EmbeddedKafka.start(EmbeddedKafka.Options.defaults().withBrokerPort(port)))
            .isInstanceOf(IllegalStateException.class)
            .hasMessage("port " + port + " is in use; choose another --kafka-port");
      }
    }
  }

  @Test
  void pickedPortTakenBeforeKafkaBindsItIsPickedAgain() throws Exception {
    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      AtomicInteger picks = new AtomicInteger();
      // The first pick is the broker port of attempt 1; later picks are genuinely free.
      try (EmbeddedKafka retried =
          EmbeddedKafka.start(
              EmbeddedKafka.Options.defaults(),
              () -> picks.getAndIncrement() == 0 ? taken.getLocalPort() : freePort())) {
        assertThat(picks.get()).isEqualTo(4);
        assertThat(retried.port()).isNotEqualTo(taken.getLocalPort());
        try (Admin admin = admin(retried)) {
          assertThat(admin.describeCluster().nodes().get(30, SECONDS)).hasSize(1);
        }
      }
    }
  }

  @Test
  void closeDeletesTempDirAndIsIdempotent() throws IOException {
    EmbeddedKafka temporary = EmbeddedKafka.start();
    Path dataDir = temporary.dataDir();
    assertThat(dataDir.resolve("meta.properties")).exists();
    assertThat(temporary.bootstrapServers()).isEqualTo("127.0.0.1:" + temporary.port());

    temporary.close();
    temporary.close();

    assertThat(dataDir).doesNotExist();
  }

  @Test
  void optionsRejectKeysTheyOwnAndBadValues() {
    EmbeddedKafka.Options defaults = EmbeddedKafka.Options.defaults();
    assertThatThrownBy(() -> defaults.withOverrides(Map.of("message.max.bytes", "10")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "override 'message.max.bytes' is managed by EmbeddedKafka: use"
                + " Options.maxMessageBytes");
    assertThatThrownBy(() -> defaults.withBrokerPort(65536))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("brokerPort = 65536: must be 0 (pick a free port) or 1..65535");
    assertThatThrownBy(() -> defaults.withMaxMessageBytes(0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxMessageBytes = 0: must be at least 1");
    assertThat(defaults.maxMessageBytes()).isEqualTo(64 * MIB + MIB);
  }

  private static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] bytes(String s) {
    return s.getBytes(UTF_8);
  }

  private static Admin admin(EmbeddedKafka broker) {
    return Admin.create(Map.of("bootstrap.servers", broker.bootstrapServers()));
  }

  private static void createTopic(EmbeddedKafka broker, NewTopic topic) throws Exception {
    try (Admin admin = admin(broker)) {
      admin.createTopics(List.of(topic)).all().get(30, SECONDS);
    }
  }

  private static KafkaProducer<byte[], byte[]> producer(EmbeddedKafka broker) {
    return new KafkaProducer<>(
        Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
            broker.bootstrapServers(),
            ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
            true,
            ProducerConfig.ACKS_CONFIG,
            "all",
            ProducerConfig.MAX_REQUEST_SIZE_CONFIG,
            16 * MIB),
        new ByteArraySerializer(),
        new ByteArraySerializer());
  }

  private static Map<String, Object> consumerConfig(EmbeddedKafka broker) {
    Map<String, Object> config = new HashMap<>();
    config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
    return config;
  }

  // Reads from the earliest offset of partition 0 without a group, until n records or 30 s.
  private static List<ConsumerRecord<byte[], byte[]>> readAll(
      EmbeddedKafka broker, String topic, int n) {
    List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(
            consumerConfig(broker), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = List.of(new TopicPartition(topic, 0));
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      long deadline = System.nanoTime() + SECONDS.toNanos(30);
      while (records.size() < n && System.nanoTime() < deadline) {
        consumer.poll(Duration.ofMillis(100)).forEach(records::add);
      }
    }
    return records;
  }
}
