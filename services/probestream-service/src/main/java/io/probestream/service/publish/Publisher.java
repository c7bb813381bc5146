package io.probestream.service.publish;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Publishes checkpoints (model blob chunks + manifest) and batches to any cluster following
 * DESIGN.md §3, so a training job or a user needs no other client. Blocking: every method returns
 * once Kafka acknowledged its records. Thread-safe (the producer is).
 */
public final class Publisher implements AutoCloseable {
  /** Default blob chunk size (DESIGN.md §3). */
  public static final int DEFAULT_CHUNK_BYTES = 512 * 1024;

  private final KafkaProducer<byte[], byte[]> producer;
  private final Topics topics;
  private final String source;

  public Publisher(String bootstrap, Topics topics, long maxRequestBytes, String source) {
    Map<String, Object> m = new HashMap<>();
    m.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    m.put(ProducerConfig.ACKS_CONFIG, "all");
    m.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    m.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Long.toString(maxRequestBytes));
    m.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    m.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
    this.producer = new KafkaProducer<>(m, new ByteArraySerializer(), new ByteArraySerializer());
    this.topics = topics;
    this.source = source;
  }

  /** Sends the model as chunks on {@code blobs}; returns its manifest reference. */
  public CheckpointManifest.Blob blob(String experiment, byte[] model, int chunkBytes)
      throws InterruptedException, ExecutionException, TimeoutException {
    String sha = ProbeResult.sha256Hex(model);
    int chunks = Math.max(1, (model.length + chunkBytes - 1) / chunkBytes);
    List<Future<RecordMetadata>> acks = new ArrayList<>();
    for (int i = 0; i < chunks; i++) {
      byte[] part =
          Arrays.copyOfRange(model, i * chunkBytes, Math.min(model.length, (i + 1) * chunkBytes));
      ProducerRecord<byte[], byte[]> r =
          record(topics.blobs(), experiment, part, Headers.TYPE_BLOB);
      header(r, Headers.BLOB_SHA256, sha);
      header(r, Headers.BLOB_INDEX, Integer.toString(i));
      header(r, Headers.BLOB_COUNT, Integer.toString(chunks));
      header(r, Headers.BLOB_SIZE, Long.toString(model.length));
      acks.add(producer.send(r));
    }
    await(acks);
    return new CheckpointManifest.Blob(sha, model.length, chunks);
  }

  /** Sends a manifest on {@code checkpoints}. */
  public void checkpoint(CheckpointManifest manifest)
      throws InterruptedException, ExecutionException, TimeoutException {
    ProducerRecord<byte[], byte[]> r =
        record(
            topics.checkpoints(),
            manifest.experiment(),
            manifest.toJson(),
            Headers.TYPE_CHECKPOINT);
    header(r, Headers.CONTENT_TYPE, Headers.JSON);
    await(List.of(producer.send(r)));
  }

  /**
   * Sends one batch (safetensors bytes) on {@code batches}.
   *
   * @param run run id for live splits, or null
   * @param step step for live splits, or null
   */
  public void batch(
      String experiment,
      String split,
      int index,
      boolean isFinal,
      byte[] safetensors,
      String run,
      Long step)
      throws InterruptedException, ExecutionException, TimeoutException {
    ProducerRecord<byte[], byte[]> r =
        record(topics.batches(), experiment, safetensors, Headers.TYPE_BATCH);
    header(r, Headers.EXPERIMENT, experiment);
    header(r, Headers.SPLIT, split);
    header(r, Headers.BATCH_INDEX, Integer.toString(index));
    if (isFinal) {
      header(r, Headers.FINAL, "true");
    }
    if (run != null) {
      header(r, Headers.RUN, run);
    }
    if (step != null) {
      header(r, Headers.STEP, Long.toString(step));
    }
    header(r, Headers.CONTENT_TYPE, Headers.SAFETENSORS);
    await(List.of(producer.send(r)));
  }

  /** Sends a whole reference set, index 0.., the last marked final. */
  public void reference(String experiment, List<byte[]> batches)
      throws InterruptedException, ExecutionException, TimeoutException {
    for (int i = 0; i < batches.size(); i++) {
      batch(
          experiment,
          Headers.SPLIT_REFERENCE,
          i,
          i == batches.size() - 1,
          batches.get(i),
          null,
          null);
    }
  }

  private ProducerRecord<byte[], byte[]> record(
      String topic, String key, byte[] value, String type) {
    ProducerRecord<byte[], byte[]> r =
        new ProducerRecord<>(topic, null, key.getBytes(StandardCharsets.UTF_8), value);
    header(r, Headers.SPECVERSION, Headers.SPEC_VERSION);
    header(r, Headers.ID, UUID.randomUUID().toString());
    header(r, Headers.SOURCE, source);
    header(r, Headers.TYPE, type);
    header(r, Headers.TIME, Instant.now().toString());
    return r;
  }

  private static void header(ProducerRecord<byte[], byte[]> r, String name, String value) {
    r.headers().add(name, value.getBytes(StandardCharsets.UTF_8));
  }

  private static void await(List<Future<RecordMetadata>> acks)
      throws InterruptedException, ExecutionException, TimeoutException {
    for (Future<RecordMetadata> f : acks) {
      f.get(60, TimeUnit.SECONDS);
    }
  }

  @Override
  public void close() {
    producer.close(Duration.ofSeconds(10));
  }
}
