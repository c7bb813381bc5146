package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code demo} and {@code publish} end to end on a real broker. */
@ProbestreamIT
class CommandsIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path EXAMPLE = Path.of("../../examples/mlp");

  @TempDir Path dir;

  @Test
  void demoTrainsThreeSeedsAndPrintsTheirResults() throws Exception {
    CliTest.Run r =
        CliTest.run(
            "demo",
            "--once",
            "--steps",
            "300",
            "--checkpoint-every",
            "100",
            "--speed",
            "max",
            "--data-dir",
            dir.toString(),
            "--set",
            "workers.threads=1");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    // 3 seeds × 3 checkpoints (steps 100, 200, 300), each with 2 layers × 2 per-layer probes
    // and one predictive_multiplicity result: 45 lines.
    List<String> lines = r.out().lines().toList();
    assertThat(lines).hasSize(45);
    Pattern perLayer =
        Pattern.compile(
            "(neural_collapse|feature_complexity) demo-sim/(seed-[123]) step (100|200|300) layer"
                + " (h1|h2) +samples 1000 .*");
    Map<String, Integer> seen = new TreeMap<>();
    Map<String, Double> nc1 = new TreeMap<>();
    String lastMultiplicity = null;
    for (String line : lines) {
      if (line.startsWith("predictive_multiplicity ")) {
        assertThat(line)
            .matches("predictive_multiplicity demo-sim step (100|200|300) samples 1000 .*");
        lastMultiplicity = line;
        continue;
      }
      Matcher m = perLayer.matcher(line);
      assertThat(m.matches()).as(line).isTrue();
      seen.merge(m.group(1) + " " + m.group(4), 1, Integer::sum);
      if (m.group(1).equals("neural_collapse")) {
        Matcher v = Pattern.compile(" nc1 ([0-9.e-]+) ").matcher(line);
        assertThat(v.find()).as(line).isTrue();
        nc1.put(m.group(2) + "@" + m.group(3) + " " + m.group(4), Double.parseDouble(v.group(1)));
      }
    }
    // every probe and layer for each of the 9 checkpoints
    assertThat(seen)
        .containsExactlyEntriesOf(
            new TreeMap<>(
                Map.of(
                    "feature_complexity h1", 9,
                    "feature_complexity h2", 9,
                    "neural_collapse h1", 9,
                    "neural_collapse h2", 9)));
    // Training drives the probes: within-class variability on the reference set shrinks
    // relative to the class means as every seed fits its training set (PROBES.md §1).
    for (String seed : List.of("seed-1", "seed-2", "seed-3")) {
      assertThat(nc1.get(seed + "@300 h2")).as(seed).isLessThan(nc1.get(seed + "@100 h2"));
    }
    // The last update of the experiment's ε-Rashomon set: all nine checkpoints seen, and its
    // members come from all three runs (the seeds end within 0.05 nats of each other).
    assertThat(lastMultiplicity)
        .contains(" models_seen 9 ")
        .containsPattern(" members seed-1:[1-3] seed-2:[1-3] seed-3:[1-3]  \\(");
    assertThat(r.err()).contains("probestream: dashboard  http://localhost:");
    // one progress line per checkpoint, on stderr
    assertThat(r.err().lines().filter(l -> l.startsWith("probestream: train demo-sim/")))
        .hasSize(9)
        .anyMatch(
            l ->
                l.startsWith("probestream: train demo-sim/seed-3 step 300 loss ")
                    && l.contains(" accuracy 1.0000 ")
                    && l.contains("(checkpoint 3/3, "));
  }

  @Test
  void publishFollowsTheTopicContract(KafkaTestCluster kafka) throws Exception {
    String prefix = kafka.topicPrefix();
    kafka.createTopics(prefix + "checkpoints", prefix + "blobs", prefix + "batches");
    String b = kafka.bootstrapServers();
    Path model = EXAMPLE.resolve("model.onnx");
    CliTest.Run ref =
        CliTest.run(
            "publish",
            "reference",
            "--bootstrap-servers",
            b,
            "--topic-prefix",
            prefix,
            "--experiment",
            "e1",
            EXAMPLE.resolve("reference-0.safetensors").toString(),
            EXAMPLE.resolve("reference-1.safetensors").toString());
    assertThat(ref.code()).as(ref.err()).isEqualTo(0);
    CliTest.Run ckpt =
        CliTest.run(
            "publish",
            "checkpoint",
            "--bootstrap-servers",
            b,
            "--topic-prefix",
            prefix,
            "--experiment",
            "e1",
            "--run",
            "seed-1",
            "--step",
            "7",
            "--model",
            model.toString(),
            "--layer",
            "fc2=h2",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "--chunk-bytes",
            "4096",
            "--metric",
            "loss=0.25");
    assertThat(ckpt.code()).as(ckpt.err()).isEqualTo(0);

    byte[] bytes = Files.readAllBytes(model);
    String sha = ProbeResult.sha256Hex(bytes);
    int chunks = (bytes.length + 4095) / 4096;
    List<ConsumerRecord<byte[], byte[]>> blobs =
        kafka.readAll(prefix + "blobs", chunks, Duration.ofSeconds(20));
    assertThat(blobs).hasSize(chunks);
    java.io.ByteArrayOutputStream joined = new java.io.ByteArrayOutputStream();
    for (int i = 0; i < chunks; i++) {
      ConsumerRecord<byte[], byte[]> c = blobs.get(i);
      assertThat(key(c)).isEqualTo("e1");
      assertThat(header(c, Headers.TYPE)).isEqualTo(Headers.TYPE_BLOB);
      assertThat(header(c, Headers.SPECVERSION)).isEqualTo("1.0");
      assertThat(header(c, Headers.BLOB_SHA256)).isEqualTo(sha);
      assertThat(header(c, Headers.BLOB_INDEX)).isEqualTo(Integer.toString(i));
      assertThat(header(c, Headers.BLOB_COUNT)).isEqualTo(Integer.toString(chunks));
      assertThat(header(c, Headers.BLOB_SIZE)).isEqualTo(Integer.toString(bytes.length));
      joined.write(c.value());
    }
    assertThat(joined.toByteArray()).isEqualTo(bytes);

    List<ConsumerRecord<byte[], byte[]>> batches =
        kafka.readAll(prefix + "batches", 2, Duration.ofSeconds(20));
    assertThat(batches).hasSize(2);
    List<String> indexFinal = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : batches) {
      assertThat(header(r, Headers.EXPERIMENT)).isEqualTo("e1");
      assertThat(header(r, Headers.SPLIT)).isEqualTo("reference");
      indexFinal.add(header(r, Headers.BATCH_INDEX) + ":" + header(r, Headers.FINAL));
    }
    assertThat(indexFinal).containsExactly("0:null", "1:true");
    assertThat(batches.get(1).value())
        .isEqualTo(Files.readAllBytes(EXAMPLE.resolve("reference-1.safetensors")));

    List<ConsumerRecord<byte[], byte[]>> manifests =
        kafka.readAll(prefix + "checkpoints", 1, Duration.ofSeconds(20));
    assertThat(manifests).hasSize(1);
    assertThat(header(manifests.get(0), Headers.TYPE)).isEqualTo(Headers.TYPE_CHECKPOINT);
    JsonNode m = JSON.readTree(manifests.get(0).value());
    assertThat(m)
        .isEqualTo(
            JSON.readTree(
                "{\"experiment\":\"e1\",\"run\":\"seed-1\",\"step\":7,\"metrics\":{\"loss\":0.25},"
                    + "\"model\":{\"blob\":{\"sha256\":\""
                    + sha
                    + "\",\"size\":"
                    + bytes.length
                    + ",\"chunks\":"
                    + chunks
                    + "}},\"input\":\"input\",\"layers\":{\"fc2\":\"h2\"},"
                    + "\"logits\":\"logits\",\"classifier_weight\":\"classifier.weight\",\"classes\":5}"));
  }

  private static String key(ConsumerRecord<byte[], byte[]> r) {
    return new String(r.key(), StandardCharsets.UTF_8);
  }

  private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    var h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }
}
