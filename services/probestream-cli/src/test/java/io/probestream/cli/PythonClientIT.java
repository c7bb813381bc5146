package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.schema.Schemas;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12: the Python client (clients/python) against the real service. The round-trip script
 * trains a tiny torch MLP, publishes a reference set and two checkpoints with probestream_client
 * and reads the results back; here the same ONNX and safetensors files go through {@code
 * probestream probe}, whose neural_collapse metrics must equal the ones that came over Kafka, and
 * every record the client sent must pass the schemas (and none reach the DLQ).
 */
class PythonClientIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String PYTHON = "/usr/bin/python3";
  private static final Path SCRIPT = Path.of("../../clients/python/tests/test_roundtrip.py");
  private static final String EXPERIMENT = "pyclient-it";
  private static final int SKIP = 77;

  @TempDir Path dataDir;
  @TempDir Path work;

  @Test
  void pythonClientResultsEqualTheCliOnTheSameFiles() throws Exception {
    Assumptions.assumeTrue(
        Files.isExecutable(Path.of(PYTHON)),
        PYTHON
            + " is missing: apt-get install python3 python3-numpy python3-torch python3-onnx"
            + " python3-confluent-kafka");
    ProbestreamConfig config = CliTest.embeddedConfig(dataDir, "probes.enabled", "neural_collapse");
    Topics topics = config.topicNames();
    try (ServiceRuntime rt = ServiceRuntime.start(config, new PrintWriter(new StringWriter()))) {
      Path log = work.resolve("python.log");
      Path out = work.resolve("out");
      ProcessBuilder pb =
          new ProcessBuilder(
                  PYTHON,
                  SCRIPT.toString(),
                  "--bootstrap-servers",
                  rt.bootstrap,
                  "--workdir",
                  out.toString(),
                  "--experiment",
                  EXPERIMENT,
                  "--topic-prefix",
                  topics.prefix(),
                  "--timeout",
                  "60")
              .redirectErrorStream(true)
              .redirectOutput(log.toFile());
      pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
      Process p = pb.start();
      if (!p.waitFor(150, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
        throw new AssertionError("the Python round trip timed out:\n" + Files.readString(log));
      }
      String output = Files.readString(log);
      Assumptions.assumeTrue(
          p.exitValue() != SKIP,
          "skipped: "
              + PYTHON
              + " lacks Debian packages the Python client needs (python3-confluent-kafka,"
              + " python3-torch, python3-onnx, python3-numpy): "
              + output.strip());
      assertThat(p.exitValue()).as("test_roundtrip.py exited non-zero:\n%s", output).isZero();

      JsonNode meta = JSON.readTree(out.resolve("checkpoints.json").toFile());
      List<JsonNode> kafka = new ArrayList<>();
      for (String line : Files.readAllLines(out.resolve("results.jsonl"))) {
        JsonNode r = JSON.readTree(line);
        // Live-split results included: their reference_sha256 is null, as the schema allows.
        assertThat(Schemas.get().validateResult(line)).as(line).isEmpty();
        kafka.add(r);
      }
      assertThat(kafka).hasSize(6);

      int compared = 0;
      for (JsonNode cp : meta.get("checkpoints")) {
        long step = cp.get("step").asLong();
        List<String> args =
            new ArrayList<>(
                List.of(
                    "probe",
                    "-q",
                    "--model",
                    out.resolve(cp.get("file").asText()).toString(),
                    "--logits",
                    "logits",
                    "--classifier-weight",
                    "classifier.weight",
                    "--probe",
                    "neural_collapse",
                    "--experiment",
                    EXPERIMENT,
                    "--run",
                    meta.get("run").asText(),
                    "--step",
                    Long.toString(step)));
        for (JsonNode ref : meta.get("references")) {
          args.add("--data");
          args.add(out.resolve(ref.asText()).toString());
        }
        meta.get("layers")
            .fields()
            .forEachRemaining(e -> args.add("--layer=" + e.getKey() + "=" + e.getValue().asText()));
        CliTest.Run r = CliTest.run(args.toArray(new String[0]));
        assertThat(r.code()).as(r.err()).isZero();
        for (String line : r.out().split("\n")) {
          JsonNode cli = JSON.readTree(line);
          String layer = cli.get("layer").asText();
          JsonNode live =
              kafka.stream()
                  .filter(k -> k.get("split").asText().equals("reference"))
                  .filter(k -> k.get("step").asLong() == step)
                  .filter(k -> k.get("layer").asText().equals(layer))
                  .findFirst()
                  .orElseThrow(
                      () -> new AssertionError("no Kafka result for " + step + " " + layer));
          // Same model and reference bytes: the published files are the files probed here.
          assertThat(live.get("model_sha256")).isEqualTo(cli.get("model_sha256"));
          assertThat(live.get("model_sha256").asText()).isEqualTo(cp.get("sha256").asText());
          assertThat(live.get("reference_sha256")).isEqualTo(cli.get("reference_sha256"));
          assertThat(live.get("id")).isEqualTo(cli.get("id"));
          assertThat(fieldNames(live.get("metrics"))).isEqualTo(fieldNames(cli.get("metrics")));
          for (Iterator<String> k = cli.get("metrics").fieldNames(); k.hasNext(); ) {
            String key = k.next();
            double want = cli.get("metrics").get(key).asDouble();
            assertThat(live.get("metrics").get(key).asDouble())
                .as("step %d layer %s: %s", step, layer, key)
                .isCloseTo(want, within(1e-9 * Math.max(Math.abs(want), 1e-300)));
          }
          compared++;
        }
      }
      assertThat(compared).isEqualTo(4);
      // The layer fed to the classifier has the self-duality metric: classifier_weight resolved.
      assertThat(
              kafka.stream()
                  .filter(k -> k.get("layer").asText().equals("h2"))
                  .filter(k -> k.get("split").asText().equals("reference"))
                  .allMatch(k -> k.get("metrics").has("nc3_self_duality")))
          .isTrue();

      // Every record the client sent follows the schemas, and nothing was dead-lettered.
      Map<String, Integer> counts = new LinkedHashMap<>();
      for (String topic : List.of("blobs", "batches", "checkpoints")) {
        List<ConsumerRecord<byte[], byte[]>> records =
            readAll(rt.bootstrap, topics.prefix() + topic);
        counts.put(topic, records.size());
        for (ConsumerRecord<byte[], byte[]> rec : records) {
          assertThat(new String(rec.key(), StandardCharsets.UTF_8)).isEqualTo(EXPERIMENT);
          Map<String, String> headers = headers(rec);
          assertThat(Schemas.get().validateHeaders(topic, headers)).as("%s", headers).isEmpty();
          if (topic.equals("checkpoints")) {
            assertThat(Schemas.get().validateManifest(rec.value()))
                .as(new String(rec.value(), StandardCharsets.UTF_8))
                .isEmpty();
          }
        }
      }
      assertThat(counts).containsEntry("checkpoints", 2).containsEntry("batches", 3);
      assertThat(counts.get("blobs")).isGreaterThanOrEqualTo(2);
      assertThat(readAll(rt.bootstrap, topics.dlq()))
          .as("records dead-lettered")
          .extracting(PythonClientIT::headers)
          .isEmpty();
    }
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }

  private static Map<String, String> headers(ConsumerRecord<byte[], byte[]> rec) {
    Map<String, String> out = new LinkedHashMap<>();
    for (Header h : rec.headers()) {
      out.put(h.key(), new String(h.value(), StandardCharsets.UTF_8));
    }
    return out;
  }

  /** Every record of a topic, from the earliest offset to the end at the time of the call. */
  private static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, String topic)
      throws IOException {
    Map<String, Object> props = new LinkedHashMap<>();
    props.put("bootstrap.servers", bootstrap);
    props.put("enable.auto.commit", "false");
    props.put("max.partition.fetch.bytes", 70 << 20);
    props.put("fetch.max.bytes", 70 << 20);
    List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> parts = new ArrayList<>();
      c.partitionsFor(topic, Duration.ofSeconds(10))
          .forEach(pi -> parts.add(new TopicPartition(topic, pi.partition())));
      c.assign(parts);
      c.seekToBeginning(parts);
      Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(10));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        if (System.nanoTime() > deadline) {
          throw new IOException("timed out reading " + topic);
        }
        c.poll(Duration.ofMillis(200)).forEach(out::add);
      }
    }
    return out;
  }
}
