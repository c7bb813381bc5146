package io.probestream.service;

import static io.probestream.service.ServiceHarness.blobChunkEvent;
import static io.probestream.service.ServiceHarness.cloudEvent;
import static io.probestream.service.ServiceHarness.header;
import static io.probestream.service.ServiceHarness.referenceEvent;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.schema.Schemas;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.junit.jupiter.api.Test;

/**
 * Every record the service writes, on results and on the DLQ, is checked against {@code schemas/}:
 * result values and header sets, and DLQ header sets including the original headers they carry. The
 * input is NC-B (PROBES.md §1.6) plus bad records of each kind.
 */
@ProbestreamIT
class SchemaConformanceIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Schemas SCHEMAS = Schemas.get();
  private static final String EXPERIMENT = "ncb";
  private static final Duration WAIT = Duration.ofSeconds(60);

  /** The reasons that mean "the headers break the topic's contract". */
  private static final Set<String> HEADER_REASONS =
      Set.of(DlqReason.MISSING_HEADER.code(), DlqReason.INVALID_HEADER.code());

  /** A record sent to the service: topic, value and headers. */
  private record Sent(String topic, byte[] value, Map<String, String> headers) {}

  @Test
  void everyResultAndDeadLetterMatchesTheSchemas(KafkaTestCluster kafka) throws Exception {
    byte[] model = Fixtures.ncbModel();
    String sha = ProbeResult.sha256Hex(model);
    try (ServiceHarness h = ServiceHarness.start(kafka, Map.of())) {
      Map<String, Sent> good = new LinkedHashMap<>(); // by ce_id
      Map<String, Sent> bad = new LinkedHashMap<>();

      send(h, good, h.topics.blobs(), model, chunk(sha));
      for (int i = 0; i < 2; i++) {
        send(h, good, h.topics.batches(), Fixtures.ncbBatch(i), reference(i, i == 1));
      }
      byte[] manifest = manifest(5, sha, model.length);
      assertThat(SCHEMAS.validateManifest(manifest)).isEmpty();
      send(h, good, h.topics.checkpoints(), manifest, checkpointHeaders());

      // Bad values: not JSON, a manifest out of contract, bytes that are not safetensors, a blob
      // whose bytes do not have the announced sha256.
      send(h, bad, h.topics.checkpoints(), utf8("not json"), checkpointHeaders());
      byte[] negativeStep = manifest(-1, sha, model.length);
      assertThat(SCHEMAS.validateManifest(negativeStep))
          .containsExactly("$.step = -1: must have a minimum value of 0");
      send(h, bad, h.topics.checkpoints(), negativeStep, checkpointHeaders());
      send(h, bad, h.topics.batches(), utf8("not safetensors"), reference(7, false));
      String wrongSha = ProbeResult.sha256Hex(utf8("another model"));
      send(h, bad, h.topics.blobs(), model, chunk(wrongSha));
      // Bad headers: no ce_type, and the ce_type of another topic.
      Map<String, String> noType = checkpointHeaders();
      noType.remove(Headers.TYPE);
      send(h, bad, h.topics.checkpoints(), manifest(6, sha, model.length), noType);
      send(
          h,
          bad,
          h.topics.checkpoints(),
          manifest(7, sha, model.length),
          cloudEvent(Headers.TYPE_BLOB));

      Map<String, String> kinds =
          Map.of(
              h.topics.checkpoints(), "checkpoints",
              h.topics.blobs(), "blobs",
              h.topics.batches(), "batches");
      // The fixtures keep the contract themselves, or the checks below would prove little.
      for (Sent s : good.values()) {
        assertThat(SCHEMAS.validateHeaders(kinds.get(s.topic()), s.headers()))
            .as(s.topic() + " " + s.headers())
            .isEmpty();
      }

      List<ConsumerRecord<byte[], byte[]>> results = h.read(h.topics.results(), 1, WAIT);
      assertThat(results).hasSize(1);
      for (ConsumerRecord<byte[], byte[]> r : results) {
        String value = new String(r.value(), StandardCharsets.UTF_8);
        assertThat(SCHEMAS.validateResult(value)).as(value).isEmpty();
        Map<String, String> headers = headers(r);
        assertThat(SCHEMAS.validateHeaders("results", headers)).as(headers.toString()).isEmpty();
        // What the schemas cannot say: the header set agrees with the value it carries.
        JsonNode o = JSON.readTree(value);
        assertThat(headers.get(Headers.ID)).isEqualTo(o.get("id").asText());
        assertThat(headers.get(Headers.TIME)).isEqualTo(o.get("computed_at").asText());
        assertThat(headers.get(Headers.EXPERIMENT)).isEqualTo(o.get("experiment").asText());
        assertThat(new String(r.key(), StandardCharsets.UTF_8))
            .isEqualTo(o.get("experiment").asText());
      }
      // The check above has teeth: the same result without its id is reported.
      ObjectNode noId = (ObjectNode) JSON.readTree(results.get(0).value());
      noId.remove("id");
      assertThat(SCHEMAS.validateResult(noId.toString()))
          .containsExactly("$: required property 'id' not found");

      List<ConsumerRecord<byte[], byte[]>> dead = h.read(h.topics.dlq(), bad.size(), WAIT);
      assertThat(dead).hasSize(bad.size());
      for (ConsumerRecord<byte[], byte[]> r : dead) {
        Map<String, String> headers = headers(r);
        assertThat(SCHEMAS.validateHeaders("dlq", headers)).as(headers.toString()).isEmpty();

        Sent sent = bad.remove(headers.get(Headers.ID));
        assertThat(sent).as("a DLQ record that was not sent as bad: " + headers).isNotNull();
        assertThat(r.key()).isEqualTo(utf8(EXPERIMENT));
        assertThat(r.value()).isEqualTo(sent.value());
        Map<String, String> original = new LinkedHashMap<>(headers);
        original.keySet().removeIf(name -> name.startsWith("dlq."));
        assertThat(original).isEqualTo(sent.headers());
        assertThat(headers.get(Headers.DLQ_SOURCE_TOPIC)).isEqualTo(sent.topic());

        // The original headers meet their topic's schema exactly when the service did not
        // reject them for their headers.
        String reason = headers.get(Headers.DLQ_REASON);
        List<String> violations = SCHEMAS.validateHeaders(kinds.get(sent.topic()), original);
        if (HEADER_REASONS.contains(reason)) {
          assertThat(violations).as(reason + " " + original).isNotEmpty();
        } else {
          assertThat(violations).as(reason + " " + original).isEmpty();
        }
      }
      assertThat(bad).as("bad records missing from the DLQ").isEmpty();
    }
  }

  /** Sends one record and files it in {@code sent} by its ce_id. */
  private static void send(
      ServiceHarness h, Map<String, Sent> sent, String topic, byte[] value, Map<String, String> hs)
      throws Exception {
    h.send(topic, EXPERIMENT, value, hs);
    sent.put(hs.get(Headers.ID), new Sent(topic, value, hs));
  }

  /** A record's headers as name → UTF-8 text; header names are unique on every topic. */
  private static Map<String, String> headers(ConsumerRecord<byte[], byte[]> r) {
    Map<String, String> out = new LinkedHashMap<>();
    for (Header x : r.headers()) {
      assertThat(out).as("header " + x.key() + " repeated").doesNotContainKey(x.key());
      out.put(x.key(), header(r, x.key()));
    }
    return out;
  }

  private static byte[] manifest(long step, String sha, int size) {
    return utf8(
        Fixtures.manifest(
            EXPERIMENT,
            "r",
            step,
            sha,
            size,
            1,
            "{\"h\":\"h\"}",
            ",\"classifier_weight\":\"classifier.weight\",\"classes\":3"));
  }

  private static Map<String, String> checkpointHeaders() {
    return cloudEvent(Headers.TYPE_CHECKPOINT, Headers.CONTENT_TYPE, Headers.JSON);
  }

  private static Map<String, String> chunk(String sha) {
    return blobChunkEvent(sha, 0, 1, Fixtures.ncbModel().length);
  }

  private static Map<String, String> reference(int index, boolean last) {
    return referenceEvent(EXPERIMENT, index, last);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
