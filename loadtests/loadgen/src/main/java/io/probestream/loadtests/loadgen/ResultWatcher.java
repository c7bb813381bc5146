package io.probestream.loadtests.loadgen;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the {@code checkpoints} and {@code results} topics from their ends at construction
 * (read_committed, no consumer group) on a thread of its own, and keeps, for one experiment, the
 * CreateTime of every checkpoint manifest and of every result (byte-identical records counted
 * once). Results are matched to checkpoints by (run, step); live results by (run, step, {@code
 * params.live_batches}). Thread-safe: the poll thread writes, callers wait on this object's
 * monitor.
 */
final class ResultWatcher implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Topics topics;
  private final String experiment;
  private final int layers;
  private final Thread thread;
  private volatile boolean running = true;

  // guarded by this
  private final Set<String> seen = new HashSet<>();
  private final Map<String, Long> manifests = new HashMap<>(); // run|step → CreateTime
  private final Map<String, List<Long>> results = new HashMap<>(); // run|step → CreateTimes
  private final Map<String, long[]> liveParts = new HashMap<>(); // run|step|n → {count, max time}
  private final Map<String, List<Long>> liveDone = new HashMap<>(); // run → completion times
  private Throwable failure;

  ResultWatcher(String bootstrap, Topics topics, String experiment, int layers) {
    Map<String, Object> c = new HashMap<>();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
    c.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 8 << 20);
    this.consumer =
        new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    this.topics = topics;
    this.experiment = experiment;
    this.layers = layers;
    List<TopicPartition> parts = new ArrayList<>();
    for (String t : List.of(topics.checkpoints(), topics.results())) {
      parts.addAll(partitions(t));
    }
    consumer.assign(parts);
    consumer.seekToEnd(parts);
    parts.forEach(consumer::position); // fix the start now, before anything is published
    this.thread = new Thread(this::poll, "loadgen-results");
    thread.setDaemon(true);
    thread.start();
  }

  private List<TopicPartition> partitions(String topic) {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (true) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
      if (infos != null && !infos.isEmpty()) {
        return infos.stream().map(i -> new TopicPartition(i.topic(), i.partition())).toList();
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "topic '" + topic + "' does not exist; is the service running with this prefix?");
      }
      sleep(500);
    }
  }

  private void poll() {
    try {
      while (running) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
          if (r.topic().equals(topics.checkpoints())) {
            onManifest(r);
          } else {
            onResult(r);
          }
        }
      }
    } catch (RuntimeException | IOException e) {
      synchronized (this) {
        failure = e;
        notifyAll();
      }
    } finally {
      consumer.close();
    }
  }

  private void onManifest(ConsumerRecord<byte[], byte[]> r) throws IOException {
    if (!Headers.TYPE_CHECKPOINT.equals(header(r, Headers.TYPE))) {
      return; // commands share the topic
    }
    JsonNode m = JSON.readTree(r.value());
    if (!experiment.equals(m.path("experiment").asText())) {
      return;
    }
    synchronized (this) {
      manifests.putIfAbsent(key(m.path("run").asText(), m.path("step").asLong()), r.timestamp());
      notifyAll();
    }
  }

  private void onResult(ConsumerRecord<byte[], byte[]> r) throws IOException {
    JsonNode m = JSON.readTree(r.value());
    if (!experiment.equals(m.path("experiment").asText()) || m.path("run").isNull()) {
      return; // another experiment's, or an experiment-wide (multiplicity) result
    }
    String run = m.path("run").asText();
    long step = m.path("step").asLong();
    String split = m.path("split").asText();
    synchronized (this) {
      // A record sent twice is byte for byte the same. The id alone is not enough: two live
      // batches can get results with one id (a batch evaluated against an older checkpoint
      // finishing after one against a newer checkpoint restarts the live count at 1).
      if (!seen.add(digest(r.value()))) {
        return;
      }
      if (Headers.SPLIT_REFERENCE.equals(split)) {
        results.computeIfAbsent(key(run, step), k -> new ArrayList<>()).add(r.timestamp());
      } else if (Headers.SPLIT_TRAIN.equals(split)) {
        String k = key(run, step) + "|" + m.path("params").path("live_batches").asLong();
        long[] p = liveParts.computeIfAbsent(k, x -> new long[2]);
        p[0]++;
        p[1] = Math.max(p[1], r.timestamp());
        if (p[0] % layers == 0) { // every full set of layers is one more batch back
          liveDone.computeIfAbsent(run, x -> new ArrayList<>()).add(p[1]);
        }
      }
      notifyAll();
    }
  }

  private static String digest(byte[] value) {
    try {
      return java.util.HexFormat.of()
          .formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(value));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JVM", e);
    }
  }

  static String key(String run, long step) {
    return run + "|" + step;
  }

  /** Waits until checkpoint (run, step) has {@code count} results; false on timeout. */
  synchronized boolean awaitCheckpoint(String run, long step, int count, long deadlineNanos)
      throws InterruptedException {
    while (results.getOrDefault(key(run, step), List.of()).size() < count
        || !manifests.containsKey(key(run, step))) {
      if (!waitUntil(deadlineNanos)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Waits until every (run, step 0..steps) has {@code count} results and every run {@code
   * liveBatches} completed live batches; false on timeout.
   */
  synchronized boolean awaitAll(
      List<String> runs, int steps, int count, int liveBatches, long deadlineNanos)
      throws InterruptedException {
    for (String run : runs) {
      for (int s = 0; s <= steps; s++) {
        if (!awaitCheckpoint(run, s, count, deadlineNanos)) {
          return false;
        }
      }
      while (liveDone.getOrDefault(run, List.of()).size() < liveBatches) {
        if (!waitUntil(deadlineNanos)) {
          return false;
        }
      }
    }
    return true;
  }

  private boolean waitUntil(long deadlineNanos) throws InterruptedException {
    if (failure != null) {
      throw new IllegalStateException("reading results failed", failure);
    }
    long left = deadlineNanos - System.nanoTime();
    if (left <= 0) {
      return false;
    }
    wait(Math.max(1, left / 1_000_000));
    return true;
  }

  /** The manifest's CreateTime, or null. */
  synchronized Long manifestTime(String run, long step) {
    return manifests.get(key(run, step));
  }

  /** The CreateTimes of a checkpoint's results (a copy). */
  synchronized List<Long> resultTimes(String run, long step) {
    return new ArrayList<>(results.getOrDefault(key(run, step), List.of()));
  }

  /** When each live batch of a run was complete (all its layers' results), sorted. */
  synchronized List<Long> liveCompletions(String run) {
    List<Long> l = new ArrayList<>(liveDone.getOrDefault(run, List.of()));
    l.sort(null);
    return l;
  }

  private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    Header h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  @Override
  public void close() {
    running = false;
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
