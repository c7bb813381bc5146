package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.utils.Utils;

/**
 * The process-level fault tests' input: a few experiments whose keys land on distinct partitions,
 * each with the reference set and the five checkpoint models of examples/multiplicity (ReLU MLP
 * 20-32-5, layer {@code h1}), and what an uninterrupted evaluation gives for them, computed by the
 * offline CLI ({@code probestream probe}, the service's code path) in this JVM.
 */
final class ChaosWorkload {
  static final Path DIR = Path.of("../../examples/multiplicity");

  /** The five models in canonical (step, run) order: {run, step, file}. */
  static final String[][] MODELS = {
    {"seed-1", "100"}, {"seed-1", "300"}, {"seed-1", "800"}, {"seed-2", "800"}, {"seed-3", "800"}
  };

  private static final ObjectMapper JSON = new ObjectMapper();

  /** A checkpoint of the stream: experiment, run, step, and which of {@link #MODELS} it is. */
  record Checkpoint(String experiment, String run, long step, int model) {
    /** (experiment, run, step, probe, layer) of its per-layer result. */
    String key(String probe, String layer) {
      return experiment + "|" + run + "|" + step + "|" + probe + "|" + layer;
    }
  }

  final List<String> experiments;
  final byte[][] models = new byte[MODELS.length][];
  final CheckpointManifest.Blob[] blobs = new CheckpointManifest.Blob[MODELS.length];
  final List<byte[]> reference;

  /**
   * @param experiments how many; their names are chosen so that with {@code partitions} partitions
   *     they hash to distinct partitions (round robin), as the service's producers key by
   *     experiment
   */
  ChaosWorkload(String prefix, int experiments, int partitions) throws IOException {
    List<String> names = new ArrayList<>();
    for (int i = 0; names.size() < experiments; i++) {
      String name = prefix + i;
      int wanted = names.size() % partitions;
      if (partitionOf(name, partitions) == wanted) {
        names.add(name);
      }
    }
    this.experiments = List.copyOf(names);
    for (int m = 0; m < MODELS.length; m++) {
      models[m] = Files.readAllBytes(modelFile(m));
      blobs[m] =
          new CheckpointManifest.Blob(
              ProbeResult.sha256Hex(models[m]), models[m].length, 1); // one chunk of 1 MiB
    }
    reference =
        List.of(
            Files.readAllBytes(DIR.resolve("reference-0.safetensors")),
            Files.readAllBytes(DIR.resolve("reference-1.safetensors")));
  }

  /** The partition the default partitioner picks for an experiment key. */
  static int partitionOf(String experiment, int partitions) {
    return Utils.toPositive(Utils.murmur2(experiment.getBytes(StandardCharsets.UTF_8)))
        % partitions;
  }

  static Path modelFile(int m) {
    return DIR.resolve(MODELS[m][0] + "-step" + MODELS[m][1] + ".onnx");
  }

  /** Reference sets and model blobs of every experiment. */
  void publishInputs(Publisher p) throws Exception {
    for (String e : experiments) {
      p.reference(e, reference);
      for (byte[] model : models) {
        p.blob(e, model, 1 << 20);
      }
    }
  }

  static CheckpointManifest manifest(Checkpoint c, CheckpointManifest.Blob blob) {
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("h1", "h1");
    return new CheckpointManifest(
        c.experiment(),
        c.run(),
        c.step(),
        null,
        Map.of(),
        blob,
        "input",
        layers,
        "logits",
        "classifier.weight",
        5);
  }

  void publish(Publisher p, Checkpoint c) throws Exception {
    p.checkpoint(manifest(c, blobs[c.model()]));
  }

  /**
   * A long stream for neural_collapse only: per experiment, run {@code seed-1} at steps 1..{@code
   * perExperiment} cycling through the five models, interleaved across experiments (round r holds
   * step r of every experiment).
   */
  List<Checkpoint> stream(int perExperiment) {
    List<Checkpoint> out = new ArrayList<>();
    for (int s = 1; s <= perExperiment; s++) {
      for (String e : experiments) {
        out.add(new Checkpoint(e, "seed-1", s, (s - 1) % MODELS.length));
      }
    }
    return out;
  }

  /** The five checkpoints of examples/multiplicity per experiment, in canonical order. */
  List<Checkpoint> multiplicityStream() {
    List<Checkpoint> out = new ArrayList<>();
    for (int m = 0; m < MODELS.length; m++) {
      for (String e : experiments) {
        out.add(new Checkpoint(e, MODELS[m][0], Long.parseLong(MODELS[m][1]), m));
      }
    }
    return out;
  }

