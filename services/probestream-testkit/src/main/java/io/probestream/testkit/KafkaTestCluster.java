package io.probestream.testkit;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One test's view of a Kafka cluster: its address, and the topic prefix that keeps this test's
 * topics apart from every other test's. Immutable and thread-safe; every helper blocks and opens
 * and closes its own client, so call them from the test thread, never from an event loop.
 *
 * @param bootstrapServers the {@code bootstrap.servers} value; never null
 * @param topicPrefix the prefix for every topic this test creates, such as {@code it-7-}; never
 *     null
 */
public record KafkaTestCluster(String bootstrapServers, String topicPrefix) {
  private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration POLL_INTERVAL = Duration.ofMillis(100);

  public KafkaTestCluster {
    Objects.requireNonNull(bootstrapServers, "bootstrapServers");
    Objects.requireNonNull(topicPrefix, "topicPrefix");
  }

  /**
   * Creates each topic with 1 partition and replication factor 1, and returns once the controller
   * has all of them. Names are full topic names, normally built from {@link #topicPrefix()}.
   *
   * @throws org.apache.kafka.common.KafkaException if a topic exists or cannot be created
   * @throws IllegalStateException if the broker does not answer within 30 s
   */
  public void createTopics(String... names) {
    List<NewTopic> topics =
        Arrays.stream(names).map(name -> new NewTopic(name, 1, (short) 1)).toList();
    try (Admin admin =
        Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers))) {
      admin.createTopics(topics).all().get(ADMIN_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException cause) {
        throw cause;
      }
      throw new IllegalStateException("creating topics " + Arrays.toString(names) + " failed", e);
    } catch (TimeoutException e) {
      throw new IllegalStateException(
          "creating topics " + Arrays.toString(names) + " took over " + ADMIN_TIMEOUT, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted creating " + Arrays.toString(names), e);
    }
  }

  /**
   * Reads {@code topic} from the earliest offset of every partition with a fresh consumer that
   * joins no group and commits nothing, until at least {@code atLeast} records arrived or {@code
   * timeout} passed. Records keep their order within a partition.
   *
   * @return the records read, unmodifiable; fewer than {@code atLeast} only if the timeout passed,
   *     and possibly more if they came in the same poll
   * @throws IllegalStateException if the topic does not exist by the end of the timeout
   */
  public List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int atLeast, Duration timeout) {
    if (atLeast < 0) {
      throw new IllegalArgumentException("atLeast = " + atLeast + ": must be 0 or more");
    }
    long deadline = System.nanoTime() + timeout.toNanos();
    Map<String, Object> config =
        Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers,
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
            // reading must not create the topic it reads, or a misspelt name reads as empty
            ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(config, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> partitions = partitionsOf(consumer, topic, timeout, deadline);
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
      for (long left = deadline - System.nanoTime();
          records.size() < atLeast && left > 0;
          left = deadline - System.nanoTime()) {
        consumer.poll(min(POLL_INTERVAL, Duration.ofNanos(left))).forEach(records::add);
      }
      return List.copyOf(records);
    }
  }

  private static List<TopicPartition> partitionsOf(
      KafkaConsumer<byte[], byte[]> consumer, String topic, Duration timeout, long deadline) {
    while (true) {
      long left = deadline - System.nanoTime();
      List<PartitionInfo> infos;
      try {
        infos = consumer.partitionsFor(topic, Duration.ofNanos(Math.max(left, 0)));
      } catch (org.apache.kafka.common.errors.TimeoutException e) {
        infos = List.of(); // no metadata yet, which looks the same as no topic yet
      }
      if (!infos.isEmpty()) {
        return infos.stream().map(i -> new TopicPartition(i.topic(), i.partition())).toList();
      }
      if (left <= 0) {
        throw new IllegalStateException(
            "topic '" + topic + "' does not exist after " + timeout + "; create it first");
      }
      try {
        // An unknown topic is answered at once with no partitions, so back off before asking again.
        TimeUnit.NANOSECONDS.sleep(Math.min(POLL_INTERVAL.toNanos(), left));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted waiting for topic '" + topic + "'", e);
      }
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }
}
