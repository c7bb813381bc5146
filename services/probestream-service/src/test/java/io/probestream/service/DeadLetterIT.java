package io.probestream.service;

import static io.probestream.service.ServiceHarness.blobChunkEvent;
import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.inference.InferenceException;
import io.probestream.service.record.PoisonException;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * The poison-pill test of STYLE.md §3: good and bad records of one experiment interleaved on all
 * three input topics; every good result arrives in order, exactly the bad records reach the DLQ
 * with their coordinates, the DLQ counter matches, and the service stays ready.
 */
@ProbestreamIT
class DeadLetterIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EXPERIMENT = "exp-a";

  /** A second experiment: the reference set is per experiment, so a wrong width needs its own. */
  private static final String NARROW = "exp-w";

  private static final String RUN = "seed-1";
  private static final String LAYERS = "{\"penultimate\":\"h\"}";
  private static final String CLASSIFIER =
      ",\"classifier_weight\":\"classifier.weight\",\"classes\":3";
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final Pattern DLQ_LINE =
      Pattern.compile("^probestream_dlq_records_total\\{reason=\"([a-z_]+)\"} (\\S+)$");

  /** A record as sent, and where the broker put it. */
  private record Sent(
      String topic,
      String key,
      byte[] value,
      Map<String, String> headers,
      int partition,
      long offset) {}

  /** A record that must reach the DLQ, why, and words its message must contain. */
  private record Bad(Sent sent, DlqReason reason, Class<?> errorClass, List<String> message) {}

  /** Sends records and keeps their coordinates; the harness's own send does not return them. */
  private static final class Sender implements AutoCloseable {
    private final KafkaProducer<byte[], byte[]> producer;
    final List<Sent> sent = new ArrayList<>();

    Sender(KafkaTestCluster kafka) {
      Map<String, Object> p = new HashMap<>();
      p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
      p.put(ProducerConfig.ACKS_CONFIG, "all");
      producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    Sent send(String topic, String key, byte[] value, Map<String, String> headers)
        throws Exception {
      ProducerRecord<byte[], byte[]> r =
          new ProducerRecord<>(topic, null, key.getBytes(StandardCharsets.UTF_8), value);
      headers.forEach((k, v) -> r.headers().add(k, v.getBytes(StandardCharsets.UTF_8)));
      RecordMetadata m = producer.send(r).get(30, TimeUnit.SECONDS);
      Sent s = new Sent(topic, key, value, headers, m.partition(), m.offset());
      sent.add(s);
      return s;
    }

    @Override
    public void close() {
      producer.close(Duration.ofSeconds(5));
    }
  }

  @Test
  void badRecordsGoToTheDlqWhileTheGoodOnesAroundThemAreEvaluated(KafkaTestCluster kafka)
      throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    // The right bytes under a wrong name: assembly must find the sha256 differs.
    String wrongSha = ProbeResult.sha256Hex("some other model".getBytes(StandardCharsets.UTF_8));
    // Right sha256 and size, but not ONNX: the blob assembles, its checkpoint cannot load it.
    byte[] notOnnx = "this is not an ONNX model".getBytes(StandardCharsets.UTF_8);
    String notOnnxSha = ProbeResult.sha256Hex(notOnnx);
    byte[] garbage = "this is not safetensors".getBytes(StandardCharsets.UTF_8);

    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of());
        Sender s = new Sender(kafka)) {
      String blobs = h.topics.blobs();
      String batches = h.topics.batches();
      String checkpoints = h.topics.checkpoints();
      List<Bad> bad = new ArrayList<>();

      // One chunk: chunks of one blob written side by side are the next test's subject.
      s.send(blobs, EXPERIMENT, model, blobChunkEvent(sha, 0, 1, model.length));
      bad.add(
          new Bad(
              s.send(checkpoints, EXPERIMENT, utf8("not json"), checkpointHeaders(EXPERIMENT)),
              DlqReason.INVALID_JSON,
              PoisonException.class,
              List.of("not valid JSON", "'not'")));
      s.send(batches, EXPERIMENT, Fixtures.ncbBatch(0), reference(EXPERIMENT, 0, false));
      // Waits for the reference set: it starts only once batch 1 arrives.
      s.send(
          checkpoints,
          EXPERIMENT,
          checkpoint(EXPERIMENT, 100, sha, model.length, 1, LAYERS),
          checkpointHeaders(EXPERIMENT));
      bad.add(
          new Bad(
              s.send(batches, EXPERIMENT, garbage, reference(EXPERIMENT, 7, false)),
              DlqReason.MALFORMED_SAFETENSORS,
              PoisonException.class,
              List.of("safetensors header length is")));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  EXPERIMENT,
                  checkpoint(EXPERIMENT, -5, sha, model.length, 1, LAYERS),
                  checkpointHeaders(EXPERIMENT)),
              DlqReason.INVALID_MANIFEST,
              PoisonException.class,
              List.of("step = -5")));
      s.send(batches, EXPERIMENT, Fixtures.ncbBatch(1), reference(EXPERIMENT, 1, true));
      Map<String, String> noType = checkpointHeaders(EXPERIMENT);
      noType.remove(Headers.TYPE);
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  EXPERIMENT,
                  checkpoint(EXPERIMENT, 150, sha, model.length, 1, LAYERS),
                  noType),
              DlqReason.MISSING_HEADER,
              PoisonException.class,
              List.of(Headers.TYPE)));
      // One chunk, so the bad record is known: of several, the chunk whose write finishes last
      // runs the assembly and alone takes the failure to the DLQ, and the workers decide which.
      bad.add(
          new Bad(
              s.send(blobs, EXPERIMENT, model, blobChunkEvent(wrongSha, 0, 1, model.length)),
              DlqReason.BLOB_SHA_MISMATCH,
              PoisonException.class,
              List.of("has sha256 " + sha, "ce_blobsha256 says " + wrongSha)));
      s.send(
          checkpoints,
          EXPERIMENT,
          checkpoint(EXPERIMENT, 200, sha, model.length, 1, LAYERS),
          checkpointHeaders(EXPERIMENT));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  EXPERIMENT,
                  checkpoint(
                      EXPERIMENT,
                      210,
                      sha,
                      model.length,
                      1,
                      "{\"penultimate\":\"h\",\"fc3\":\"fc9\"}"),
                  checkpointHeaders(EXPERIMENT)),
              DlqReason.UNKNOWN_TENSOR,
              InferenceException.class,
              List.of("unknown tensor 'fc9'", "[h, logits]")));
      Map<String, String> train = reference(EXPERIMENT, 0, false);
      train.put(Headers.SPLIT, Headers.SPLIT_TRAIN);
      bad.add(
          new Bad(
              s.send(batches, EXPERIMENT, Fixtures.ncbBatch(0), train),
              DlqReason.MISSING_HEADER,
              PoisonException.class,
              List.of("header ce_run is required")));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  EXPERIMENT,
                  utf8(
                      new String(
                              checkpoint(EXPERIMENT, 220, sha, model.length, 1, LAYERS),
                              StandardCharsets.UTF_8)
                          .replace("\"input\":\"input\"", "\"input\":\"pixels\"")),
                  checkpointHeaders(EXPERIMENT)),
              DlqReason.INPUT_MISMATCH,
              PoisonException.class,
              List.of("'pixels'", "[input, labels]")));
      s.send(blobs, EXPERIMENT, notOnnx, blobChunkEvent(notOnnxSha, 0, 1, notOnnx.length));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  "exp-b",
                  checkpoint(EXPERIMENT, 230, sha, model.length, 1, LAYERS),
                  checkpointHeaders(EXPERIMENT)),
              DlqReason.KEY_MISMATCH,
              PoisonException.class,
              List.of("'exp-b'", "'" + EXPERIMENT + "'")));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  EXPERIMENT,
                  checkpoint(EXPERIMENT, 240, notOnnxSha, notOnnx.length, 1, LAYERS),
                  checkpointHeaders(EXPERIMENT)),
              DlqReason.MODEL_UNLOADABLE,
              InferenceException.class,
              List.of("not an ONNX model")));
      // NC-B's model reads 2 features per sample; this experiment's only batch has 3.
      s.send(
          batches,
          NARROW,
          Fixtures.batch("input", new float[] {1, 2, 3}, new long[] {0}, 3),
          reference(NARROW, 0, true));
      bad.add(
          new Bad(
              s.send(
                  checkpoints,
                  NARROW,
                  checkpoint(NARROW, 1, sha, model.length, 1, LAYERS),
                  checkpointHeaders(NARROW)),
              DlqReason.INPUT_MISMATCH,
              InferenceException.class,
              List.of("input 'input'", "2] in the model but the data is [1, 3]")));
      s.send(
          checkpoints,
          EXPERIMENT,
          checkpoint(EXPERIMENT, 300, sha, model.length, 1, LAYERS),
          checkpointHeaders(EXPERIMENT));

      awaitAllInputCommitted(h, s.sent);
      Map<String, Long> ends = endOffsets(h, List.of(h.topics.results(), h.topics.dlq()));

      // (a) One result per good checkpoint, in step order, with NC-B's values. Steps 100 and 200
      // may both wait for the reference set and then start together; they still go out in order.
      assertThat(ends.get(h.topics.results())).isEqualTo(3);
      List<ConsumerRecord<byte[], byte[]>> results = h.read(h.topics.results(), 3, WAIT);
      List<Long> steps = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : results) {
        JsonNode o = JSON.readTree(r.value());
        steps.add(o.get("step").asLong());
        assertNcB(o, sha);
      }
      assertThat(steps).containsExactly(100L, 200L, 300L);

      // (b) Exactly the bad records, each as sent plus the dlq.* headers.
      assertThat(ends.get(h.topics.dlq())).isEqualTo(bad.size());
      List<ConsumerRecord<byte[], byte[]>> dead = h.read(h.topics.dlq(), bad.size(), WAIT);
      Map<String, Bad> expected = new TreeMap<>();
      for (Bad b : bad) {
        expected.put(b.sent().topic() + "@" + b.sent().offset(), b);
      }
      Map<String, ConsumerRecord<byte[], byte[]>> actual = new TreeMap<>();
      for (ConsumerRecord<byte[], byte[]> r : dead) {
        actual.put(
            header(r, Headers.DLQ_SOURCE_TOPIC) + "@" + header(r, Headers.DLQ_SOURCE_OFFSET), r);
      }
      assertThat(actual.keySet()).containsExactlyElementsOf(expected.keySet());
      expected.forEach((where, b) -> assertDeadLetter(actual.get(where), b));

      // (c) The counter, for every reason, equals the bad records of that reason.
      Map<String, Double> counted = new TreeMap<>();
      for (DlqReason r : DlqReason.values()) {
        counted.put(r.code(), 0.0);
      }
      for (Bad b : bad) {
        counted.merge(b.reason().code(), 1.0, Double::sum);
      }
      HttpResponse<String> metrics = h.get("/metrics");
      assertThat(metrics.statusCode()).isEqualTo(200);
      assertThat(dlqCounters(metrics.body())).isEqualTo(counted);

      // (d) Still ready.
      assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);
    }
  }

  /**
   * Good chunks are never dead-lettered, however many workers write chunks of one blob at once. The
   * chunks wait in the topic before the service starts, so polls hand them over together and four
   * workers write neighbouring chunks, mostly of the same blob, side by side.
   */
  @Test
  void chunksOfOneBlobWrittenSideBySideAllLand(KafkaTestCluster kafka) throws Exception {
    int blobCount = 32;
    int chunks = 4;
    int chunkBytes = 1024;
    Topics topics = new Topics(kafka.topicPrefix());
    kafka.createTopics(topics.blobs());
    Random random = new Random(7);
    Map<String, byte[]> blobs = new LinkedHashMap<>();
    try (Sender s = new Sender(kafka)) {
      for (int b = 0; b < blobCount; b++) {
        byte[] blob = new byte[chunks * chunkBytes];
        random.nextBytes(blob);
        String sha = ProbeResult.sha256Hex(blob);
        blobs.put(sha, blob);
        for (int i = 0; i < chunks; i++) {
          byte[] part = Arrays.copyOfRange(blob, i * chunkBytes, (i + 1) * chunkBytes);
          s.send(topics.blobs(), EXPERIMENT, part, blobChunkEvent(sha, i, chunks, blob.length));
        }
      }
      Map<String, String> set = Map.of("workers.threads", "4", "workers.max-in-flight", "16");
      try (ServiceHarness h = ServiceHarness.start(kafka, set)) {
        awaitAllInputCommitted(h, s.sent);
        long dead = endOffsets(h, List.of(h.topics.dlq())).get(h.topics.dlq());
        List<String> why = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : h.read(h.topics.dlq(), (int) dead, WAIT)) {
          why.add(
              header(r, Headers.DLQ_SOURCE_TOPIC)
                  + "@"
                  + header(r, Headers.DLQ_SOURCE_OFFSET)
                  + " "
                  + header(r, Headers.DLQ_REASON)
                  + ": "
                  + header(r, Headers.DLQ_MESSAGE));
        }
        assertThat(why).as("dead-lettered good chunks").isEmpty();
        blobs.forEach(
            (sha, blob) ->
                assertThat(h.dataDir.resolve("blobs").resolve(sha))
                    .isRegularFile()
                    .hasBinaryContent(blob));
      }
    }
  }

  /**
   * PROBES.md §1.6 NC-B. The inputs are small integers, exact in float32, and all arithmetic is
   * float64, so the closed forms hold to rounding (1e-12); the table's 7-digit decimals to 5e-8.
   */
  private static void assertNcB(JsonNode o, String modelSha) {
    assertThat(o.get("experiment").asText()).isEqualTo(EXPERIMENT);
    assertThat(o.get("run").asText()).isEqualTo(RUN);
    assertThat(o.get("probe").asText()).isEqualTo("neural_collapse");
    assertThat(o.get("layer").asText()).isEqualTo("penultimate");
    assertThat(o.get("split").asText()).isEqualTo("reference");
    assertThat(o.get("model_sha256").asText()).isEqualTo(modelSha);
    JsonNode m = o.get("metrics");
    assertThat(m.get("samples").asLong()).isEqualTo(7);
    assertThat(m.get("classes_seen").asLong()).isEqualTo(3);
    assertThat(m.get("nonfinite").asLong()).isZero();
    assertThat(m.get("sb_rank").asLong()).isEqualTo(2);
    assertThat(m.get("nc1").asDouble()).isCloseTo(352.0 / 3969, within(1e-12));
    assertThat(m.get("nc1_trace").asDouble()).isCloseTo(11.0 / 76, within(1e-12));
    assertThat(m.get("cdnv").asDouble())
        .isCloseTo((5.0 / 108 + 3.0 / 58 + 4.0 / 87) / 3, within(1e-12));
    assertThat(m.get("nc4_ncc_mismatch").asDouble()).isCloseTo(1.0 / 7, within(1e-12));
    assertThat(m.get("nc2_equinorm").asDouble()).isCloseTo(0.1222789, within(5e-8));
    assertThat(m.get("nc2_equiangular").asDouble()).isCloseTo(0.1605758, within(5e-8));
    assertThat(m.get("nc2_etf_distance").asDouble()).isCloseTo(0.2808407, within(5e-8));
    assertThat(m.get("nc3_self_duality").asDouble()).isCloseTo(0.0132015, within(5e-8));
  }

  private static void assertDeadLetter(ConsumerRecord<byte[], byte[]> r, Bad b) {
    Sent s = b.sent();
    String what = b.reason().code() + " from " + s.topic() + "@" + s.offset();
    assertThat(r.key()).as(what).isEqualTo(utf8(s.key()));
    assertThat(r.value()).as(what).isEqualTo(s.value());
    List<Map.Entry<String, String>> headers = new ArrayList<>();
    for (Header x : r.headers()) {
      headers.add(Map.entry(x.key(), new String(x.value(), StandardCharsets.UTF_8)));
    }
    // The original headers first, unchanged and in order, then the six dlq.* headers.
    assertThat(headers.subList(0, s.headers().size()))
        .as(what)
        .containsExactlyElementsOf(s.headers().entrySet());
    assertThat(headers.subList(s.headers().size(), headers.size()))
        .extracting(Map.Entry::getKey)
        .as(what)
        .containsExactly(
            Headers.DLQ_REASON,
            Headers.DLQ_CLASS,
            Headers.DLQ_MESSAGE,
            Headers.DLQ_SOURCE_TOPIC,
            Headers.DLQ_SOURCE_PARTITION,
            Headers.DLQ_SOURCE_OFFSET);
    assertThat(header(r, Headers.DLQ_REASON)).as(what).isEqualTo(b.reason().code());
    assertThat(header(r, Headers.DLQ_CLASS)).as(what).isEqualTo(b.errorClass().getName());
    assertThat(header(r, Headers.DLQ_MESSAGE)).as(what).contains(b.message());
    assertThat(header(r, Headers.DLQ_SOURCE_TOPIC)).as(what).isEqualTo(s.topic());
    assertThat(header(r, Headers.DLQ_SOURCE_PARTITION))
        .as(what)
        .isEqualTo(Integer.toString(s.partition()));
    assertThat(header(r, Headers.DLQ_SOURCE_OFFSET)).as(what).isEqualTo(Long.toString(s.offset()));
  }

  /** Every {@code probestream_dlq_records_total} series of a scrape: reason → value. */
  private static Map<String, Double> dlqCounters(String exposition) {
    Map<String, Double> out = new TreeMap<>();
    for (String line : exposition.split("\n")) {
      Matcher m = DLQ_LINE.matcher(line);
      if (m.matches()) {
        out.put(m.group(1), Double.parseDouble(m.group(2)));
      }
    }
    return out;
  }

  /**
   * Waits until the service's group has committed every input record sent. The service commits a
   * record only once its effects (results, DLQ record, stored bytes) are acknowledged, and a
   * checkpoint still waiting holds its offset back, so after this nothing more can be produced.
   */
  private static void awaitAllInputCommitted(ServiceHarness h, List<Sent> sent) throws Exception {
    Map<TopicPartition, Long> want = new HashMap<>();
    for (Sent s : sent) {
      want.merge(new TopicPartition(s.topic(), s.partition()), s.offset() + 1, Math::max);
    }
    try (Admin admin = admin(h)) {
      await()
          .atMost(WAIT)
          .pollInterval(Duration.ofMillis(200))
          .untilAsserted(
              () -> {
                Map<TopicPartition, OffsetAndMetadata> committed =
                    admin
                        .listConsumerGroupOffsets(h.config.kafka().groupId())
                        .partitionsToOffsetAndMetadata()
                        .get(10, TimeUnit.SECONDS);
                Map<TopicPartition, Long> positions = new HashMap<>();
                want.keySet()
                    .forEach(
                        tp -> {
                          OffsetAndMetadata o = committed.get(tp);
                          positions.put(tp, o == null ? -1L : o.offset());
                        });
                assertThat(positions).isEqualTo(want);
              });
    }
  }

  /** The end offset of each (single-partition) topic: with no transactions, its record count. */
  private static Map<String, Long> endOffsets(ServiceHarness h, List<String> topics)
      throws Exception {
    Map<TopicPartition, OffsetSpec> request = new HashMap<>();
    for (String t : topics) {
      request.put(new TopicPartition(t, 0), OffsetSpec.latest());
    }
    Map<String, Long> out = new LinkedHashMap<>();
    try (Admin admin = admin(h)) {
      admin
          .listOffsets(request)
          .all()
          .get(10, TimeUnit.SECONDS)
          .forEach((tp, info) -> out.put(tp.topic(), info.offset()));
    }
    return out;
  }

  private static Admin admin(ServiceHarness h) {
    return Admin.create(
        Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, h.kafka.bootstrapServers()));
  }

  private static byte[] checkpoint(
      String experiment, long step, String sha, int size, int chunks, String layers) {
    return utf8(Fixtures.manifest(experiment, RUN, step, sha, size, chunks, layers, CLASSIFIER));
  }

  private static Map<String, String> checkpointHeaders(String experiment) {
    return cloudEvent(
        Headers.TYPE_CHECKPOINT,
        Headers.CONTENT_TYPE,
        Headers.JSON,
        Headers.EXPERIMENT,
        experiment);
  }

  private static Map<String, String> reference(String experiment, int index, boolean last) {
    Map<String, String> h =
        cloudEvent(
            Headers.TYPE_BATCH,
            Headers.EXPERIMENT,
            experiment,
            Headers.SPLIT,
            Headers.SPLIT_REFERENCE,
            Headers.BATCH_INDEX,
            Integer.toString(index));
    if (last) {
      h.put(Headers.FINAL, "true");
    }
    return h;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
