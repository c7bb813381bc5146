package io.probestream.service;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.testkit.KafkaTestCluster;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The service started in-process against the test broker with a topic prefix of its own, plus a
 * plain Kafka producer to feed it records exactly as an outside client would. Close it at the end
 * of the test (service, then Vert.x, then the producer).
 */
public final class ServiceHarness implements AutoCloseable {
  public final KafkaTestCluster kafka;
  public final Topics topics;
  public final ProbestreamConfig config;
  public final Path dataDir;
  public final Vertx vertx;
  public final ProbestreamService service;
  private final KafkaProducer<byte[], byte[]> producer;
  private final HttpClient http = HttpClient.newHttpClient();
  private boolean ownsDataDir;

  private ServiceHarness(
      KafkaTestCluster kafka,
      ProbestreamConfig config,
      Path dataDir,
      Vertx vertx,
      ProbestreamService service) {
    this.kafka = kafka;
    this.config = config;
    this.topics = config.topicNames();
    this.dataDir = dataDir;
    this.vertx = vertx;
    this.service = service;
    Map<String, Object> p = new LinkedHashMap<>();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "16777216");
    this.producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }

  /**
   * Starts the service with the test's topic prefix and a fresh data dir; {@code set} overrides
   * keys (the service connects to {@code kafka.bootstrap-servers}, the test's own clients to {@code
   * kafka}).
   */
  public static ServiceHarness start(KafkaTestCluster kafka, Map<String, String> set)
      throws Exception {
    return start(kafka, Files.createTempDirectory("probestream-it-"), set);
  }

  /** As {@link #start(KafkaTestCluster, Map)} on a given data dir (to test restarts). */
  public static ServiceHarness start(KafkaTestCluster kafka, Path dataDir, Map<String, String> set)
      throws Exception {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.bootstrap-servers", kafka.bootstrapServers());
    flags.put("kafka.group-id", kafka.topicPrefix() + "group");
    flags.put("topics.prefix", kafka.topicPrefix());
    flags.put("topics.partitions", "1");
    flags.put("http.port", "0");
    flags.put("http.host", "127.0.0.1");
    flags.put("data-dir", dataDir.toString());
    flags.put("model.device", "cpu");
    // Most tests read one result per layer; ComplexityIT runs the default (every probe).
    flags.put("probes.enabled", "neural_collapse");
    flags.putAll(set);
    ProbestreamConfig config = ProbestreamConfig.of(flags);
    Vertx vertx = Vertx.vertx();
    ProbestreamService service =
        ProbestreamService.start(vertx, config, config.kafka().bootstrapServers())
            .toCompletionStage()
            .toCompletableFuture()
            .get(60, TimeUnit.SECONDS);
    return new ServiceHarness(kafka, config, dataDir, vertx, service);
  }

  /** CloudEvents headers (binary mode) plus the given extra headers, as name, value pairs. */
  public static Map<String, String> cloudEvent(String type, String... extra) {
    Map<String, String> h = new LinkedHashMap<>();
    h.put(Headers.SPECVERSION, "1.0");
    h.put(Headers.ID, UUID.randomUUID().toString());
    h.put(Headers.SOURCE, "it");
    h.put(Headers.TYPE, type);
    for (int i = 0; i < extra.length; i += 2) {
      h.put(extra[i], extra[i + 1]);
    }
    return h;
  }

  /** The headers of reference batch {@code index} of an experiment, final or not. */
  public static Map<String, String> referenceEvent(String experiment, int index, boolean last) {
    return cloudEvent(
        Headers.TYPE_BATCH,
        Headers.EXPERIMENT,
        experiment,
        Headers.SPLIT,
        Headers.SPLIT_REFERENCE,
        Headers.BATCH_INDEX,
        Integer.toString(index),
        Headers.FINAL,
        Boolean.toString(last));
  }

  /** The headers of chunk {@code index} of {@code count} of a blob of {@code size} bytes. */
  public static Map<String, String> blobChunkEvent(String sha, int index, int count, int size) {
    return cloudEvent(
        Headers.TYPE_BLOB,
        Headers.BLOB_SHA256,
        sha,
        Headers.BLOB_INDEX,
        Integer.toString(index),
        Headers.BLOB_COUNT,
        Integer.toString(count),
        Headers.BLOB_SIZE,
        Integer.toString(size));
  }

  /** Sends one record and waits for the broker's acknowledgement. */
  public void send(String topic, String key, byte[] value, Map<String, String> headers)
      throws Exception {
    ProducerRecord<byte[], byte[]> r =
        new ProducerRecord<>(
            topic, null, key == null ? null : key.getBytes(StandardCharsets.UTF_8), value);
    headers.forEach((k, v) -> r.headers().add(k, v.getBytes(StandardCharsets.UTF_8)));
    producer.send(r).get(30, TimeUnit.SECONDS);
  }

  /**
   * Sends an experiment's reference set, keyed by the experiment: batch i with index i, in order,
   * the last one marked final.
   */
  public void sendReference(String experiment, byte[]... batches) throws Exception {
    for (int i = 0; i < batches.length; i++) {
      send(
          topics.batches(),
          experiment,
          batches[i],
          referenceEvent(experiment, i, i == batches.length - 1));
    }
  }

  /** Sends a model blob in one chunk, keyed by the experiment; returns its sha256. */
  public String sendBlob(String experiment, byte[] model) throws Exception {
    return sendBlob(experiment, model, model.length);
  }

  /**
   * Sends a model blob in chunks of {@code chunkBytes} (the last may be shorter), in order, keyed
   * by the experiment; returns its sha256.
   */
  public String sendBlob(String experiment, byte[] model, int chunkBytes) throws Exception {
    String sha = ProbeResult.sha256Hex(model);
    int count = model.length / chunkBytes + (model.length % chunkBytes == 0 ? 0 : 1);
    for (int i = 0; i < count; i++) {
      int from = i * chunkBytes;
      send(
          topics.blobs(),
          experiment,
          Arrays.copyOfRange(model, from, from + Math.min(chunkBytes, model.length - from)),
          blobChunkEvent(sha, i, count, model.length));
    }
    return sha;
  }

  /**
   * Sends a checkpoint manifest keyed by the experiment; {@code extra} are further headers, as
   * name, value pairs.
   */
  public void sendCheckpoint(String experiment, byte[] manifestJson, String... extra)
      throws Exception {
    send(
        topics.checkpoints(), experiment, manifestJson, cloudEvent(Headers.TYPE_CHECKPOINT, extra));
  }

  /** Reads every record of a topic from the start (fresh consumer, no group). */
  public List<ConsumerRecord<byte[], byte[]>> read(String topic, int atLeast, Duration timeout) {
    return kafka.readAll(topic, atLeast, timeout);
  }

  /** GET on the service's HTTP port: status and body. */
  public HttpResponse<String> get(String path) throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + service.httpPort() + path))
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** The text of a record header, or null. */
  public static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    var h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }

  @Override
  public void close()
      throws java.util.concurrent.ExecutionException, java.util.concurrent.TimeoutException {
    try {
      service.stop().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      vertx.close();
      producer.close(Duration.ofSeconds(5));
      if (ownsDataDir) {
        deleteTree(dataDir);
      }
    }
  }

  private static void deleteTree(Path dir) {
    try (var paths = Files.walk(dir)) {
      paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // a temp dir left behind is harmless; the test's outcome does not depend on it
    }
  }
}
