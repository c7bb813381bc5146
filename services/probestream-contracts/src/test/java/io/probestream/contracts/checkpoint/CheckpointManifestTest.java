package io.probestream.contracts.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.probestream.contracts.checkpoint.CheckpointManifest.Blob;
import io.probestream.contracts.checkpoint.CheckpointManifest.Uri;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class CheckpointManifestTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String SHA = "0123456789abcdef".repeat(4);

  private static final String FULL =
      """
      {"experiment": "mnist-mlp", "run": "seed-3", "step": 1200, "epoch": 4,
       "metrics": {"loss": 0.25, "accuracy": 0.9, "val_loss": 1},
       "model": {"blob": {"sha256": "%s", "size": 123456, "chunks": 3}},
       "input": "input", "layers": {"fc1": "h1", "fc2": "h2"}, "logits": "logits",
       "classifier_weight": "classifier.weight", "classes": 10}
      """
          .formatted(SHA);

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /** The full manifest as a tree, changed by {@code edit}, as bytes. */
  private static byte[] edited(Consumer<ObjectNode> edit) {
    try {
      ObjectNode root = (ObjectNode) JSON.readTree(FULL);
      edit.accept(root);
      return JSON.writeValueAsBytes(root);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static ObjectNode blob(ObjectNode root) {
    return (ObjectNode) root.get("model").get("blob");
  }

  @Test
  void parsesAFullBlobManifestFieldByField() {
    CheckpointManifest m = CheckpointManifest.parse(utf8(FULL));

    assertThat(m.experiment()).isEqualTo("mnist-mlp");
    assertThat(m.run()).isEqualTo("seed-3");
    assertThat(m.step()).isEqualTo(1200L);
    assertThat(m.epoch()).isEqualTo(4L);
    assertThat(m.metrics())
        .containsExactly(
            Map.entry("loss", 0.25), Map.entry("accuracy", 0.9), Map.entry("val_loss", 1.0));
    assertThat(m.model()).isEqualTo(new Blob(SHA, 123456, 3));
    assertThat(m.input()).isEqualTo("input");
    assertThat(m.layers()).containsExactly(Map.entry("fc1", "h1"), Map.entry("fc2", "h2"));
    assertThat(m.logits()).isEqualTo("logits");
    assertThat(m.classifierWeight()).isEqualTo("classifier.weight");
    assertThat(m.classes()).isEqualTo(10);

    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("loss", 0.25);
    metrics.put("accuracy", 0.9);
    metrics.put("val_loss", 1.0);
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("fc1", "h1");
    layers.put("fc2", "h2");
    assertThat(m)
        .isEqualTo(
            new CheckpointManifest(
                "mnist-mlp",
                "seed-3",
                1200,
                4L,
                metrics,
                new Blob(SHA, 123456, 3),
                "input",
                layers,
                "logits",
                "classifier.weight",
                10));
  }

  @Test
  void parsesAUriManifestWithTheOptionalFieldsLeftOut() {
    String json =
        """
        {"experiment": "e", "run": "r", "step": 0, "model": {"uri": "file:///models/a.onnx"},
         "input": "x", "logits": "y", "classes": 1}
        """;

    CheckpointManifest m = CheckpointManifest.parse(utf8(json));

    assertThat(m)
        .isEqualTo(
            new CheckpointManifest(
                "e",
                "r",
                0,
                null,
                Map.of(),
                new Uri("file:///models/a.onnx"),
                "x",
                Map.of(),
                "y",
                null,
                1));
  }

  @Test
  void nullOptionalFieldsAreAbsentOnesAndEmptyLayersAreAllowed() {
    CheckpointManifest m =
        CheckpointManifest.parse(
            edited(
                r -> {
                  r.putNull("epoch");
                  r.putNull("metrics");
                  r.putNull("classifier_weight");
                  r.putObject("layers");
                }));

    assertThat(m.epoch()).isNull();
    assertThat(m.metrics()).isEmpty();
    assertThat(m.classifierWeight()).isNull();
    assertThat(m.layers()).isEmpty();
  }

  @Test
  void classesMayBeTheMaximum() {
    assertThat(CheckpointManifest.parse(edited(r -> r.put("classes", 100_000))).classes())
        .isEqualTo(100_000);
  }

  @Test
  void theMapsAreReadOnlyCopies() {
    Map<String, String> layers = new LinkedHashMap<>();
    layers.put("fc1", "h1");
    CheckpointManifest m =
        new CheckpointManifest(
            "e", "r", 1, null, Map.of(), new Uri("u"), "x", layers, "y", null, 2);
    layers.put("fc2", "h2");

    assertThat(m.layers()).containsExactly(Map.entry("fc1", "h1"));
    assertThatThrownBy(() -> m.layers().put("fc3", "h3"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> m.metrics().put("loss", 1.0))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  static Stream<Arguments> invalid() {
    return Stream.of(
        Arguments.of("not an object: array", utf8("[1, 2]"), "manifest must be a JSON object"),
        Arguments.of("not an object: string", utf8("\"m\""), "manifest must be a JSON object"),
        Arguments.of("not an object: null", utf8("null"), "manifest must be a JSON object"),
        Arguments.of("empty bytes", new byte[0], "manifest must be a JSON object"),
        Arguments.of(
            "missing experiment",
            edited(r -> r.remove("experiment")),
            "manifest field 'experiment' is required"),
        Arguments.of(
            "null experiment",
            edited(r -> r.putNull("experiment")),
            "manifest field 'experiment' is required"),
        Arguments.of(
            "blank experiment",
            edited(r -> r.put("experiment", " ")),
            "experiment = \" \": must be a non-empty string"),
        Arguments.of(
            "experiment not a string",
            edited(r -> r.put("experiment", 7)),
            "experiment = 7: must be a string"),
        Arguments.of(
            "experiment of 201 characters",
            edited(r -> r.put("experiment", "e".repeat(201))),
            "experiment is 201 characters; at most 200"),
        Arguments.of(
            "missing run", edited(r -> r.remove("run")), "manifest field 'run' is required"),
        Arguments.of(
            "missing step", edited(r -> r.remove("step")), "manifest field 'step' is required"),
        Arguments.of(
            "negative step",
            edited(r -> r.put("step", -1)),
            "step = -1: must be a non-negative integer"),
        Arguments.of(
            "fractional step", edited(r -> r.put("step", 1.5)), "step = 1.5: must be an integer"),
        Arguments.of(
            "step as a string",
            edited(r -> r.put("step", "12")),
            "step = \"12\": must be an integer"),
        Arguments.of(
            "negative epoch",
            edited(r -> r.put("epoch", -2)),
            "epoch = -2: must be a non-negative integer"),
        Arguments.of(
            "missing input", edited(r -> r.remove("input")), "manifest field 'input' is required"),
        Arguments.of(
            "missing logits",
            edited(r -> r.remove("logits")),
            "manifest field 'logits' is required"),
        Arguments.of(
            "blank classifier_weight",
            edited(r -> r.put("classifier_weight", "")),
            "classifier_weight = \"\": must be a non-empty string"),
        Arguments.of(
            "missing classes",
            edited(r -> r.remove("classes")),
            "manifest field 'classes' is required"),
        Arguments.of(
            "classes 0", edited(r -> r.put("classes", 0)), "classes = 0: must be 1..100000"),
        Arguments.of(
            "classes 100001",
            edited(r -> r.put("classes", 100_001)),
            "classes = 100001: must be 1..100000"),
        Arguments.of(
            "classes above int range",
            edited(r -> r.put("classes", 10_000_000_000L)),
            "classes = 10000000000: must be 1..100000"),
        Arguments.of(
            "classes below int range",
            edited(r -> r.put("classes", -10_000_000_000L)),
            "classes = -10000000000: must be 1..100000"),
        Arguments.of(
            "missing model",
            edited(r -> r.remove("model")),
            "model must be an object: {\"blob\": {...}} or {\"uri\": ...}"),
        Arguments.of(
            "model not an object",
            edited(r -> r.put("model", "file:///a.onnx")),
            "model must be an object: {\"blob\": {...}} or {\"uri\": ...}"),
        Arguments.of(
            "both blob and uri",
            edited(r -> ((ObjectNode) r.get("model")).put("uri", "file:///a.onnx")),
            "model must have exactly one of 'blob' and 'uri', got {\"blob\":{\"sha256\":\""
                + SHA
                + "\",\"size\":123456,\"chunks\":3},\"uri\":\"file:///a.onnx\"}"),
        Arguments.of(
            "neither blob nor uri",
            edited(r -> r.putObject("model")),
            "model must have exactly one of 'blob' and 'uri', got {}"),
        Arguments.of(
            "blank uri",
            edited(r -> r.putObject("model").put("uri", " ")),
            "model.uri must be a non-empty string"),
        Arguments.of(
            "blob not an object",
            edited(r -> r.putObject("model").put("blob", SHA)),
            "model.blob must be an object with sha256, size, chunks"),
        Arguments.of(
            "sha256 in upper case",
            edited(r -> blob(r).put("sha256", SHA.toUpperCase(java.util.Locale.ROOT))),
            "model.blob.sha256 = \""
                + SHA.toUpperCase(java.util.Locale.ROOT)
                + "\": must be 64 lower-case hex digits"),
        Arguments.of(
            "sha256 of 63 digits",
            edited(r -> blob(r).put("sha256", SHA.substring(1))),
            "model.blob.sha256 = \"" + SHA.substring(1) + "\": must be 64 lower-case hex digits"),
        Arguments.of(
            "sha256 not hex",
            edited(r -> blob(r).put("sha256", "g".repeat(64))),
            "model.blob.sha256 = \"" + "g".repeat(64) + "\": must be 64 lower-case hex digits"),
        Arguments.of(
            "size 0",
            edited(r -> blob(r).put("size", 0)),
            "model.blob.size = 0: must be at least 1 byte"),
        Arguments.of(
            "chunks 0",
            edited(r -> blob(r).put("chunks", 0)),
            "model.blob.chunks = 0: must be at least 1"),
        Arguments.of(
            "chunks below int range",
            edited(r -> blob(r).put("chunks", -10_000_000_000L)),
            "model.blob.chunks = -10000000000: must be at least 1"),
        Arguments.of(
            "chunks above int range",
            edited(r -> blob(r).put("chunks", 10_000_000_000L)),
            "model.blob.chunks = 10000000000: must be at most 2147483647"),
        Arguments.of(
            "layers not an object",
            edited(r -> r.putArray("layers").add("h1")),
            "layers must be an object of layer name → tensor name, or \"auto\""),
        Arguments.of(
            "layer tensor not a string",
            edited(r -> ((ObjectNode) r.get("layers")).put("fc2", 2)),
            "layers.fc2 = 2: must be a tensor name"),
        Arguments.of(
            "layer tensor blank",
            edited(r -> ((ObjectNode) r.get("layers")).put("fc2", "")),
            "layers.fc2 = \"\": must be a non-empty string"),
        Arguments.of(
            "metrics not an object",
            edited(r -> r.put("metrics", 0.5)),
            "metrics must be an object of numbers, got 0.5"),
        Arguments.of(
            "metric not a number",
            edited(r -> ((ObjectNode) r.get("metrics")).put("loss", "low")),
            "metrics.loss = \"low\": must be a number"),
        Arguments.of(
            "metric null",
            edited(r -> ((ObjectNode) r.get("metrics")).putNull("loss")),
            "metrics.loss = null: must be a number"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalid")
  void rejectsInvalidManifestsNamingTheField(String fault, byte[] json, String message) {
    assertThatThrownBy(() -> CheckpointManifest.parse(json))
        .isInstanceOf(ManifestException.class)
        .hasMessage(message);
  }

  @Test
  void rejectsTextThatIsNotJson() {
    assertThatThrownBy(() -> CheckpointManifest.parse(utf8("{\"experiment\": ")))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("manifest is not valid JSON: ");
  }

  @Test
  void rejectsAnUnknownFieldNamingIt() {
    assertThatThrownBy(() -> CheckpointManifest.parse(edited(r -> r.put("stepz", 3))))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("unknown manifest field 'stepz'; fields are [")
        .hasMessageContaining("classifier_weight");
  }

  @Test
  void rejectsDuplicateKeysNamingTheKey() {
    String json = FULL.replace("\"step\": 1200,", "\"step\": 1200, \"step\": 1300,");
    assertThat(json).isNotEqualTo(FULL);

    assertThatThrownBy(() -> CheckpointManifest.parse(utf8(json)))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest is not valid JSON: Duplicate field 'step'");
  }

  @Test
  void theFullFixtureIsTheDesignExample() throws IOException {
    // Guards the fixture itself: every top-level field DESIGN.md §3 lists, and nothing else.
    JsonNode root = JSON.readTree(FULL);
    assertThat(root.fieldNames())
        .toIterable()
        .containsExactly(
            "experiment",
            "run",
            "step",
            "epoch",
            "metrics",
            "model",
            "input",
            "layers",
            "logits",
            "classifier_weight",
            "classes");
  }

  @Test
  void layersAutoParsesAndRoundTrips() {
    String json =
        "{\"experiment\":\"e\",\"run\":\"r\",\"step\":1,\"model\":{\"uri\":\"file:///m.onnx\"},"
            + "\"input\":\"input\",\"layers\":\"auto\",\"logits\":\"logits\",\"classes\":3}";
    CheckpointManifest m =
        CheckpointManifest.parse(json.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    assertThat(m.autoLayers()).isTrue();
    assertThat(m.layers()).isEmpty();
    assertThat(CheckpointManifest.parse(m.toJson())).isEqualTo(m);
  }

  @Test
  void namedIfmWeightsParseAndRoundTrip() {
    byte[] json =
        edited(
            r -> {
              ObjectNode c = r.putObject("complexity");
              c.putObject("fc1")
                  .put("in", "fc1.weight")
                  .put("bias", "fc1.bias")
                  .put("out", "fc2.weight");
              c.putObject("fc2").put("in", "fc2.weight").put("out", "classifier.weight");
            });
    CheckpointManifest m = CheckpointManifest.parse(json);
    assertThat(m.complexity())
        .containsExactly(
            Map.entry(
                "fc1", new CheckpointManifest.IfmWeights("fc1.weight", "fc1.bias", "fc2.weight")),
            Map.entry(
                "fc2", new CheckpointManifest.IfmWeights("fc2.weight", null, "classifier.weight")));
    assertThat(CheckpointManifest.parse(m.toJson())).isEqualTo(m);
    assertThat(CheckpointManifest.parse(utf8(FULL)).complexity()).isEmpty();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badComplexity")
  void badIfmWeightsAreRejectedWithTheField(String what, byte[] json, String message) {
    assertThatThrownBy(() -> CheckpointManifest.parse(json))
        .isInstanceOf(ManifestException.class)
        .hasMessage(message);
  }

  static Stream<Arguments> badComplexity() {
    return Stream.of(
        Arguments.of(
            "not an object",
            edited(r -> r.put("complexity", "fc1.weight")),
            "complexity must be an object of layer name → {\"in\", \"bias\", \"out\"}"),
        Arguments.of(
            "entry not an object",
            edited(r -> r.putObject("complexity").put("fc1", 3)),
            "complexity.fc1 = 3: must be an object with 'in', 'out' and optional 'bias'"),
        Arguments.of(
            "missing out",
            edited(r -> r.putObject("complexity").putObject("fc1").put("in", "w")),
            "manifest field 'complexity.fc1.out' is required"),
        Arguments.of(
            "unknown field",
            edited(
                r ->
                    r.putObject("complexity")
                        .putObject("fc1")
                        .put("in", "w")
                        .put("out", "v")
                        .put("weight", "x")),
            "unknown field 'weight' in complexity.fc1; fields are in, bias, out"),
        Arguments.of(
            "in not a string",
            edited(r -> r.putObject("complexity").putObject("fc1").put("in", 1).put("out", "v")),
            "complexity.fc1.in = 1: must be a string"),
        Arguments.of(
            "not a probed layer",
            edited(r -> r.putObject("complexity").putObject("fc9").put("in", "w").put("out", "v")),
            "complexity.fc9: not a probed layer; layers are [fc1, fc2]"));
  }
}
