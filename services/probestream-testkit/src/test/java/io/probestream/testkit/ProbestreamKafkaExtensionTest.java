package io.probestream.testkit;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@ProbestreamIT
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ProbestreamKafkaExtensionTest {
  private static final Duration READ_TIMEOUT = Duration.ofSeconds(30);
  private static final Set<String> SEEN_PREFIXES = ConcurrentHashMap.newKeySet();
  private static KafkaTestCluster classCluster;

  private final KafkaTestCluster constructorCluster;
  private KafkaTestCluster beforeEachCluster;

  ProbestreamKafkaExtensionTest(KafkaTestCluster cluster) {
    constructorCluster = cluster;
  }

  @BeforeAll
  static void rememberClassCluster(KafkaTestCluster cluster) {
    classCluster = cluster;
  }

  @BeforeEach
  void rememberBeforeEachCluster(KafkaTestCluster cluster) {
    beforeEachCluster = cluster;
  }

  @Test
  void producedRecordsComeBackInOrderThroughReadAll(KafkaTestCluster kafka) throws Exception {
    String topic = kafka.topicPrefix() + "round-trip";
    kafka.createTopics(topic);
    try (KafkaProducer<String, String> producer = producer(kafka)) {
      for (int i = 0; i < 3; i++) {
        producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get(30, TimeUnit.SECONDS);
      }
    }

    List<ConsumerRecord<byte[], byte[]>> records = kafka.readAll(topic, 3, READ_TIMEOUT);

    assertThat(records)
        .extracting(r -> new String(r.key(), UTF_8) + "=" + new String(r.value(), UTF_8))
        .containsExactly("k0=v0", "k1=v1", "k2=v2");
    assertThat(records).extracting(ConsumerRecord::offset).containsExactly(0L, 1L, 2L);
  }

  @Test
  void eachTestMethodGetsItsOwnPrefixOnTheOneBroker(KafkaTestCluster kafka) {
    assertThat(kafka.topicPrefix()).matches("it-\\d+-");
    assertThat(SEEN_PREFIXES.add(kafka.topicPrefix())).as("prefix used once").isTrue();
    assertThat(kafka.topicPrefix()).isNotEqualTo(classCluster.topicPrefix());
    assertThat(beforeEachCluster).isEqualTo(kafka);
    assertThat(constructorCluster).isEqualTo(kafka);
    assertThat(kafka.bootstrapServers()).isEqualTo(classCluster.bootstrapServers());
  }

  @Test
  void anotherTestMethodGetsAnotherPrefix(KafkaTestCluster kafka) {
    assertThat(SEEN_PREFIXES.add(kafka.topicPrefix())).as("prefix used once").isTrue();
    assertThat(kafka.topicPrefix()).isNotEqualTo(classCluster.topicPrefix());
  }

  @Test
  void readAllReturnsWhatArrivedWhenTheTimeoutPasses(KafkaTestCluster kafka) throws Exception {
    String topic = kafka.topicPrefix() + "short";
    kafka.createTopics(topic);
    try (KafkaProducer<String, String> producer = producer(kafka)) {
      producer.send(new ProducerRecord<>(topic, "only")).get(30, TimeUnit.SECONDS);
    }

    assertThat(kafka.readAll(topic, 2, Duration.ofMillis(500))).hasSize(1);
    assertThatThrownBy(
            () -> kafka.readAll(kafka.topicPrefix() + "missing", 1, Duration.ofSeconds(1)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "topic '"
                + kafka.topicPrefix()
                + "missing' does not exist after PT1S;"
                + " create it first");
  }

  private static KafkaProducer<String, String> producer(KafkaTestCluster kafka) {
    return new KafkaProducer<>(
        Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
            kafka.bootstrapServers(),
            ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
            true,
            ProducerConfig.ACKS_CONFIG,
            "all"),
        new StringSerializer(),
        new StringSerializer());
  }
}
