package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.NcbModel;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code probestream} end to end: files in, JSON lines or a table out, exit codes. */
class CliTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path EXAMPLE = Path.of("../../examples/mlp");

  @TempDir Path dir;

  /** Exit code, stdout and stderr of one run. */
  record Run(int code, String out, String err) {
    List<JsonNode> lines() throws IOException {
      List<JsonNode> nodes = new ArrayList<>();
      for (String line : out.split("\n")) {
        if (!line.isBlank()) {
          nodes.add(JSON.readTree(line));
        }
      }
      return nodes;
    }
  }

  /**
   * The configuration the CLI's service ITs run with: the embedded broker, an ephemeral HTTP port
   * on 127.0.0.1, {@code dataDir}, one worker, and the given extra keys (name, value pairs).
   */
  static io.probestream.contracts.config.ProbestreamConfig embeddedConfig(
      java.nio.file.Path dataDir, String... extra) {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.embedded", "true");
    flags.put("http.port", "0");
    flags.put("http.host", "127.0.0.1");
    flags.put("data-dir", dataDir.toString());
    flags.put("workers.threads", "1");
    for (int i = 0; i < extra.length; i += 2) {
      flags.put(extra[i], extra[i + 1]);
    }
    return io.probestream.contracts.config.ProbestreamConfig.of(flags);
  }

  static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void bundledExampleMatchesTheIndependentNumpyReference() throws IOException {
    Run r =
        run(
            "probe",
            "-q",
            "--model",
            EXAMPLE.resolve("model.onnx").toString(),
            "--data",
            EXAMPLE.resolve("reference-0.safetensors").toString(),
            "--data",
            EXAMPLE.resolve("reference-1.safetensors").toString(),
            "--layer",
            "h1=h1",
            "--layer",
            "h2=h2",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    assertThat(r.err()).isEmpty();
    // expected.json: loadtests/reference/nc_reference.py, numpy float64 with the textbook
    // formulas (full Σ_W, pseudo-inverse) on numpy's own float32 forward pass. The features of
    // the two runtimes differ by float32 rounding, which moves the metrics by ~1e-8 relative.
    JsonNode expected = JSON.readTree(EXAMPLE.resolve("expected.json").toFile()).get("layers");
    List<JsonNode> results = r.lines();
    assertThat(results).hasSize(2);
    for (JsonNode result : results) {
      String layer = result.get("layer").asText();
      JsonNode want = expected.get(layer);
      JsonNode got = result.get("metrics");
      assertThat(fieldNames(got)).as(layer).isEqualTo(fieldNames(want));
      for (Iterator<String> it = want.fieldNames(); it.hasNext(); ) {
        String k = it.next();
        double v = want.get(k).asDouble();
        assertThat(got.get(k).asDouble())
            .as(layer + "." + k)
            .isCloseTo(v, within(1e-6 * Math.max(1e-3, Math.abs(v))));
      }
    }
  }

  @Test
  void generatedMlpGivesTheFullEnvelope() throws IOException {
    Mlp mlp = Mlp.random(5, 8, 12, 6, 3);
    Path model = dir.resolve("mlp.onnx");
    Files.write(model, mlp.onnx());
    Random rnd = new Random(9);
    List<Path> files = new ArrayList<>();
    List<float[]> xs = new ArrayList<>();
    List<Integer> ys = new ArrayList<>();
    for (int b = 0; b < 3; b++) {
      int rows = 30 + b;
      float[] x = new float[rows * 8];
      long[] y = new long[rows];
      for (int i = 0; i < rows; i++) {
        y[i] = rnd.nextInt(3);
        float[] row = new float[8];
        for (int j = 0; j < 8; j++) {
          row[j] = (float) (rnd.nextGaussian() + (j == y[i] ? 3 : 0));
          x[i * 8 + j] = row[j];
        }
        xs.add(row);
        ys.add((int) y[i]);
      }
      Map<String, Object> t = new LinkedHashMap<>();
      t.put("input", x);
      t.put("labels", y);
      Path p = dir.resolve("ref-" + b + ".safetensors");
      Files.write(
          p,
          Safetensors.write(t, Map.of("input", new long[] {rows, 8}, "labels", new long[] {rows})));
      files.add(p);
    }
    List<String> args =
        new ArrayList<>(
            List.of(
                "probe",
                "-q",
                "--model",
                model.toString(),
                "--layer",
                "h1=h1",
                "--layer",
                "h2=h2",
                "--logits",
                "logits",
                "--classifier-weight",
                "classifier.weight",
                "--experiment",
                "exp-1",
                "--run",
                "seed-3",
                "--step",
                "1200",
                "--batch-size",
                "7"));
    for (Path f : files) {
      args.add("--data");
      args.add(f.toString());
    }
    Run r = run(args.toArray(new String[0]));
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    List<JsonNode> results = r.lines();
    assertThat(results).hasSize(2);

    String modelSha = ProbeResult.sha256Hex(Files.readAllBytes(model));
    StringBuilder all = new StringBuilder();
    java.io.ByteArrayOutputStream concat = new java.io.ByteArrayOutputStream();
    for (Path f : files) {
      concat.write(Files.readAllBytes(f));
    }
    String referenceSha = ProbeResult.sha256Hex(concat.toByteArray());
    for (JsonNode o : results) {
      all.append(o.get("layer").asText()).append(' ');
      assertThat(fieldNames(o))
          .containsExactly(
              "id",
              "experiment",
              "run",
              "step",
              "model_sha256",
              "reference_sha256",
              "probe",
              "layer",
              "split",
              "samples",
              "metrics",
              "params",
              "device",
              "computed_at",
              "latency_ms");
      assertThat(o.get("experiment").asText()).isEqualTo("exp-1");
      assertThat(o.get("run").asText()).isEqualTo("seed-3");
      assertThat(o.get("step").asLong()).isEqualTo(1200);
      assertThat(o.get("model_sha256").asText()).isEqualTo(modelSha);
      assertThat(o.get("reference_sha256").asText()).isEqualTo(referenceSha);
      assertThat(o.get("split").asText()).isEqualTo("reference");
      assertThat(o.get("samples").asLong()).isEqualTo(93);
      assertThat(o.get("device").asText()).isEqualTo("cpu");
      // The id is sha256 of the identifying fields with params as sorted JSON (DESIGN.md §3).
      String key =
          "exp-1|seed-3|1200|"
              + modelSha
              + "|neural_collapse|"
              + o.get("layer").asText()
              + "|reference|"
              + referenceSha
              + "|{\"reduction\":\"none\"}";
      assertThat(o.get("id").asText())
          .isEqualTo(ProbeResult.sha256Hex(key.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }
    assertThat(all.toString()).isEqualTo("h1 h2 ");

    // nc1_trace = Σ_c V_c / Σ_c ‖μ_c − μ_G‖², computed here from a plain-Java forward pass.
    JsonNode h2 = results.get(1).get("metrics");
    assertThat(h2.get("nc1_trace").asDouble())
        .isCloseTo(traceRatio(mlp, xs, ys, 6), within(1e-5 * h2.get("nc1_trace").asDouble()));
    assertThat(h2.has("nc3_self_duality")).isTrue();
    assertThat(results.get(0).get("metrics").has("nc3_self_duality")).isFalse();
  }

  private static double traceRatio(Mlp mlp, List<float[]> xs, List<Integer> ys, int d) {
    Map<Integer, List<double[]>> byClass = new TreeMap<>();
    for (int i = 0; i < xs.size(); i++) {
      byClass.computeIfAbsent(ys.get(i), k -> new ArrayList<>()).add(mlp.forward(xs.get(i))[1]);
    }
    List<double[]> means = new ArrayList<>();
    double within = 0;
    for (List<double[]> rows : byClass.values()) {
      double[] mu = new double[d];
      for (double[] r : rows) {
        for (int j = 0; j < d; j++) {
          mu[j] += r[j] / rows.size();
        }
      }
      double v = 0;
      for (double[] r : rows) {
        for (int j = 0; j < d; j++) {
          v += (r[j] - mu[j]) * (r[j] - mu[j]) / rows.size();
        }
      }
      within += v;
      means.add(mu);
    }
    double between = 0;
    for (int j = 0; j < d; j++) {
      double g = 0;
      for (double[] mu : means) {
        g += mu[j] / means.size();
      }
      for (double[] mu : means) {
        between += (mu[j] - g) * (mu[j] - g);
      }
    }
    return within / between;
  }

  /** NC-B's model and data as files: h = Identity(input), logits = Gemm(h, W, b). */
  private List<String> ncbArgs() throws IOException {
    Path model = dir.resolve("ncb.onnx");
    Files.write(model, NcbModel.onnx());
    Path data = dir.resolve("ncb.safetensors");
    Map<String, Object> t = new LinkedHashMap<>();
    t.put("input", new float[] {2, 0, 4, 0, 0, 2, 0, 4, 0, 3, -1, -1, -3, -3});
    t.put("labels", new long[] {0, 0, 1, 1, 1, 2, 2});
    Files.write(
        data, Safetensors.write(t, Map.of("input", new long[] {7, 2}, "labels", new long[] {7})));
    return new ArrayList<>(
        List.of(
            "probe",
            "-q",
            "--model",
            model.toString(),
            "--data",
            data.toString(),
            "--layer",
            "h=h",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight"));
  }

  @Test
  void tableShowsEveryMetricOfNcb() throws IOException {
    List<String> args = ncbArgs();
    args.addAll(List.of("--format", "table", "--run", "r1", "--step", "3"));
    Run r = run(args.toArray(new String[0]));
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    String n = System.lineSeparator();
    assertThat(r.out())
        .isEqualTo(
            "neural_collapse  experiment=offline run=r1 step=3 split=reference device=cpu"
                + n
                + "metric                     h"
                + n
                + "samples                    7"
                + n
                + "classes_seen               3"
                + n
                + "nonfinite                  0"
                + n
                + "nc1               0.08868733"
                + n
                + "nc1_trace          0.1447368"
                + n
                + "nc2_equinorm       0.1222789"
                + n
                + "nc2_equiangular    0.1605758"
                + n
                + "nc2_etf_distance   0.2808407"
                + n
                + "cdnv              0.04799915"
                + n
                + "nc3_self_duality  0.01320146"
                + n
                + "nc4_ncc_mismatch   0.1428571"
                + n
                + "sb_rank                    2"
                + n);
  }

  @Test
  void usageErrorsExitWithTwo() throws IOException {
    assertThat(run().code()).isEqualTo(Main.USAGE);
    Run missing = run("probe", "--logits", "z");
    assertThat(missing.code()).isEqualTo(Main.USAGE);
    assertThat(missing.err()).startsWith("probestream: Missing required options:");

    List<String> args = ncbArgs();
    args.addAll(List.of("--probe", "predictive_multiplicity", "--scope", "seed"));
    Run probe = run(args.toArray(new String[0]));
    assertThat(probe.code()).isEqualTo(Main.USAGE);
    assertThat(probe.err())
        .isEqualTo("probestream: error: --scope seed: expected experiment or run\n");
    List<String> badStep = ncbArgs();
    badStep.set(
        badStep.indexOf("--model") + 1, "r@x=" + badStep.get(badStep.indexOf("--model") + 1));
    Run step = run(badStep.toArray(new String[0]));
    assertThat(step.code()).isEqualTo(Main.USAGE);
    assertThat(step.err()).contains("STEP in RUN@STEP=FILE must be an integer");
    List<String> unknown = ncbArgs();
    unknown.addAll(List.of("--probe", "complexity"));
    Run typo = run(unknown.toArray(new String[0]));
    assertThat(typo.code()).isEqualTo(Main.USAGE);
    assertThat(typo.err())
        .isEqualTo(
            "probestream: error: --probe complexity: unknown probe; choose from"
                + " [neural_collapse, feature_complexity, predictive_multiplicity] or all\n");
    List<String> beta = ncbArgs();
    beta.addAll(List.of("--probe", "all", "--ifm-beta", "-1"));
    Run badBeta = run(beta.toArray(new String[0]));
    assertThat(badBeta.code()).isEqualTo(Main.USAGE);
    assertThat(badBeta.err()).contains("beta = -1.0: must be a finite number ≥ 0");

    Run noFile =
        run(
            "probe",
            "--model",
            dir.resolve("nope.onnx").toString(),
            "--data",
            "x",
            "--layer",
            "h=h",
            "--logits",
            "logits");
    assertThat(noFile.code()).isEqualTo(Main.USAGE);
    assertThat(noFile.err())
        .isEqualTo("probestream: error: --model " + dir.resolve("nope.onnx") + ": no such file\n");
  }

  @Test
  void badDataFailsWithOneLineAndExitOne() throws IOException {
    List<String> args = ncbArgs();
    Path bad = dir.resolve("bad.safetensors");
    Files.write(bad, new byte[] {5, 0, 0, 0, 0, 0, 0, 0, '{', '}'});
    args.set(args.indexOf("--data") + 1, bad.toString());
    Run r = run(args.toArray(new String[0]));
    assertThat(r.code()).isEqualTo(Main.FAILURE);
    assertThat(r.err())
        .isEqualTo(
            "probestream: error: "
                + bad
                + ": safetensors header length is 5 bytes but only 2 bytes follow the length field\n");
    assertThat(r.out()).isEmpty();
  }

  @Test
  void unknownLayerFailsNamingTheCandidates() throws IOException {
    List<String> args = ncbArgs();
    args.set(args.indexOf("h=h"), "h=fc9");
    Run r = run(args.toArray(new String[0]));
    assertThat(r.code()).isEqualTo(Main.FAILURE);
    assertThat(r.err())
        .isEqualTo(
            "probestream: error: unknown tensor 'fc9'; the model's node outputs are [h, logits]\n");
  }

  @Test
  void versionAndHelpWork() {
    Run v = run("--version");
    assertThat(v.code()).isEqualTo(0);
    assertThat(v.out()).startsWith("probestream ");
    Run h = run("probe", "--help");
    assertThat(h.code()).isEqualTo(0);
    assertThat(h.out()).startsWith("Usage: probestream probe ");
    assertThat(run("inspect", "--help").code()).isEqualTo(0);
  }

  @Test
  void inspectListsTensorsAndClassifierCandidates() throws IOException {
    List<String> args = ncbArgs();
    Run r = run("inspect", args.get(args.indexOf("--model") + 1));
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    // Shapes are ONNX Runtime's inference; the classifier is the Gemm that makes the logits.
    assertThat(r.out())
        .isEqualTo(
            String.join(
                System.lineSeparator(),
                "inputs:",
                "  input  input  float    [N, 2]",
                "outputs:",
                "  h       Identity  float    [N, 2]",
                "  logits  Gemm      float    [N, 3]",
                "intermediate tensors (any can be a --layer):",
                "initializers:",
                "  classifier.weight  initializer  float    [3, 2]",
                "  classifier.bias    initializer  float    [3]",
                "classifier: weight classifier.weight, fed by h",
                "layers auto: h",
                ""));
  }

  private static List<String> fieldNames(JsonNode o) {
    List<String> names = new ArrayList<>();
    o.fieldNames().forEachRemaining(names::add);
    return names;
  }

  @Test
  void layersAutoPicksTheHiddenActivationsAndSaysSo() throws IOException {
    List<String> args = ncbArgs();
    int i = args.indexOf("--layer");
    args.remove(i + 1);
    args.remove(i);
    args.remove("-q");
    args.addAll(List.of("--layers", "auto"));
    Run r = run(args.toArray(new String[0]));
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    // NC-B's model has no activation; the classifier's input h is what auto leaves.
    assertThat(r.err()).startsWith("probestream: layers (auto): h\n");
    assertThat(r.lines()).hasSize(1);
    assertThat(r.lines().get(0).get("layer").asText()).isEqualTo("h");
  }
}
