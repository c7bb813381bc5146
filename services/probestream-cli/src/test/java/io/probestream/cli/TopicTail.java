package io.probestream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads a topic from its start on a thread of its own, without a consumer group, until closed, so a
 * test can watch results arrive while it kills and restarts the service. {@code read_committed}
 * hides records of open and aborted transactions.
 */
final class TopicTail implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One record: its JSON value, its partition and offset, and its producer timestamp. */
  record Entry(JsonNode value, int partition, long offset, long timestampMs) {}

  private final List<Entry> entries = new CopyOnWriteArrayList<>();
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final Thread thread;
  private volatile Throwable failure;

  TopicTail(String bootstrap, String topic, boolean readCommitted) {
    Map<String, Object> config =
        Map.of(
            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
            bootstrap,
            ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
            false,
            ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG,
            false,
            ConsumerConfig.ISOLATION_LEVEL_CONFIG,
            readCommitted ? "read_committed" : "read_uncommitted");
    thread =
        new Thread(
            () -> {
              try (KafkaConsumer<byte[], byte[]> consumer =
                  new KafkaConsumer<>(
                      config, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                List<TopicPartition> partitions = List.of();
                while (running.get() && partitions.isEmpty()) {
                  partitions =
                      consumer.partitionsFor(topic, Duration.ofSeconds(5)).stream()
                          .map(i -> new TopicPartition(i.topic(), i.partition()))
                          .toList();
                  if (partitions.isEmpty()) {
                    TimeUnit.MILLISECONDS.sleep(100);
                  }
                }
                consumer.assign(partitions);
                consumer.seekToBeginning(partitions);
                while (running.get()) {
                  for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    entries.add(
                        new Entry(parse(r.value()), r.partition(), r.offset(), r.timestamp()));
                  }
                }
              } catch (Throwable e) {
                failure = e;
              }
            },
            "tail-" + topic);
    thread.setDaemon(true);
    thread.start();
  }

  private static JsonNode parse(byte[] value) {
    try {
      return JSON.readTree(value);
    } catch (IOException e) {
      throw new UncheckedIOException("not JSON: " + new String(value), e);
    }
  }

  /** Everything read so far, in arrival order (partition order within a partition). */
  List<Entry> entries() {
    if (failure != null) {
      throw new IllegalStateException("reading the topic failed", failure);
    }
    return List.copyOf(entries);
  }

  List<JsonNode> values() {
    return entries().stream().map(Entry::value).toList();
  }

  long count(Predicate<JsonNode> which) {
    return values().stream().filter(which).count();
  }

  @Override
  public void close() {
    running.set(false);
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
