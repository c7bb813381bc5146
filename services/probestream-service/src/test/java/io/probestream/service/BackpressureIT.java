package io.probestream.service;

import static io.probestream.service.ServiceHarness.cloudEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * A backlog of 1 MiB reference batches against one worker thread: intake pauses while the pool is
 * full (DESIGN.md §5), every batch is still stored, and the heap stays bounded by configuration,
 * not by how much is waiting in Kafka.
 */
@ProbestreamIT
class BackpressureIT {
  private static final String EXPERIMENT = "flood";
  private static final int BATCHES = 768;
  private static final int ROWS = 128;
  private static final int WIDTH = 2048; // 128 × 2048 float32 = 1 MiB of input per batch
  private static final long MIB = 1 << 20;
  private static final Pattern PAUSES =
      Pattern.compile("(?m)^probestream_consumer_pauses_total (\\S+)$");

  /*
   * The bound on live heap above the baseline, which is taken before the service starts. With the
   * default limits.max-batch-bytes (64 MiB) the consumer's fetch.max.bytes is 65 MiB, and every
   * buffer that can hold backlog bytes is sized by configuration, never by the backlog:
   *   fetch responses        one being drained + the next one received, 2 × 65 MiB   130 MiB
   *   records of one poll    max.poll.records 16 × 1 MiB, held by Vert.x while paused  16 MiB
   *   work in flight         workers.max-in-flight = 2 batches, plus a parse view each   4 MiB
   *   the service itself     Vert.x, clients, HTTP, metrics                            ~10 MiB
   * about 160 MiB; 192 MiB leaves room for G1 not compacting every region on System.gc(). It is a
   * quarter of the 768 MiB backlog. Measured on a 2-core machine: a peak of 123 MiB over the
   * baseline; with workers.max-in-flight = 4096 (the pause never triggers) the event loop hands
   * every fetched batch to the one worker's unbounded queue, bytes attached, and the peak was 493
   * MiB.
   *
   * The backlog is produced before the service starts, as after a restart behind lag: a producer
   * on the same machine is slower than one worker storing batches, so a concurrent flood never
   * builds the queue the pause exists to bound (measured: the peak was no higher without the pause).
   */
  private static final long BOUND_BYTES = 192 * MIB;

  @Test
  void aBacklogPausesIntakeStoresEveryBatchAndKeepsTheHeapBounded(KafkaTestCluster kafka)
      throws Exception {
    Topics topics = new Topics(kafka.topicPrefix());
    kafka.createTopics(topics.batches());
    try (KafkaProducer<byte[], byte[]> producer = producer(kafka)) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      for (int i = 0; i < BATCHES; i++) {
        ProducerRecord<byte[], byte[]> r =
            new ProducerRecord<>(
                topics.batches(), null, EXPERIMENT.getBytes(StandardCharsets.UTF_8), batch(i));
        Map<String, String> headers =
            cloudEvent(
                Headers.TYPE_BATCH,
                Headers.EXPERIMENT,
                EXPERIMENT,
                Headers.SPLIT,
                Headers.SPLIT_REFERENCE,
                Headers.BATCH_INDEX,
                Integer.toString(i));
        if (i == BATCHES - 1) {
          headers.put(Headers.FINAL, "true");
        }
        headers.forEach((k, v) -> r.headers().add(k, v.getBytes(StandardCharsets.UTF_8)));
        acks.add(producer.send(r));
      }
      producer.flush();
      for (Future<RecordMetadata> a : acks) {
        a.get(30, TimeUnit.SECONDS);
      }
    }

    Map<String, String> set = new LinkedHashMap<>();
    set.put("workers.threads", "1");
    set.put("workers.max-in-flight", "2");
    set.put("limits.max-reference-samples", Integer.toString(BATCHES * ROWS));
    MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
    long baseline = usedAfterGc(memory);
    AtomicLong peak = new AtomicLong(baseline);
    ScheduledExecutorService sampler =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "probestream-test-heap-sampler");
              t.setDaemon(true);
              return t;
            });
    Path dataDir = null;
    try {
      sampler.scheduleWithFixedDelay(
          () -> peak.accumulateAndGet(usedAfterGc(memory), Math::max),
          0,
          100,
          TimeUnit.MILLISECONDS);
      try (ServiceHarness h = ServiceHarness.start(kafka, set)) {
        dataDir = h.dataDir;
        Path stored =
            h.dataDir
                .resolve("reference")
                .resolve(HexFormat.of().formatHex(EXPERIMENT.getBytes(StandardCharsets.UTF_8)));
        await()
            .atMost(Duration.ofSeconds(60))
            .pollInterval(Duration.ofMillis(200))
            .until(() -> count(stored) == BATCHES);
        sampler.shutdown();
        assertThat(sampler.awaitTermination(10, TimeUnit.SECONDS)).isTrue();

        assertThat(count(stored)).isEqualTo(BATCHES);
        HttpResponse<String> metrics = h.get("/metrics");
        Matcher m = PAUSES.matcher(metrics.body());
        assertThat(m.find()).as("probestream_consumer_pauses_total in /metrics").isTrue();
        assertThat(Double.parseDouble(m.group(1))).isPositive();
        assertThat(peak.get() - baseline)
            .as(
                "peak live heap above the baseline of %d MiB, with a backlog of %d MiB",
                baseline / MIB, BATCHES * (long) ROWS * WIDTH * 4 / MIB)
            .isLessThan(BOUND_BYTES);
      }
    } finally {
      sampler.shutdownNow();
      if (dataDir != null) {
        deleteTree(dataDir); // 768 MiB of stored batches
      }
    }
  }

  /** Batch {@code i}: 128 rows of 2048 floats (the first value is i, so batches differ). */
  private static byte[] batch(int i) {
    float[] x = new float[ROWS * WIDTH];
    long[] labels = new long[ROWS];
    for (int r = 0; r < ROWS; r++) {
      x[r * WIDTH + r % WIDTH] = 1;
      labels[r] = r % 2;
    }
    x[0] = i;
    return Safetensors.write(
        Map.of("input", x, "labels", labels),
        Map.of("input", new long[] {ROWS, WIDTH}, "labels", new long[] {ROWS}));
  }

  private static long usedAfterGc(MemoryMXBean memory) {
    System.gc();
    return memory.getHeapMemoryUsage().getUsed();
  }

  /** Stored batches (written atomically, so a file here is a whole batch). */
  private static int count(Path dir) throws Exception {
    if (!Files.isDirectory(dir)) {
      return 0;
    }
    int n = 0;
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*.safetensors")) {
      for (Path ignored : s) {
        n++;
      }
    }
    return n;
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  private static KafkaProducer<byte[], byte[]> producer(KafkaTestCluster kafka) {
    Map<String, Object> p = new LinkedHashMap<>();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Long.toString(2 * MIB));
    p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, Long.toString(8 * MIB));
    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }
}