  /**
   * The offline CLI's neural_collapse result for model {@code m} as experiment/run/step: its id and
   * metrics are what the service must publish for that checkpoint.
   */
  static JsonNode offlineNeuralCollapse(Checkpoint c) throws IOException {
    CliTest.Run r =
        CliTest.run(
            "probe",
            "-q",
            "--model",
            modelFile(c.model()).toString(),
            "--data",
            DIR.resolve("reference-0.safetensors").toString(),
            "--data",
            DIR.resolve("reference-1.safetensors").toString(),
            "--layer",
            "h1=h1",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "--probe",
            "neural_collapse",
            "--experiment",
            c.experiment(),
            "--run",
            c.run(),
            "--step",
            Long.toString(c.step()));
    assertThat(r.code()).as(r.err()).isZero();
    List<String> lines = r.out().lines().toList();
    assertThat(lines).as(r.out()).hasSize(1);
    return JSON.readTree(lines.get(0));
  }

  /**
   * Expected neural_collapse results by id. The CLI runs once per model; the other checkpoints of
   * the same model get the same metrics and an id recomputed from their identifying fields, the way
   * {@link ProbeResult#id} defines it (checked against the CLI's own id for the first).
   */
  static Map<String, JsonNode> expectedNeuralCollapse(List<Checkpoint> checkpoints)
      throws IOException {
    Map<Integer, JsonNode> byModel = new LinkedHashMap<>();
    Map<String, JsonNode> out = new LinkedHashMap<>();
    for (Checkpoint c : checkpoints) {
      JsonNode cli = byModel.get(c.model());
      if (cli == null) {
        cli = offlineNeuralCollapse(c);
        byModel.put(c.model(), cli);
      }
      String id = idOf(cli, c);
      if (cli.get("experiment").asText().equals(c.experiment())
          && cli.get("step").asLong() == c.step()) {
        assertThat(id)
            .as("id recomputed from the CLI's own fields")
            .isEqualTo(cli.get("id").asText());
      }
      com.fasterxml.jackson.databind.node.ObjectNode want = cli.deepCopy();
      want.put("id", id);
      want.put("experiment", c.experiment());
      want.put("run", c.run());
      want.put("step", c.step());
      assertThat(out.put(id, want)).as("two checkpoints with one id: %s", c).isNull();
    }
    return out;
  }

  @SuppressWarnings("unchecked")
  private static String idOf(JsonNode cli, Checkpoint c) {
    Map<String, Object> params = JSON.convertValue(cli.get("params"), Map.class);
    return ProbeResult.id(
        c.experiment(),
        c.run(),
        c.step(),
        cli.get("model_sha256").asText(),
        cli.get("probe").asText(),
        cli.get("layer").asText(),
        cli.get("split").asText(),
        cli.get("reference_sha256").asText(),
        params);
  }

  /** The offline CLI's predictive_multiplicity result over all five models, for experiment e. */
  static JsonNode offlineMultiplicity(String experiment) throws IOException {
    List<String> args = new ArrayList<>(List.of("probe", "-q"));
    for (int m = 0; m < MODELS.length; m++) {
      args.add("--model");
      args.add(MODELS[m][0] + "@" + MODELS[m][1] + "=" + modelFile(m));
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
            "--experiment",
            experiment));
    CliTest.Run r = CliTest.run(args.toArray(new String[0]));
    assertThat(r.code()).as(r.err()).isZero();
    List<String> lines = r.out().lines().toList();
    assertThat(lines).as(r.out()).hasSize(1);
    return JSON.readTree(lines.get(0));
  }

  /** Every metric of {@code want} in {@code got}, within {@code tolerance} × max(1, |want|). */
  static void assertSameMetrics(JsonNode got, JsonNode want, double tolerance, String what) {
    List<String> wantKeys = new ArrayList<>();
    want.get("metrics").fieldNames().forEachRemaining(wantKeys::add);
    List<String> gotKeys = new ArrayList<>();
    got.get("metrics").fieldNames().forEachRemaining(gotKeys::add);
    assertThat(gotKeys).as("%s: metric names", what).containsExactlyInAnyOrderElementsOf(wantKeys);
    for (String k : wantKeys) {
      JsonNode w = want.get("metrics").get(k);
      JsonNode g = got.get("metrics").get(k);
      if (w.isNull()) {
        assertThat(g.isNull()).as("%s: %s is null", what, k).isTrue();
      } else {
        assertThat(g.asDouble())
            .as("%s: %s", what, k)
            .isCloseTo(
                w.asDouble(),
                org.assertj.core.api.Assertions.within(
                    tolerance * Math.max(1, Math.abs(w.asDouble()))));
      }
    }
  }

  static Topics topics(String prefix) {
    return new Topics(prefix);
  }
}
