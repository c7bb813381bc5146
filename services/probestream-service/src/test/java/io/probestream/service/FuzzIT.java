package io.probestream.service;

import static io.probestream.service.ServiceHarness.blobChunkEvent;
import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static io.probestream.service.ServiceHarness.referenceEvent;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.OnnxModelBuilder;
import io.probestream.testkit.ProbestreamIT;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Future;
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
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * Issue 10, item 4: a seeded fuzz run. About 2,000 random and mutated records on the checkpoints,
 * blobs and batches topics, interleaved with good ones (the examples/mlp reference set and
 * checkpoints of its model before, among and after the bad records). The service stays ready, every
 * good checkpoint's results arrive with examples/mlp/expected.json's values, every record that is
 * certainly invalid is on the DLQ with a documented reason, no good record is, the DLQ counter
 * equals the DLQ topic, and the heap stays bounded. The seed is printed; set {@code -Dfuzz.seed=N}
 * to replay one.
 */
@ProbestreamIT
class FuzzIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long SEED = Long.getLong("fuzz.seed", 20261125L);
  private static final int FUZZ_RECORDS = 2000;
  private static final int GOOD_CHECKPOINTS_AMONG = 4;
  private static final String EXP = "fz";

  /**
   * The experiment of the fuzzed checkpoints, with the same reference set: pending checkpoints are
   * bounded per experiment (16), and bad ones waiting for their blobs must not evict good ones.
   */
  private static final String BAD = "fzm";

  private static final int MAX_BATCH_BYTES = 256 * 1024;
  private static final long HEAP_BOUND = 512L * 1024 * 1024;
  private static final Duration WAIT = Duration.ofSeconds(90);
  private static final Pattern DLQ_LINE =
      Pattern.compile("^probestream_dlq_records_total\\{reason=\"([a-z_]+)\"} (\\S+)$");
  private static final String LAYERS = "{\"h1\":\"h1\",\"h2\":\"h2\"}";
  private static final String EXTRA = ",\"classifier_weight\":\"classifier.weight\",\"classes\":5";

  /** What the contract says of a record: it must be rejected, must not be, or either. */
  private enum Must {
    REJECT,
    ACCEPT,
    EITHER
  }

  /** A record as queued for sending. */
  private record Out(
      String kind, Must must, String topic, String key, byte[] value, Map<String, String> h) {}

  /** A record sent, and where the broker put it. */
  private record Sent(Out out, int partition, long offset) {}

  private final Random rnd = new Random(SEED);
  private final List<Out> queue = new ArrayList<>();
  private ServiceHarness h;
  private byte[] model;
  private String modelSha;
  private int modelChunks;
  private int counter;

  private void add(
      String kind, Must must, String topic, String key, byte[] value, Map<String, String> hd) {
    queue.add(new Out(kind, must, topic, key, value, hd));
  }

  @Test
  void fuzzedRecordsNeverStopTheServiceAndAreDeadLetteredByTheContract(KafkaTestCluster kafka)
      throws Exception {
    System.out.println("FuzzIT: seed " + SEED + " (replay with -Dfuzz.seed=" + SEED + ")");
    long started = System.nanoTime();
    model = Fixtures.example("model.onnx");
    modelSha = ProbeResult.sha256Hex(model);
    modelChunks = (model.length + 4095) / 4096;
    Map<String, String> set = new LinkedHashMap<>();
    set.put("probes.enabled", "neural_collapse");
    set.put("limits.max-batch-bytes", Integer.toString(MAX_BATCH_BYTES));
    h = ServiceHarness.start(kafka, set);
    try {
      // Good records before the bad ones: the reference set, the model, a first checkpoint.
      byte[] b0 = Fixtures.example("reference-0.safetensors");
      byte[] b1 = Fixtures.example("reference-1.safetensors");
      add(
          "good-reference",
          Must.ACCEPT,
          h.topics.batches(),
          EXP,
          b0,
          referenceEvent(EXP, 0, false));
      add("good-reference", Must.ACCEPT, h.topics.batches(), EXP, b1, referenceEvent(EXP, 1, true));
      add(
          "good-reference",
          Must.ACCEPT,
          h.topics.batches(),
          BAD,
          b0,
          referenceEvent(BAD, 0, false));
      add("good-reference", Must.ACCEPT, h.topics.batches(), BAD, b1, referenceEvent(BAD, 1, true));
      for (int i = 0; i < modelChunks; i++) {
        int from = i * 4096;
        add(
            "good-blob-chunk",
            Must.ACCEPT,
            h.topics.blobs(),
            EXP,
            Arrays.copyOfRange(model, from, Math.min(model.length, from + 4096)),
            blobChunkEvent(modelSha, i, modelChunks, model.length));
      }
      List<Long> goodSteps = new ArrayList<>();
      goodCheckpoint(goodSteps);
      int every = FUZZ_RECORDS / (GOOD_CHECKPOINTS_AMONG + 1);
      for (int i = 0; i < FUZZ_RECORDS; i++) {
        if (i > 0 && i % every == 0) {
          goodCheckpoint(goodSteps);
        }
        fuzzOne();
      }
      goodCheckpoint(goodSteps);

      List<Sent> sent = sendAll(kafka);
      awaitAllInputCommitted(sent);
      Map<String, Long> ends = endOffsets(List.of(h.topics.results(), h.topics.dlq()));

      // Every good checkpoint's two results (h1, h2), with the numpy reference's values.
      long resultCount = ends.get(h.topics.results());
      List<ConsumerRecord<byte[], byte[]>> results =
          h.read(h.topics.results(), (int) resultCount, WAIT);
      JsonNode expected =
          JSON.readTree(Fixtures.EXAMPLE.resolve("expected.json").toFile()).get("layers");
      Set<String> got = new TreeSet<>();
      int otherResults = 0;
      for (ConsumerRecord<byte[], byte[]> r : results) {
        JsonNode o = JSON.readTree(r.value());
        if (o.get("experiment").asText().equals(BAD)) {
          otherResults++; // a fuzzed checkpoint that may be valid (absurd-output-model)
          continue;
        }
        assertThat(o.get("experiment").asText()).isEqualTo(EXP);
        assertThat(o.get("run").asText()).isEqualTo("good");
        assertThat(o.get("model_sha256").asText()).isEqualTo(modelSha);
        String layer = o.get("layer").asText();
        got.add(o.get("step").asLong() + "/" + layer);
        JsonNode m = o.get("metrics");
        for (Iterator<String> it = expected.get(layer).fieldNames(); it.hasNext(); ) {
          String k = it.next();
          double v = expected.get(layer).get(k).asDouble();
          assertThat(m.get(k).asDouble())
              .as(o.get("step") + "/" + layer + "." + k)
              .isCloseTo(v, within(1e-6 * Math.max(1e-3, Math.abs(v))));
        }
      }
      Set<String> want = new TreeSet<>();
      for (long s : goodSteps) {
        want.add(s + "/h1");
        want.add(s + "/h2");
      }
      assertThat(got).isEqualTo(want);
      assertThat(resultCount - otherResults).isEqualTo(2L * goodSteps.size());

      // The DLQ: every record in it has a documented reason; every certainly invalid record is
      // there, no good record is, and its size lies between the two counts.
      long dlqCount = ends.get(h.topics.dlq());
      List<ConsumerRecord<byte[], byte[]>> dead = h.read(h.topics.dlq(), (int) dlqCount, WAIT);
      assertThat(dead).hasSize((int) dlqCount);
      Map<String, DlqReason> deadAt = new HashMap<>();
      for (ConsumerRecord<byte[], byte[]> r : dead) {
        String reason = header(r, Headers.DLQ_REASON);
        assertThat(reason).as("dlq.error.reason").isNotNull();
        DlqReason parsed = DlqReason.of(reason);
        deadAt.put(
            header(r, Headers.DLQ_SOURCE_TOPIC) + "@" + header(r, Headers.DLQ_SOURCE_OFFSET),
            parsed);
      }
      assertThat(deadAt).hasSize((int) dlqCount);
      Map<String, int[]> byKind = new TreeMap<>(); // sent, dead-lettered
      Map<String, Map<String, Integer>> reasons = new TreeMap<>();
      List<String> missed = new ArrayList<>();
      List<String> wronglyDead = new ArrayList<>();
      int mustReject = 0;
      int mayReject = 0;
      for (Sent s : sent) {
        DlqReason r = deadAt.get(s.out().topic() + "@" + s.offset());
        int[] c = byKind.computeIfAbsent(s.out().must() + " " + s.out().kind(), k -> new int[2]);
        c[0]++;
        if (r != null) {
          c[1]++;
          reasons
              .computeIfAbsent(s.out().must() + " " + s.out().kind(), k -> new TreeMap<>())
              .merge(r.code(), 1, Integer::sum);
        }
        switch (s.out().must()) {
          case REJECT -> {
            mustReject++;
            if (r == null) {
              missed.add(
                  s.out().kind()
                      + " "
                      + s.out().topic()
                      + "@"
                      + s.offset()
                      + " "
                      + new String(
                          s.out().value(),
                          0,
                          Math.min(300, s.out().value().length),
                          StandardCharsets.ISO_8859_1));
            }
          }
          case EITHER -> mayReject++;
          case ACCEPT -> {
            if (r != null) {
              wronglyDead.add(s.out().kind() + " " + s.out().topic() + "@" + s.offset() + " " + r);
            }
          }
        }
      }
      System.out.println("FuzzIT: records by kind: sent, dead-lettered, reasons");
      byKind.forEach(
          (k, c) ->
              System.out.printf(
                  "FuzzIT:   %-40s %5d %5d %s%n",
                  k, c[0], c[1], reasons.getOrDefault(k, Map.of())));
      System.out.printf(
          "FuzzIT: %d sent, %d must be rejected, %d may be, %d on the DLQ, %d results"
              + " (%d of experiment fzm, from checkpoints that may be valid)%n",
          sent.size(), mustReject, mayReject, dlqCount, resultCount, otherResults);
      assertThat(missed).as("certainly invalid records not on the DLQ").isEmpty();
      assertThat(wronglyDead).as("good records on the DLQ").isEmpty();
      assertThat(dlqCount).isBetween((long) mustReject, (long) mustReject + mayReject);

      // The counter equals the topic.
      var metrics = h.get("/metrics");
      assertThat(metrics.statusCode()).isEqualTo(200);
      double counted = 0;
      for (String line : metrics.body().split("\n")) {
        Matcher m = DLQ_LINE.matcher(line);
        if (m.matches()) {
          DlqReason.of(m.group(1));
          counted += Double.parseDouble(m.group(2));
        }
      }
      assertThat(counted).isEqualTo((double) dlqCount);

      // Still up, and the heap (this JVM: broker, service and test) bounded after a GC.
      assertThat(h.get("/health/ready").statusCode()).isEqualTo(200);
      assertThat(h.get("/health/live").statusCode()).isEqualTo(200);
      Runtime rt = Runtime.getRuntime();
      System.gc();
      System.gc();
      long used = rt.totalMemory() - rt.freeMemory();
      System.out.printf(
          "FuzzIT: heap used after GC %.1f MiB (bound %d MiB); %.1f s%n",
          used / 1048576.0, HEAP_BOUND >> 20, (System.nanoTime() - started) / 1e9);
      assertThat(used).isLessThan(HEAP_BOUND);
    } finally {
      h.close();
    }
  }

  // ---------------------------------------------------------------- good records

  private void goodCheckpoint(List<Long> steps) {
    long step = 100L * (steps.size() + 1);
    steps.add(step);
    add(
        "good-checkpoint",
        Must.ACCEPT,
        h.topics.checkpoints(),
        EXP,
        manifest(EXP, "good", step, modelSha, model.length, modelChunks, LAYERS, EXTRA),
        cloudEvent(Headers.TYPE_CHECKPOINT, Headers.CONTENT_TYPE, Headers.JSON));
  }

  private static byte[] manifest(
      String e, String run, long step, String sha, long size, int chunks, String layers, String x) {
    return utf8(Fixtures.manifest(e, run, step, sha, size, chunks, layers, x));
  }

  // ---------------------------------------------------------------- the fuzz

  private void fuzzOne() throws Exception {
    int n = ++counter;
    switch (rnd.nextInt(3)) {
      case 0 -> fuzzBatch(n);
      case 1 -> fuzzCheckpoint(n);
      default -> fuzzBlob(n);
    }
  }

  /** A small valid batch: {@code rows} samples of width 2, labels in 0..2. */
  private float[] floats(int count) {
    float[] x = new float[count];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  private byte[] validBatch() {
    int rows = 1 + rnd.nextInt(8);
    long[] labels = new long[rows];
    for (int i = 0; i < rows; i++) {
      labels[i] = rnd.nextInt(3);
    }
    return Fixtures.batch("input", floats(rows * 2), labels, 2);
  }

  /** Raw safetensors: an 8-byte little-endian header length, the header, the data. */
  private static byte[] st(long declaredLength, byte[] header, byte[] data) {
    ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length);
    b.order(ByteOrder.LITTLE_ENDIAN).putLong(declaredLength).put(header).put(data);
    return b.array();
  }

  private static byte[] st(String header, byte[] data) {
    byte[] hb = utf8(header);
    return st(hb.length, hb, data);
  }

  private static String tensors(String inDtype, String inShape, String inOff, String labDtype) {
    return "{\"input\":{\"dtype\":\""
        + inDtype
        + "\",\"shape\":"
        + inShape
        + ",\"data_offsets\":"
        + inOff
        + "},\"labels\":{\"dtype\":\""
        + labDtype
        + "\",\"shape\":[2],\"data_offsets\":[16,32]}}";
  }

  /** True when bytes cannot be safetensors: too short, or a header length past the end. */
  private static boolean certainlyNotSafetensors(byte[] v) {
    if (v.length < 10) {
      return true;
    }
    long n = ByteBuffer.wrap(v, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    return n < 2 || n > v.length - 8;
  }

  private byte[] randomBytes(int max) {
    byte[] b = new byte[rnd.nextInt(max + 1)];
    rnd.nextBytes(b);
    return b;
  }

  private void fuzzBatch(int n) {
    String b = h.topics.batches();
    String key = "fb-" + n; // a fresh experiment each: a bad batch cannot spoil a good set
    Map<String, String> hd = referenceEvent(key, 0, true);
    byte[] data = new byte[32];
    switch (rnd.nextInt(22)) {
      case 0 -> {
        byte[] v = randomBytes(4096);
        add(
            "batch random-bytes",
            certainlyNotSafetensors(v) ? Must.REJECT : Must.EITHER,
            b,
            key,
            v,
            hd);
      }
      case 1 -> {
        byte[] v = validBatch();
        long bad = v.length - 7 + rnd.nextInt(1 << 30);
        ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).putLong(0, bad);
        add("batch st-bad-header-length", Must.REJECT, b, key, v, hd);
      }
      case 2 -> {
        String hj = tensors("F32", "[2,2]", "[0,16]", "I64");
        // A structural character ({}[]:," outside names and values) replaced: never JSON. A
        // character inside a string may leave it valid ("inp#t" is a legal tensor name).
        List<Integer> structural = new ArrayList<>();
        for (int i = 0; i < hj.length(); i++) {
          if ("{}[]:,\"".indexOf(hj.charAt(i)) >= 0) {
            structural.add(i);
          }
        }
        int cut = structural.get(rnd.nextInt(structural.size()));
        String broken = hj.substring(0, cut) + "#" + hj.substring(cut + 1);
        add("batch st-bad-json", Must.REJECT, b, key, st(broken, data), hd);
      }
      case 3 -> {
        long rows = 1L << (20 + rnd.nextInt(40));
        add(
            "batch st-huge-shape",
            Must.REJECT,
            b,
            key,
            st(tensors("F32", "[" + rows + ",2]", "[0,16]", "I64"), data),
            hd);
      }
      case 4 ->
          add(
              "batch st-offsets-past-end",
              Must.REJECT,
              b,
              key,
              st(tensors("F32", "[2,2]", "[0," + (33 + rnd.nextInt(1 << 20)) + "]", "I64"), data),
              hd);
      case 5 ->
          add(
              "batch st-wrong-dtype",
              Must.REJECT,
              b,
              key,
              st(
                  rnd.nextBoolean()
                      ? tensors("F32", "[2,2]", "[0,16]", "F64")
                      : tensors("U8", "[2,8]", "[0,16]", "I64"),
                  data),
              hd);
      case 6 -> {
        byte[] v = validBatch();
        add(
            "batch st-truncated",
            Must.REJECT,
            b,
            key,
            Arrays.copyOf(v, 1 + rnd.nextInt(v.length - 1)),
            hd);
      }
      case 7 -> {
        int depth = 10_000;
        String deep = "[".repeat(depth) + "]".repeat(depth);
        add("batch st-deeply-nested-header", Must.REJECT, b, key, st(deep, data), hd);
      }
      case 8 -> {
        float[] x = floats(4);
        x[rnd.nextInt(4)] = rnd.nextBoolean() ? Float.NaN : Float.NEGATIVE_INFINITY;
        add(
            "batch nonfinite-input",
            Must.REJECT,
            b,
            key,
            Fixtures.batch("input", x, new long[] {0, 1}, 2),
            hd);
      }
      case 9 ->
          add(
              "batch st-no-labels",
              Must.REJECT,
              b,
              key,
              st("{\"input\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", data),
              hd);
      case 10 -> {
        if (rnd.nextInt(4) == 0) { // over limits.max-batch-bytes, under the topic's limit
          int rows = MAX_BATCH_BYTES / 16 + 1 + rnd.nextInt(1000);
          add(
              "batch too-large",
              Must.REJECT,
              b,
              key,
              Fixtures.batch("input", new float[rows * 2], new long[rows], 2),
              hd);
        } else {
          add("batch wrong-type-json", Must.REJECT, b, key, utf8("{\"input\":[1,2]}"), hd);
        }
      }
      case 11 -> {
        String[] required = {
          Headers.SPECVERSION,
          Headers.ID,
          Headers.SOURCE,
          Headers.TYPE,
          Headers.EXPERIMENT,
          Headers.SPLIT,
          Headers.BATCH_INDEX
        };
        hd.remove(required[rnd.nextInt(required.length)]);
        add("batch missing-header", Must.REJECT, b, key, validBatch(), hd);
      }
      case 12 -> {
        String[][] wrong = {
          {Headers.SPECVERSION, "0.3"},
          {Headers.TYPE, Headers.TYPE_CHECKPOINT},
          {Headers.TYPE, "x"},
          {Headers.BATCH_INDEX, "abc"},
          {Headers.BATCH_INDEX, "-1"},
          {Headers.BATCH_INDEX, "1e3"},
          {Headers.BATCH_INDEX, "99999999999999999999999"},
          {Headers.SPLIT, "bogus"},
          {Headers.SPECVERSION, " "},
        };
        String[] w = wrong[rnd.nextInt(wrong.length)];
        hd.put(w[0], w[1]);
        add("batch invalid-header " + w[0], Must.REJECT, b, key, validBatch(), hd);
      }
      case 13 -> {
        hd.put(Headers.EXPERIMENT, "other-" + n);
        add("batch key-mismatch", Must.REJECT, b, key, validBatch(), hd);
      }
      case 14 -> {
        Map<String, String> live = cloudEvent(Headers.TYPE_BATCH);
        live.put(Headers.EXPERIMENT, key);
        live.put(Headers.SPLIT, rnd.nextBoolean() ? Headers.SPLIT_TRAIN : Headers.SPLIT_EVAL);
        live.put(Headers.BATCH_INDEX, "0");
        add("batch live-without-run", Must.REJECT, b, key, validBatch(), live);
      }
      case 15 -> {
        // Good: a fresh experiment's valid one-batch reference set, or an identical resend.
        if (rnd.nextBoolean()) {
          add("good batch small-reference", Must.ACCEPT, b, key, validBatch(), hd);
        } else {
          add(
              "good batch identical-resend",
              Must.ACCEPT,
              b,
              EXP,
              exampleBatch0(),
              referenceEvent(EXP, 0, false));
        }
      }
      case 16 -> {
        // A byte flipped somewhere in a valid batch: may still be valid (a changed float).
        byte[] v = validBatch();
        v[rnd.nextInt(v.length)] ^= (byte) (1 + rnd.nextInt(255));
        add("batch byte-flip", Must.EITHER, b, key, v, hd);
      }
      case 17 ->
          add(
              "batch json-not-safetensors",
              Must.REJECT,
              b,
              key,
              utf8("{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}"),
              hd);
      case 18 -> {
        // A header declaring an absurd header length (near 2^63) or a negative one.
        byte[] v = validBatch();
        ByteBuffer.wrap(v)
            .order(ByteOrder.LITTLE_ENDIAN)
            .putLong(0, rnd.nextBoolean() ? Long.MAX_VALUE - rnd.nextInt(10) : -1L);
        add("batch st-absurd-header-length", Must.REJECT, b, key, v, hd);
      }
      case 19 -> {
        String[] wrongTypes = {
          tensors("5", "[2,2]", "[0,16]", "I64").replace("\"5\"", "5"),
          tensors("F32", "\"2x2\"", "[0,16]", "I64"),
          tensors("F32", "[2,2]", "\"0-16\"", "I64"),
          tensors("F32", "[2.5,2]", "[0,16]", "I64"),
          tensors("F32", "[-2,-2]", "[0,16]", "I64"),
          tensors("F32", "[2,2]", "[16,0]", "I64"),
          tensors("F32", "[2,2]", "[0,16,32]", "I64"),
          "[]",
          "\"" + "s".repeat(200) + "\"",
        };
        add(
            "batch st-wrong-json-types",
            Must.REJECT,
            b,
            key,
            st(wrongTypes[rnd.nextInt(wrongTypes.length)], data),
            hd);
      }
      case 20 -> {
        // A huge string in the header's free-form metadata: the batch may be valid.
        String meta =
            "{\"__metadata__\":{\"note\":\"" + "m".repeat(50_000 + rnd.nextInt(150_000)) + "\"},";
        add(
            "batch st-huge-metadata-string",
            Must.EITHER,
            b,
            key,
            st(tensors("F32", "[2,2]", "[0,16]", "I64").replaceFirst("\\{", meta), data),
            hd);
      }
      default -> {
        byte[] v = validBatch();
        add("batch empty-key", Must.REJECT, b, "", v, hd);
      }
    }
  }

  private byte[] exampleBatch0;

  private byte[] exampleBatch0() {
    if (exampleBatch0 == null) {
      try {
        exampleBatch0 = Fixtures.example("reference-0.safetensors");
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return exampleBatch0;
  }

  private String validManifest(long step) {
    return new String(
        manifest(BAD, "bad", step, modelSha, model.length, modelChunks, LAYERS, EXTRA),
        StandardCharsets.UTF_8);
  }

  private void fuzzCheckpoint(int n) throws Exception {
    String c = h.topics.checkpoints();
    Map<String, String> hd = cloudEvent(Headers.TYPE_CHECKPOINT);
    long step = 10_000L + n;
    String valid = validManifest(step);
    switch (rnd.nextInt(15)) {
      case 0 -> add("checkpoint random-bytes", Must.REJECT, c, BAD, randomBytes(2048), hd);
      case 1 -> {
        int depth = 10_000;
        String deep =
            rnd.nextBoolean()
                ? "[".repeat(depth) + "]".repeat(depth)
                : "{\"experiment\":\""
                    + BAD
                    + "\",\"x\":"
                    + "[".repeat(depth)
                    + "]".repeat(depth)
                    + "}";
        add("checkpoint deeply-nested-json", Must.REJECT, c, BAD, utf8(deep), hd);
      }
      case 2 -> {
        String big = "a".repeat(100_000 + rnd.nextInt(200_000));
        String v =
            rnd.nextBoolean()
                ? "\"" + big + "\""
                : valid.replace("\"step\":" + step, "\"step\":\"" + big + "\"");
        add("checkpoint huge-json-string", Must.REJECT, c, BAD, utf8(v), hd);
      }
      case 3 -> {
        String[] wrongTypes = {
          "[]",
          "null",
          "42",
          "true",
          "\"manifest\"",
          "{}",
          valid.replace("\"step\":" + step, "\"step\":\"" + step + "x\""),
          valid.replace("\"run\":\"bad\"", "\"run\":5"),
          valid.replace("\"layers\":" + LAYERS, "\"layers\":7"),
          valid.replace("\"classes\":5", "\"classes\":\"five\""),
          valid.replace("\"input\":\"input\"", "\"input\":[\"input\"]"),
          valid.replace("\"experiment\":\"" + BAD + "\"", "\"experiment\":{}"),
          "{\"experiment\":\"" + BAD + "\",\"run\":\"bad\",\"step\":" + step + ",\"model\":[]}",
        };
        add(
            "checkpoint wrong-types",
            Must.REJECT,
            c,
            BAD,
            utf8(wrongTypes[rnd.nextInt(wrongTypes.length)]),
            hd);
      }
      case 4 -> {
        String[] absurd = {
          valid.replace("\"step\":" + step, "\"step\":-" + step),
          valid.replace("\"step\":" + step, "\"step\":1e300"),
          valid.replace("\"step\":" + step, "\"step\":99999999999999999999999999"),
          valid.replace("\"classes\":5", "\"classes\":0"),
          valid.replace("\"classes\":5", "\"classes\":-3"),
          valid.replace("\"classes\":5", "\"classes\":1000000000"),
          valid.replace("\"size\":" + model.length, "\"size\":-1"),
          valid.replace("\"size\":" + model.length, "\"size\":1000000000000000"),
          valid.replace("\"chunks\":" + modelChunks, "\"chunks\":0"),
          valid.replace("\"chunks\":" + modelChunks, "\"chunks\":-7"),
          valid.replace(modelSha, "xyz"),
          valid.replace(modelSha, modelSha.toUpperCase(java.util.Locale.ROOT) + "00"),
        };
        add(
            "checkpoint absurd-values",
            Must.REJECT,
            c,
            BAD,
            utf8(absurd[rnd.nextInt(absurd.length)]),
            hd);
      }
      case 5 -> {
        String[] fields = {"experiment", "run", "step", "model", "input", "logits"};
        String f = fields[rnd.nextInt(fields.length)];
        JsonNode o = JSON.readTree(valid);
        ((com.fasterxml.jackson.databind.node.ObjectNode) o).remove(f);
        add("checkpoint missing-field", Must.REJECT, c, BAD, JSON.writeValueAsBytes(o), hd);
      }
      case 6 -> add("checkpoint key-mismatch", Must.REJECT, c, "other-" + n, utf8(valid), hd);
      case 7 -> {
        String[] required = {Headers.SPECVERSION, Headers.ID, Headers.SOURCE, Headers.TYPE};
        hd.remove(required[rnd.nextInt(required.length)]);
        add("checkpoint missing-header", Must.REJECT, c, BAD, utf8(valid), hd);
      }
      case 8 -> {
        String[][] wrong = {
          {Headers.SPECVERSION, "2.0"},
          {Headers.TYPE, Headers.TYPE_BLOB},
          {Headers.TYPE, "probestream.checkpoint.v2"},
          {Headers.ID, ""},
          {Headers.SOURCE, "   "},
        };
        String[] w = wrong[rnd.nextInt(wrong.length)];
        hd.put(w[0], w[1]);
        add("checkpoint invalid-header " + w[0], Must.REJECT, c, BAD, utf8(valid), hd);
      }
      case 9 -> {
        // ONNX bytes that are not a model: a blob stored correctly, then a checkpoint naming it.
        byte[] notOnnx = new byte[32 + rnd.nextInt(3000)];
        rnd.nextBytes(notOnnx);
        String sha = ProbeResult.sha256Hex(notOnnx);
        add(
            "good blob not-onnx",
            Must.ACCEPT,
            h.topics.blobs(),
            BAD,
            notOnnx,
            blobChunkEvent(sha, 0, 1, notOnnx.length));
        add(
            "checkpoint not-onnx-model",
            Must.REJECT,
            c,
            BAD,
            manifest(BAD, "bad", step, sha, notOnnx.length, 1, LAYERS, EXTRA),
            hd);
      }
      case 10 -> {
        // A tiny model declaring an absurd input width: the reference data is 20 wide.
        long width = 1L << (30 + rnd.nextInt(20));
        byte[] tiny =
            new OnnxModelBuilder()
                .input("input", width)
                .identity("input", "h")
                .identity("input", "logits")
                .output("h", width)
                .output("logits", width)
                .build();
        String sha = ProbeResult.sha256Hex(tiny);
        add(
            "good blob absurd-shape-model",
            Must.ACCEPT,
            h.topics.blobs(),
            BAD,
            tiny,
            blobChunkEvent(sha, 0, 1, tiny.length));
        add(
            "checkpoint absurd-shape-model",
            Must.REJECT,
            c,
            BAD,
            manifest(BAD, "bad", step, sha, tiny.length, 1, "{\"h\":\"h\"}", ",\"classes\":5"),
            hd);
      }
      case 14 -> {
        // A tiny model whose hidden output declares an absurd width; it really is 20 wide.
        double[][] w = new double[5][20];
        for (int k = 0; k < 5; k++) {
          w[k][k] = 1;
        }
        byte[] tiny =
            new OnnxModelBuilder()
                .input("input", 20)
                .matrix("classifier.weight", w)
                .vector("classifier.bias", new double[5])
                .identity("input", "h")
                .linear("h", "classifier.weight", "classifier.bias", "logits")
                .output("h", 1L << (30 + rnd.nextInt(20)))
                .output("logits", 5)
                .build();
        String sha = ProbeResult.sha256Hex(tiny);
        add(
            "good blob absurd-output-model",
            Must.ACCEPT,
            h.topics.blobs(),
            BAD,
            tiny,
            blobChunkEvent(sha, 0, 1, tiny.length));
        add(
            "checkpoint absurd-output-model",
            Must.EITHER,
            c,
            BAD,
            manifest(BAD, "bad", step, sha, tiny.length, 1, "{\"h\":\"h\"}", EXTRA),
            hd);
      }
      case 11 ->
          add(
              "checkpoint unknown-tensor",
              Must.REJECT,
              c,
              BAD,
              utf8(valid.replace("\"h2\":\"h2\"", "\"h2\":\"nope" + n + "\"")),
              hd);
      case 12 -> {
        byte[] v = utf8(valid);
        add(
            "checkpoint truncated-json",
            Must.REJECT,
            c,
            BAD,
            Arrays.copyOf(v, rnd.nextInt(v.length - 1)),
            hd);
      }
      default ->
          add(
              "checkpoint empty-key",
              Must.REJECT,
              c,
              rnd.nextBoolean() ? "" : null,
              utf8(valid),
              hd);
    }
  }

  private String randomSha() {
    byte[] b = new byte[16];
    rnd.nextBytes(b);
    return ProbeResult.sha256Hex(b);
  }

  private void fuzzBlob(int n) {
    String bl = h.topics.blobs();
    String key = "fbl";
    // At least 32 random bytes, so two blobs of this run never share a sha256 by chance.
    byte[] v = new byte[32 + rnd.nextInt(2017)];
    rnd.nextBytes(v);
    String sha = ProbeResult.sha256Hex(v);
    switch (rnd.nextInt(11)) {
      case 0 ->
          add(
              "blob wrong-sha",
              Must.REJECT,
              bl,
              key,
              v,
              blobChunkEvent(randomSha(), 0, 1, v.length));
      case 1 ->
          add(
              "blob wrong-size",
              Must.REJECT,
              bl,
              key,
              v,
              blobChunkEvent(sha, 0, 1, v.length + 1 + rnd.nextInt(1000)));
      case 2 -> {
        int count = 1 + rnd.nextInt(5);
        add(
            "blob index-out-of-range",
            Must.REJECT,
            bl,
            key,
            v,
            blobChunkEvent(sha, rnd.nextBoolean() ? count + rnd.nextInt(3) : -1, count, v.length));
      }
      case 3 -> {
        Map<String, String> hd = blobChunkEvent(sha, 0, 1, v.length);
        String[][] wrong = {
          {Headers.BLOB_COUNT, "0"},
          {Headers.BLOB_COUNT, "-2"},
          {Headers.BLOB_COUNT, "many"},
          {Headers.BLOB_SIZE, "0"},
          {Headers.BLOB_SIZE, "-1"},
          {Headers.BLOB_SIZE, "9223372036854775808"},
          {Headers.BLOB_SIZE, "99999999999999"},
          {Headers.BLOB_INDEX, "0x0"},
          {Headers.BLOB_SHA256, "not-a-sha"},
          {Headers.BLOB_SHA256, sha.toUpperCase(java.util.Locale.ROOT)},
          {Headers.BLOB_SHA256, sha + "0"},
          {Headers.SPECVERSION, "1"},
          {Headers.TYPE, Headers.TYPE_BATCH},
        };
        String[] w = wrong[rnd.nextInt(wrong.length)];
        hd.put(w[0], w[1]);
        add("blob invalid-header " + w[0], Must.REJECT, bl, key, v, hd);
      }
      case 4 -> {
        Map<String, String> hd = blobChunkEvent(sha, 0, 1, v.length);
        String[] required = {
          Headers.SPECVERSION,
          Headers.ID,
          Headers.SOURCE,
          Headers.TYPE,
          Headers.BLOB_SHA256,
          Headers.BLOB_INDEX,
          Headers.BLOB_COUNT,
          Headers.BLOB_SIZE
        };
        hd.remove(required[rnd.nextInt(required.length)]);
        add("blob missing-header", Must.REJECT, bl, key, v, hd);
      }
      case 5 -> {
        // Truncated: the first chunk(s) of a blob whose last chunk never comes; it waits.
        int count = 2 + rnd.nextInt(3);
        int size = v.length * count;
        String whole = randomSha();
        for (int i = 0; i < count - 1; i++) {
          add(
              "blob truncated (chunks missing)",
              Must.EITHER,
              bl,
              key,
              v,
              blobChunkEvent(whole, i, count, size));
        }
      }
      case 6 -> add("blob empty-key", Must.REJECT, bl, "", v, blobChunkEvent(sha, 0, 1, v.length));
      case 7, 8 ->
          add(
              "good blob random-bytes",
              Must.ACCEPT,
              bl,
              key,
              v,
              blobChunkEvent(sha, 0, 1, v.length));
      default -> {
        // A blob whose one chunk is cut short: size and sha announced for the whole.
        add(
            "blob truncated-single-chunk",
            Must.REJECT,
            bl,
            key,
            Arrays.copyOf(v, v.length / 2),
            blobChunkEvent(sha, 0, 1, v.length));
      }
    }
  }

  // ---------------------------------------------------------------- plumbing

  private List<Sent> sendAll(KafkaTestCluster kafka) throws Exception {
    Map<String, Object> p = new HashMap<>();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, "4194304");
    p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    List<Future<RecordMetadata>> futures = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (Out o : queue) {
        ProducerRecord<byte[], byte[]> r =
            new ProducerRecord<>(
                o.topic(), null, o.key() == null ? null : utf8(o.key()), o.value());
        o.h().forEach((k, v) -> r.headers().add(k, utf8(v)));
        futures.add(producer.send(r));
      }
      producer.flush();
      List<Sent> sent = new ArrayList<>();
      for (int i = 0; i < queue.size(); i++) {
        RecordMetadata m = futures.get(i).get(30, TimeUnit.SECONDS);
        sent.add(new Sent(queue.get(i), m.partition(), m.offset()));
      }
      return sent;
    }
  }

  /** Waits until the service's group has committed every input record sent (see DeadLetterIT). */
  private void awaitAllInputCommitted(List<Sent> sent) throws Exception {
    Map<TopicPartition, Long> want = new HashMap<>();
    for (Sent s : sent) {
      want.merge(new TopicPartition(s.out().topic(), s.partition()), s.offset() + 1, Math::max);
    }
    try (Admin admin = admin()) {
      await()
          .atMost(WAIT)
          .pollInterval(Duration.ofMillis(250))
          .untilAsserted(
              () -> {
                Map<TopicPartition, OffsetAndMetadata> committed =
                    admin
                        .listConsumerGroupOffsets(h.config.kafka().groupId())
                        .partitionsToOffsetAndMetadata()
                        .get(10, TimeUnit.SECONDS);
                Map<TopicPartition, Long> positions = new HashMap<>();
                for (TopicPartition tp : want.keySet()) {
                  OffsetAndMetadata o = committed.get(tp);
                  positions.put(tp, o == null ? -1L : o.offset());
                }
                assertThat(positions).isEqualTo(want);
              });
    }
  }

  private Map<String, Long> endOffsets(List<String> topics) throws Exception {
    Map<TopicPartition, OffsetSpec> request = new HashMap<>();
    for (String t : topics) {
      request.put(new TopicPartition(t, 0), OffsetSpec.latest());
    }
    Map<String, Long> out = new LinkedHashMap<>();
    try (Admin admin = admin()) {
      admin
          .listOffsets(request)
          .all()
          .get(10, TimeUnit.SECONDS)
          .forEach((tp, info) -> out.put(tp.topic(), info.offset()));
    }
    return out;
  }

  private Admin admin() {
    return Admin.create(
        Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, h.kafka.bootstrapServers()));
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
