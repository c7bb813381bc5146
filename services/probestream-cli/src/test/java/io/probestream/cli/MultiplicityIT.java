package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.publish.Publisher;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code predictive_multiplicity} offline and through Kafka on examples/multiplicity (five
 * checkpoints of three runs, one outside ε): the CLI matches the independent numpy reference
 * (loadtests/reference/multiplicity_reference.py, a different capacity algorithm), and the service
 * publishes an updated result after every checkpoint, equal to the CLI on the checkpoints so far.
 */
class MultiplicityIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path DIR = Path.of("../../examples/multiplicity");
  private static final String[][] CHECKPOINTS = {
    {"seed-1", "100"}, {"seed-1", "300"}, {"seed-1", "800"}, {"seed-2", "800"}, {"seed-3", "800"}
  };

  @TempDir Path dataDir;

  private static Path file(String[] cp) {
    return DIR.resolve(cp[0] + "-step" + cp[1] + ".onnx");
  }

  /** The CLI on the first {@code count} checkpoints; its predictive_multiplicity results. */
  private static List<JsonNode> offline(int count, String... extra) throws Exception {
    List<String> args = new ArrayList<>(List.of("probe"));
    for (int i = 0; i < count; i++) {
      args.add("--model");
      args.add(CHECKPOINTS[i][0] + "@" + CHECKPOINTS[i][1] + "=" + file(CHECKPOINTS[i]));
    }
    args.addAll(
        List.of(
            "--data",
            DIR.resolve("reference-0.safetensors").toString(),
            "--data",
            DIR.resolve("reference-1.safetensors").toString(),
            "--logits",
            "logits",
            "--probe",
            "predictive_multiplicity",
            "-q"));
    args.addAll(List.of(extra));
    CliTest.Run r = CliTest.run(args.toArray(new String[0]));
    assertThat(r.code()).as(r.err()).isZero();
    List<JsonNode> out = new ArrayList<>();
    for (String line : r.out().split("\n")) {
      out.add(JSON.readTree(line));
    }
    return out;
  }

  /** Metrics within 1e-3 relative (counts exactly), members and baseline exactly. */
  private static void assertSameAsReference(JsonNode got, JsonNode want) {
    for (Iterator<String> k = want.get("metrics").fieldNames(); k.hasNext(); ) {
      String key = k.next();
      JsonNode e = want.get("metrics").get(key);
      JsonNode g = got.get("metrics").get(key);
      if (e.isIntegralNumber()) {
        assertThat(g.asDouble()).as(key).isEqualTo(e.asDouble());
      } else {
        assertThat(g.asDouble())
            .as(key)
            .isCloseTo(e.asDouble(), within(1e-3 * Math.abs(e.asDouble())));
      }
    }
    List<String> wantMembers = new ArrayList<>();
    want.get("members")
        .forEach(m -> wantMembers.add(m.get("run").asText() + "@" + m.get("step").asLong()));
    List<String> gotMembers = new ArrayList<>();
    got.get("members")
        .forEach(m -> gotMembers.add(m.get("run").asText() + "@" + m.get("step").asLong()));
    assertThat(gotMembers).isEqualTo(wantMembers);
    assertThat(got.get("baseline").asInt()).isEqualTo(want.get("baseline").asInt());
  }

  @Test
  void offlineMatchesTheNumpyReferenceInBothScopes() throws Exception {
    JsonNode want = JSON.readTree(DIR.resolve("expected-multiplicity.json").toFile());
    List<JsonNode> got = offline(5);
    assertThat(got).hasSize(1);
    assertThat(got.get(0).get("run").isNull()).isTrue();
    assertThat(got.get(0).get("step").asLong()).isEqualTo(800);
    assertSameAsReference(got.get(0), want);

    JsonNode runs =
        JSON.readTree(DIR.resolve("expected-multiplicity-run.json").toFile()).get("runs");
    List<JsonNode> perRun = offline(5, "--scope", "run", "--window", "2");
    assertThat(perRun)
        .extracting(r -> r.get("run").asText())
        .containsExactly("seed-1", "seed-2", "seed-3");
    for (JsonNode r : perRun) {
      assertSameAsReference(r, runs.get(r.get("run").asText()));
      assertThat(r.get("params").get("window").asInt()).isEqualTo(2);
    }
  }

  @Test
  void throughKafkaEachCheckpointUpdatesTheResultAsTheCliWould() throws Exception {
    ProbestreamConfig config =
        CliTest.embeddedConfig(dataDir, "probes.enabled", "predictive_multiplicity");
    List<ProbeResult> seen = new CopyOnWriteArrayList<>();
    try (ServiceRuntime rt = ServiceRuntime.start(config, new PrintWriter(new StringWriter()));
        Publisher p =
            new Publisher(rt.bootstrap, config.topicNames(), 16 << 20, "multiplicity-it")) {
      rt.service.results().addListener(seen::add);
      p.reference(
          "mx",
          List.of(
              Files.readAllBytes(DIR.resolve("reference-0.safetensors")),
              Files.readAllBytes(DIR.resolve("reference-1.safetensors"))));
      for (int i = 0; i < CHECKPOINTS.length; i++) {
        String[] cp = CHECKPOINTS[i];
        CheckpointManifest.Blob blob = p.blob("mx", Files.readAllBytes(file(cp)), 1 << 20);
        p.checkpoint(
            new CheckpointManifest(
                "mx",
                cp[0],
                Long.parseLong(cp[1]),
                null,
                Map.of(),
                blob,
                "input",
                Map.of(),
                "logits",
                null,
                5));
        int expected = i + 1;
        await().atMost(Duration.ofSeconds(60)).until(() -> seen.size() == expected);
        ProbeResult r = seen.get(i);
        assertThat(r.probe()).isEqualTo("predictive_multiplicity");
        assertThat(r.run()).isNull();
        assertThat(r.step()).isEqualTo(Long.parseLong(cp[1]));
        assertThat(io.probestream.service.schema.Schemas.get().validateResult(r.toJson()))
            .as(r.toJson())
            .isEmpty();
        JsonNode live = JSON.readTree(r.toJson());
        JsonNode cli = offline(i + 1).get(0);
        // Same code on the same logits: equal up to the order of float additions.
        for (Iterator<String> k = cli.get("metrics").fieldNames(); k.hasNext(); ) {
          String key = k.next();
          assertThat(live.get("metrics").get(key).asDouble())
              .as("after %s@%s: %s", cp[0], cp[1], key)
              .isCloseTo(cli.get("metrics").get(key).asDouble(), within(1e-12));
        }
        assertThat(live.get("members")).isEqualTo(cli.get("members"));
        assertThat(live.get("baseline")).isEqualTo(cli.get("baseline"));
      }
      assertSameAsReference(
          JSON.readTree(seen.get(4).toJson()),
          JSON.readTree(DIR.resolve("expected-multiplicity.json").toFile()));
    }
  }
}
