package io.probestream.service.state;

import io.probestream.service.publish.CloudEvents;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.logging.Logger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Reads and writes the compacted state topic: {@link #write} sends snapshots (key = experiment),
 * {@link #readLatest} reads the topic to its end and keeps the newest snapshot of each experiment,
 * {@link #replay} reads input records back by offset. The read methods block: call them from a
 * worker. Thread-safe (the producer is; each read opens its own consumer).
 */
public final class StateStore {
  private static final Logger LOG = Logger.getLogger(StateStore.class.getName());
  private static final Duration POLL = Duration.ofMillis(200);
  private static final long STALL_MS = 30_000;

  /** How snapshots are sent (inside the open transaction under exactly-once). */
  @FunctionalInterface
  public interface Sender {
    void send(
        ProducerRecord<byte[], byte[]> record, org.apache.kafka.clients.producer.Callback callback);
  }

  private final Sender producer;
  private final String topic;
  private final Map<String, Object> readerSettings;

  /**
   * @param readerSettings settings of a consumer that joins no group (bootstrap, security,
   *     deserializers; read_committed under exactly-once)
   */
  public StateStore(Sender producer, String topic, Map<String, Object> readerSettings) {
    this.producer = producer;
    this.topic = topic;
    this.readerSettings = readerSettings;
  }

  /** Sends the snapshots; completes on {@code context} once Kafka acknowledged every one. */
  public Future<Void> write(Context context, List<Snapshot> snapshots) {
    List<Future<Void>> acks = new ArrayList<>();
    for (Snapshot s : snapshots) {
      acks.add(
          send(
              context,
              CloudEvents.json(
                  topic,
                  s.experiment(),
                  s.toBytes(),
                  s.experiment() + "/" + s.writer() + "/" + s.seq(),
                  "probestream",
                  "probestream.state.v1",
                  java.time.Instant.now())));
    }
    return Future.all(acks).mapEmpty();
  }

  /** Sends a tombstone: the experiment's state is gone once compaction runs. */
  public Future<Void> delete(Context context, String experiment) {
    return send(context, new ProducerRecord<>(topic, utf8(experiment), null));
  }

  private Future<Void> send(Context context, ProducerRecord<byte[], byte[]> rec) {
    Promise<Void> p = Promise.promise();
    producer.send(
        rec,
        (meta, error) ->
            context.runOnContext(
                v -> {
                  if (error != null) {
                    p.fail(error);
                  } else {
                    p.complete();
                  }
                }));
    return p.future();
  }

  /** Blocking: the newest snapshot of every experiment in the topic (tombstones remove). */
  public Map<String, Snapshot> readLatest() {
    Map<String, Snapshot> latest = new HashMap<>();
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(readerSettings)) {
      List<TopicPartition> parts = new ArrayList<>();
      for (PartitionInfo p : c.partitionsFor(topic, Duration.ofSeconds(30))) {
        parts.add(new TopicPartition(topic, p.partition()));
      }
      c.assign(parts);
      c.seekToBeginning(parts);
      Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(30));
      long lastProgress = System.currentTimeMillis();
      while (!reached(c, end)) {
        ConsumerRecords<byte[], byte[]> records = c.poll(POLL);
        if (!records.isEmpty()) {
          lastProgress = System.currentTimeMillis();
        } else if (System.currentTimeMillis() - lastProgress > STALL_MS) {
          throw new IllegalStateException("reading " + topic + " stalled short of its end " + end);
        }
        for (ConsumerRecord<byte[], byte[]> r : records) {
          if (r.key() == null) {
            continue;
          }
          String experiment = new String(r.key(), StandardCharsets.UTF_8);
          if (r.value() == null) {
            latest.remove(experiment);
            continue;
          }
          try {
            latest.put(experiment, Snapshot.parse(r.value()));
          } catch (IllegalArgumentException e) {
            LOG.warning(
                "state record of '"
                    + experiment
                    + "' at "
                    + r.topic()
                    + "-"
                    + r.partition()
                    + "@"
                    + r.offset()
                    + " is skipped: "
                    + e.getMessage());
          }
        }
      }
    }
    return latest;
  }

  private static boolean reached(KafkaConsumer<?, ?> c, Map<TopicPartition, Long> end) {
    for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
      if (c.position(e.getKey()) < e.getValue()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Blocking: reads the records at {@code offsets} of one topic partition, in offset order, and
   * hands each to {@code sink} (which may block until it is handled). Offsets no longer in the
   * topic (retention) are reported by the returned count falling short.
   */
  public int replay(
      TopicPartition tp, TreeSet<Long> offsets, Consumer<ConsumerRecord<byte[], byte[]>> sink) {
    if (offsets.isEmpty()) {
      return 0;
    }
    return read(tp, offsets.first(), offsets.last() + 1, offsets::contains, sink);
  }

  /**
   * Blocking: hands every record of a topic partition before offset {@code before} to {@code sink},
   * in order; returns how many were read.
   */
  public int scan(TopicPartition tp, long before, Consumer<ConsumerRecord<byte[], byte[]>> sink) {
    return read(tp, -1, before, o -> true, sink);
  }

  /**
   * Reads {@code tp} from {@code from} (-1: its start) up to {@code until} (exclusive, or its end
   * now) and hands the records whose offset {@code wanted} accepts to {@code sink}.
   */
  private int read(
      TopicPartition tp,
      long from,
      long until,
      java.util.function.LongPredicate wanted,
      Consumer<ConsumerRecord<byte[], byte[]>> sink) {
    int handed = 0;
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(readerSettings)) {
      c.assign(List.of(tp));
      long end = Math.min(until, c.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp));
      if (from < 0) {
        c.seekToBeginning(List.of(tp));
      } else {
        c.seek(tp, from);
      }
      long lastProgress = System.currentTimeMillis();
      while (c.position(tp) < end) {
        ConsumerRecords<byte[], byte[]> records = c.poll(POLL);
        if (!records.isEmpty()) {
          lastProgress = System.currentTimeMillis();
        } else if (System.currentTimeMillis() - lastProgress > STALL_MS) {
          throw new IllegalStateException("reading " + tp + " stalled at " + c.position(tp));
        }
        for (ConsumerRecord<byte[], byte[]> r : records) {
          if (r.offset() < end && wanted.test(r.offset())) {
            handed++;
            sink.accept(r);
          }
        }
      }
    }
    return handed;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
