package io.probestream.service.schema;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.InputFormat;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.SpecificationVersion;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.checkpoint.ManifestException;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class SchemasTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Schemas SCHEMAS = Schemas.get();
  private static final Path DIR = Path.of("../../schemas");
  private static final String SHA = "0123456789abcdef".repeat(4);
  private static final String REF_SHA = "fedcba9876543210".repeat(4);
  private static final String SHA_PATTERN = "^[0-9a-f]{64}$";
  private static final String ID_PATTERN = "^[^|]*[^|\\s][^|]*$";

  // ---- checkpoint manifest ----

  private static final String BLOB_MANIFEST =
      "{\"experiment\":\"mnist-mlp\",\"run\":\"seed-3\",\"step\":1200,"
          + "\"model\":{\"blob\":{\"sha256\":\""
          + SHA
          + "\",\"size\":4096,\"chunks\":1}},"
          + "\"input\":\"input\",\"layers\":{\"fc1\":\"h1\",\"fc2\":\"h2\"},"
          + "\"logits\":\"logits\",\"classes\":10}";

  @Test
  void manifestsTheParserAcceptsAreValid() {
    List<String> good =
        List.of(
            BLOB_MANIFEST,
            "{\"experiment\":\"e\",\"run\":\"r\",\"step\":0,\"epoch\":3,"
                + "\"metrics\":{\"loss\":0.25,\"accuracy\":1},"
                + "\"model\":{\"uri\":\"file:///models/m.onnx\"},\"input\":\"x\",\"layers\":{},"
                + "\"logits\":\"z\",\"classifier_weight\":\"W\",\"classes\":1}",
            // Optional fields may be null as well as absent, as the parser allows.
            "{\"experiment\":\"e\",\"run\":\"r\",\"step\":9223372036854775807,\"epoch\":null,"
                + "\"metrics\":null,\"model\":{\"uri\":\"u\"},\"input\":\"x\",\"layers\":null,"
                + "\"logits\":\"z\",\"classifier_weight\":null,\"classes\":100000}",
            new String(
                CheckpointManifest.parse(BLOB_MANIFEST.getBytes(StandardCharsets.UTF_8)).toJson(),
                StandardCharsets.UTF_8));
    for (String m : good) {
      CheckpointManifest.parse(utf8(m)); // throws if the parser disagrees
      assertThat(SCHEMAS.validateManifest(utf8(m))).as(m).isEmpty();
    }
  }

  /** A manifest the parser rejects and the messages the schema gives for it. */
  private record Bad(String json, List<String> errors) {}

  @Test
  void everyViolationTheParserRejectsIsReportedWithItsPath() {
    List<Bad> bad =
        List.of(
            new Bad(
                BLOB_MANIFEST.replace(",\"classes\":10", ""),
                List.of("$: required property 'classes' not found")),
            new Bad(
                BLOB_MANIFEST.replace("\"step\":1200", "\"step\":\"1200\""),
                List.of("$.step = \"1200\": string found, integer expected")),
            new Bad(
                BLOB_MANIFEST.replace("\"step\":1200", "\"step\":-5"),
                List.of("$.step = -5: must have a minimum value of 0")),
            new Bad(
                BLOB_MANIFEST.replace("\"classes\":10", "\"classes\":100001"),
                List.of("$.classes = 100001: must have a maximum value of 100000")),
            new Bad(
                BLOB_MANIFEST.replace("\"classes\":10", "\"classes\":0"),
                List.of("$.classes = 0: must have a minimum value of 1")),
            new Bad(
                BLOB_MANIFEST.replace("\"mnist-mlp\"", "\"mnist|mlp\""),
                List.of(
                    "$.experiment = \"mnist|mlp\": does not match the regex pattern "
                        + ID_PATTERN)),
            new Bad(
                BLOB_MANIFEST.replace("\"seed-3\"", "\"  \""),
                List.of("$.run = \"  \": does not match the regex pattern " + ID_PATTERN)),
            new Bad(
                BLOB_MANIFEST.replace("\"classes\":10", "\"classes\":10,\"optimizer\":\"sgd\""),
                List.of(
                    "$: property 'optimizer' is not defined in the schema and the schema does not"
                        + " allow additional properties")),
            new Bad(
                BLOB_MANIFEST.replace("\"layers\":{", "\"layers\":{\"a|b\":\"h0\","),
                List.of(
                    "$.layers: property 'a|b' name is not valid: does not match the regex pattern "
                        + ID_PATTERN)),
            new Bad(
                BLOB_MANIFEST.replace("\"fc1\":\"h1\"", "\"fc1\":1"),
                List.of("$.layers.fc1 = 1: integer found, string expected")),
            new Bad(
                BLOB_MANIFEST.replace(
                    "\"classes\":10", "\"classes\":10,\"metrics\":{\"loss\":\"x\"}"),
                List.of("$.metrics.loss = \"x\": string found, number expected")),
            new Bad(
                BLOB_MANIFEST.replace("\"classes\":10", "\"classes\":10,\"epoch\":-1"),
                List.of("$.epoch = -1: must have a minimum value of 0")),
            new Bad("[]", List.of("$: array found, object expected")),
            new Bad("not json", List.of(notJson("not json"))));
    for (Bad b : bad) {
      assertThatThrownBy(() -> CheckpointManifest.parse(utf8(b.json())))
          .as(b.json())
          .isInstanceOf(ManifestException.class);
      assertThat(SCHEMAS.validateManifest(utf8(b.json())))
          .as(b.json())
          .containsExactlyElementsOf(b.errors());
    }
  }

  @Test
  void aBadModelReferenceIsReportedAtItsPath() {
    // The model is a oneOf (blob | uri): the failing branch's own error comes with the oneOf's.
    String badSha = BLOB_MANIFEST.replace(SHA, SHA.toUpperCase(java.util.Locale.ROOT));
    assertThatThrownBy(() -> CheckpointManifest.parse(utf8(badSha)))
        .isInstanceOf(ManifestException.class);
    assertThat(SCHEMAS.validateManifest(utf8(badSha)))
        .contains(
            "$.model.blob.sha256 = \""
                + SHA.toUpperCase(java.util.Locale.ROOT)
                + "\": does not match the regex pattern "
                + SHA_PATTERN)
        .allMatch(e -> e.startsWith("$.model"));
    String both = BLOB_MANIFEST.replace("\"chunks\":1}}", "\"chunks\":1},\"uri\":\"u\"}");
    assertThatThrownBy(() -> CheckpointManifest.parse(utf8(both)))
        .isInstanceOf(ManifestException.class);
    assertThat(SCHEMAS.validateManifest(utf8(both)))
        .contains("$.model: must be valid to one and only one schema, but 0 are valid")
        .allMatch(e -> e.startsWith("$.model"));
    // Stricter than CheckpointManifest.parse, which ignores unknown keys inside model and blob.
    String codec = BLOB_MANIFEST.replace("\"chunks\":1}", "\"chunks\":1,\"codec\":\"zstd\"}");
    assertThat(SCHEMAS.validateManifest(utf8(codec)))
        .contains(
            "$.model.blob: property 'codec' is not defined in the schema and the schema does not"
                + " allow additional properties");
    String zeroChunks = BLOB_MANIFEST.replace("\"chunks\":1", "\"chunks\":0");
    assertThat(SCHEMAS.validateManifest(utf8(zeroChunks)))
        .contains("$.model.blob.chunks = 0: must have a minimum value of 1");
  }

  @Test
  void duplicateFieldsAreNotJson() {
    // The parser detects duplicates too: "step":1,"step":-1 must not slip through as 1.
    String dup = BLOB_MANIFEST.replace("\"step\":1200", "\"step\":1200,\"step\":-1");
    assertThatThrownBy(() -> CheckpointManifest.parse(utf8(dup)))
        .isInstanceOf(ManifestException.class);
    assertThat(SCHEMAS.validateManifest(utf8(dup)))
        .containsExactly("$: not valid JSON: Duplicate Object property \"step\"");
  }

  // ---- probe result ----

  private static ProbeResult neuralCollapse(Map<String, Double> metrics, String notes) {
    return ProbeResult.of(
        "mnist-mlp",
        "seed-3",
        1200,
        SHA,
        REF_SHA,
        "neural_collapse",
        "fc2",
        "reference",
        metrics,
        Map.of("reduction", "none"),
        notes,
        "cpu",
        Instant.parse("2026-11-24T06:40:00.123Z"),
        87);
  }

  private static ObjectNode validResult() throws IOException {
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("samples", 10000.0);
    metrics.put("nc1", 0.41);
    metrics.put("sb_rank", 9.0);
    return (ObjectNode) JSON.readTree(neuralCollapse(metrics, null).toJson());
  }

  @Test
  void resultsTheServiceWritesAreValid() throws IOException {
    assertThat(SCHEMAS.validateResult(validResult().toString())).isEmpty();
    Map<String, Double> undefined = new LinkedHashMap<>();
    undefined.put("samples", 7.0);
    undefined.put("cdnv", null);
    assertThat(
            SCHEMAS.validateResult(
                neuralCollapse(undefined, "cdnv: fewer than 2 classes seen").toJson()))
        .isEmpty();
    // Predictive multiplicity (PROBES.md §3): experiment-wide, with members and baseline.
    String multiplicity =
        "{\"id\":\""
            + SHA
            + "\",\"experiment\":\"mnist-mlp\",\"run\":null,\"step\":1200,"
            + "\"model_sha256\":\""
            + SHA
            + "\",\"reference_sha256\":\""
            + REF_SHA
            + "\",\"probe\":\"predictive_multiplicity\",\"layer\":null,\"split\":\"reference\","
            + "\"samples\":3,\"metrics\":{\"samples\":3,\"ambiguity\":0.3333333333333333},"
            + "\"params\":{\"epsilon\":0.05},\"device\":\"cpu\","
            + "\"computed_at\":\"2026-11-24T06:40:00Z\",\"latency_ms\":0,"
            + "\"members\":[{\"run\":\"seed-1\",\"step\":1200},{\"run\":\"seed-2\",\"step\":1200}],"
            + "\"baseline\":0}";
    assertThat(SCHEMAS.validateResult(multiplicity)).isEmpty();
  }

  @Test
  void eachBrokenResultFieldIsReportedWithItsPath() throws IOException {
    assertThat(errors(r -> r.remove("id"))).containsExactly("$: required property 'id' not found");
    assertThat(errors(r -> r.put("id", "abc")))
        .containsExactly("$.id = \"abc\": does not match the regex pattern " + SHA_PATTERN);
    assertThat(errors(r -> r.put("step", 1.5)))
        .containsExactly("$.step = 1.5: number found, integer expected");
    assertThat(errors(r -> r.put("probe", "collapse")))
        .containsExactly(
            "$.probe = \"collapse\": does not have a value in the enumeration"
                + " [\"neural_collapse\", \"feature_complexity\", \"predictive_multiplicity\"]");
    assertThat(errors(r -> r.put("split", "test")))
        .containsExactly(
            "$.split = \"test\": does not have a value in the enumeration"
                + " [\"reference\", \"train\", \"eval\"]");
    assertThat(errors(r -> ((ObjectNode) r.get("metrics")).put("nc1", "0.41")))
        .containsExactly("$.metrics.nc1 = \"0.41\": string found, [number, null] expected");
    assertThat(errors(r -> ((ObjectNode) r.get("metrics")).putNull("nc1")))
        .containsExactly("$: required property 'notes' not found");
    assertThat(errors(r -> ((ObjectNode) r.get("metrics")).put("NC1", 0.4)))
        .containsExactly(
            "$.metrics: property 'NC1' name is not valid: does not match the regex pattern"
                + " ^[a-z][a-z0-9_]*$");
    // A live train/eval result is not computed on the reference set: null is allowed there only.
    assertThat(errors(r -> r.put("split", "train").putNull("reference_sha256"))).isEmpty();
    assertThat(errors(r -> r.putNull("reference_sha256"))).isNotEmpty();
    assertThat(errors(r -> r.put("computed_at", "yesterday")))
        .containsExactly(
            "$.computed_at = \"yesterday\": does not match the date-time pattern must be a valid"
                + " RFC 3339 date-time");
    assertThat(errors(r -> r.put("latency_ms", -1)))
        .containsExactly("$.latency_ms = -1: must have a minimum value of 0");
    assertThat(errors(r -> r.put("model_sha256", (String) null)))
        .containsExactly("$.model_sha256 = null: null found, string expected");
    assertThat(errors(r -> r.put("nc1", 0.41)))
        .containsExactly(
            "$: property 'nc1' is not defined in the schema and the schema does not allow"
                + " additional properties");
    assertThat(errors(r -> r.put("run", "seed|3")))
        .containsExactly("$.run = \"seed|3\": does not match the regex pattern " + ID_PATTERN);
    assertThat(errors(r -> r.put("notes", "")))
        .containsExactly("$.notes = \"\": must be at least 1 characters long");
  }

  @Test
  void onlyPredictiveMultiplicityIsExperimentWide() throws IOException {
    assertThat(errors(r -> r.putNull("layer")))
        .containsExactly("$.layer = null: null found, string expected");
    assertThat(errors(r -> r.put("baseline", 0)))
        .containsExactly("$.baseline = 0: schema for 'baseline' is false");
    assertThat(errors(r -> r.put("probe", "predictive_multiplicity")))
        .containsExactlyInAnyOrder(
            "$.run = \"seed-3\": string found, null expected",
            "$.layer = \"fc2\": string found, null expected");
    // One run's window (params.scope = run) names its run; the experiment scope does not.
    assertThat(
            errors(
                r -> {
                  r.put("probe", "predictive_multiplicity");
                  r.putNull("layer");
                  ((ObjectNode) r.get("params")).put("scope", "run");
                }))
        .isEmpty();
    assertThat(
            errors(
                r -> {
                  r.put("probe", "predictive_multiplicity");
                  r.putNull("layer");
                  ((ObjectNode) r.get("params")).put("scope", "experiment");
                }))
        .containsExactly("$.run = \"seed-3\": string found, null expected");
  }

  private interface Edit {
    void apply(ObjectNode result);
  }

  private static List<String> errors(Edit edit) throws IOException {
    ObjectNode r = validResult();
    edit.apply(r);
    return SCHEMAS.validateResult(r.toString());
  }

  // ---- headers ----

  private static Map<String, String> cloudEvent(String type, String... extra) {
    Map<String, String> h = new LinkedHashMap<>();
    h.put(Headers.SPECVERSION, Headers.SPEC_VERSION);
    h.put(Headers.ID, "9d2b5c1e-1f0a-4a57-8f5e-1b2c3d4e5f60");
    h.put(Headers.SOURCE, "trainer");
    h.put(Headers.TYPE, type);
    h.put(Headers.TIME, "2026-11-24T06:40:00.123Z");
    for (int i = 0; i < extra.length; i += 2) {
      h.put(extra[i], extra[i + 1]);
    }
    return h;
  }

  private static Map<String, String> blob() {
    return cloudEvent(
        Headers.TYPE_BLOB,
        Headers.BLOB_SHA256,
        SHA,
        Headers.BLOB_INDEX,
        "0",
        Headers.BLOB_COUNT,
        "3",
        Headers.BLOB_SIZE,
        "1048577");
  }

  private static Map<String, String> batch() {
    return cloudEvent(
        Headers.TYPE_BATCH,
        Headers.EXPERIMENT,
        "mnist-mlp",
        Headers.SPLIT,
        Headers.SPLIT_REFERENCE,
        Headers.BATCH_INDEX,
        "1",
        Headers.FINAL,
        "true",
        Headers.CONTENT_TYPE,
        Headers.SAFETENSORS);
  }

  private static Map<String, String> result() {
    Map<String, String> h =
        cloudEvent(
            Headers.TYPE_RESULT,
            Headers.CONTENT_TYPE,
            Headers.JSON,
            Headers.EXPERIMENT,
            "mnist-mlp");
    h.put(Headers.ID, SHA);
    h.put(Headers.SOURCE, "probestream");
    return h;
  }

  private static Map<String, String> dlq(Map<String, String> original) {
    Map<String, String> h = new LinkedHashMap<>(original);
    h.put(Headers.DLQ_REASON, DlqReason.BLOB_SHA_MISMATCH.code());
    h.put(Headers.DLQ_CLASS, "io.probestream.service.record.PoisonException");
    h.put(Headers.DLQ_MESSAGE, "assembled blob has sha256 " + REF_SHA);
    h.put(Headers.DLQ_SOURCE_TOPIC, "probestream.blobs");
    h.put(Headers.DLQ_SOURCE_PARTITION, "0");
    h.put(Headers.DLQ_SOURCE_OFFSET, "42");
    return h;
  }

  @Test
  void headerSetsAsPublishedAreValid() {
    assertThat(
            SCHEMAS.validateHeaders(
                "checkpoints",
                cloudEvent(Headers.TYPE_CHECKPOINT, Headers.CONTENT_TYPE, Headers.JSON)))
        .isEmpty();
    assertThat(SCHEMAS.validateHeaders("blobs", blob())).isEmpty();
    assertThat(SCHEMAS.validateHeaders("batches", batch())).isEmpty();
    assertThat(SCHEMAS.validateHeaders("results", result())).isEmpty();
    assertThat(SCHEMAS.validateHeaders("dlq", dlq(blob()))).isEmpty();
    // A record dead-lettered for lacking its CloudEvents headers still makes a valid DLQ record.
    assertThat(SCHEMAS.validateHeaders("dlq", dlq(Map.of()))).isEmpty();
  }

  @Test
  void eachBrokenHeaderIsReportedByName() {
    assertThat(SCHEMAS.validateHeaders("checkpoints", cloudEvent(Headers.TYPE_BLOB)))
        .containsExactly(
            "$.ce_type = \"probestream.blob.v1\": does not have a value in the enumeration"
                + " [\"probestream.checkpoint.v1\", \"probestream.command.delete.v1\","
                + " \"probestream.command.reprocess.v1\"]");
    Map<String, String> noId = cloudEvent(Headers.TYPE_CHECKPOINT);
    noId.remove(Headers.ID);
    assertThat(SCHEMAS.validateHeaders("checkpoints", noId))
        .containsExactly("$: required property 'ce_id' not found");
    assertThat(
            SCHEMAS.validateHeaders(
                "checkpoints", cloudEvent(Headers.TYPE_CHECKPOINT, Headers.SPECVERSION, "0.3")))
        .containsExactly("$.ce_specversion = \"0.3\": must be the constant value '1.0'");
    Map<String, String> upper = blob();
    upper.put(Headers.BLOB_SHA256, SHA.toUpperCase(java.util.Locale.ROOT));
    assertThat(SCHEMAS.validateHeaders("blobs", upper))
        .containsExactly(
            "$.ce_blobsha256 = \""
                + SHA.toUpperCase(java.util.Locale.ROOT)
                + "\": does not match the regex pattern "
                + SHA_PATTERN);
    Map<String, String> zeroCount = blob();
    zeroCount.put(Headers.BLOB_COUNT, "0");
    assertThat(SCHEMAS.validateHeaders("blobs", zeroCount))
        .containsExactly(
            "$.ce_blobcount = \"0\": does not match the regex pattern ^0*[1-9][0-9]*$");
    Map<String, String> negative = batch();
    negative.put(Headers.BATCH_INDEX, "-1");
    negative.put(Headers.FINAL, "yes");
    negative.remove(Headers.EXPERIMENT);
    assertThat(SCHEMAS.validateHeaders("batches", negative))
        .containsExactlyInAnyOrder(
            "$: required property 'ce_experiment' not found",
            "$.ce_batchindex = \"-1\": does not match the regex pattern ^[0-9]+$",
            "$.ce_final = \"yes\": does not have a value in the enumeration [\"true\", \"false\"]");
    Map<String, String> uuidId = result();
    uuidId.put(Headers.ID, "9d2b5c1e-1f0a-4a57-8f5e-1b2c3d4e5f60");
    assertThat(SCHEMAS.validateHeaders("results", uuidId))
        .containsExactly(
            "$.ce_id = \"9d2b5c1e-1f0a-4a57-8f5e-1b2c3d4e5f60\": does not match the regex pattern "
                + SHA_PATTERN);
    Map<String, String> noReason = dlq(blob());
    noReason.remove(Headers.DLQ_REASON);
    noReason.put(Headers.DLQ_SOURCE_OFFSET, "x");
    assertThat(SCHEMAS.validateHeaders("dlq", noReason))
        .containsExactlyInAnyOrder(
            "$: required property 'dlq.error.reason' not found",
            "$['dlq.source.offset'] = \"x\": does not match the regex pattern ^[0-9]+$");
    Map<String, String> unknownReason = dlq(blob());
    unknownReason.put(Headers.DLQ_REASON, "oops");
    assertThat(SCHEMAS.validateHeaders("dlq", unknownReason))
        .singleElement()
        .asString()
        .startsWith("$['dlq.error.reason'] = \"oops\": does not have a value in the enumeration");
    assertThatThrownBy(() -> SCHEMAS.validateHeaders("state", Map.of()))
        .hasMessage(
            "no header schema for topic 'state'; topics are [checkpoints, blobs, batches, results,"
                + " dlq]");
  }

  // ---- the schema files themselves ----

  @Test
  void everySchemaIsValidDraft202012WithItsIdAndDescriptions() throws IOException {
    SchemaRegistry registry =
        SchemaRegistry.withDefaultDialect(
            SpecificationVersion.DRAFT_2020_12,
            b ->
                b.schemaRegistryConfig(
                    SchemaRegistryConfig.builder().formatAssertionsEnabled(true).build()));
    Schema meta =
        registry.getSchema(SchemaLocation.of("https://json-schema.org/draft/2020-12/schema"));
    // The meta-schema really is applied: a misspelt type is caught.
    assertThat(meta.validate("{\"type\":\"integr\"}", InputFormat.JSON)).isNotEmpty();

    List<String> files = new ArrayList<>();
    try (Stream<Path> s = Files.list(DIR)) {
      s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".json")).forEach(files::add);
    }
    List<String> expected = new ArrayList<>(List.of(Schemas.MANIFEST, Schemas.RESULT));
    Schemas.HEADER_TOPICS.forEach(t -> expected.add(Schemas.headersFile(t)));
    assertThat(files).containsExactlyInAnyOrderElementsOf(expected);

    for (String file : files) {
      String text = Files.readString(DIR.resolve(file));
      assertThat(meta.validate(text, InputFormat.JSON)).as(file).isEmpty();
      JsonNode root = JSON.readTree(text);
      assertThat(root.get("$schema").asText())
          .as(file)
          .isEqualTo("https://json-schema.org/draft/2020-12/schema");
      assertThat(root.get("$id").asText()).as(file).isEqualTo(Schemas.ID_PREFIX + file);
      List<String> undocumented = new ArrayList<>();
      undocumented(root, "$", undocumented);
      assertThat(undocumented).as(file + ": properties without a description").isEmpty();
    }
  }

  /** Collects the paths of property and $defs subschemas that have no description. */
  private static void undocumented(JsonNode node, String path, List<String> out) {
    if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        undocumented(node.get(i), path + "[" + i + "]", out);
      }
      return;
    }
    if (!node.isObject()) {
      return;
    }
    for (String group : List.of("properties", "$defs")) {
      JsonNode members = node.get(group);
      // Under allOf/if/then the properties only narrow ones documented at the top.
      if (members != null && !path.contains("allOf")) {
        for (Iterator<Map.Entry<String, JsonNode>> it = members.fields(); it.hasNext(); ) {
          Map.Entry<String, JsonNode> e = it.next();
          if (e.getValue().isObject() && !e.getValue().has("description")) {
            out.add(path + "." + group + "." + e.getKey());
          }
        }
      }
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      undocumented(e.getValue(), path + "." + e.getKey(), out);
    }
  }

  @Test
  void schemasNameTheConstantsOfTheContracts() throws Exception {
    JsonNode dlq = file(Schemas.headersFile("dlq"));
    List<String> reasons = new ArrayList<>();
    dlq.at("/properties/dlq.error.reason/enum").forEach(n -> reasons.add(n.asText()));
    assertThat(reasons)
        .as("schemas/headers-dlq.v1.schema.json must list every DlqReason code")
        .containsExactlyElementsOf(Arrays.stream(DlqReason.values()).map(DlqReason::code).toList());

    // The checkpoints topic also carries the experiment commands.
    assertThat(texts(file(Schemas.headersFile("checkpoints")).at("/properties/ce_type/enum")))
        .containsExactly(
            Headers.TYPE_CHECKPOINT, Headers.TYPE_COMMAND_DELETE, Headers.TYPE_COMMAND_REPROCESS);
    Map<String, String> types =
        Map.of(
            "blobs", Headers.TYPE_BLOB,
            "batches", Headers.TYPE_BATCH,
            "results", Headers.TYPE_RESULT);
    types.forEach(
        (topic, type) ->
            assertThat(file(Schemas.headersFile(topic)).at("/properties/ce_type/const").asText())
                .as(topic)
                .isEqualTo(type));

    List<String> splits = List.of(Headers.SPLIT_REFERENCE, Headers.SPLIT_TRAIN, Headers.SPLIT_EVAL);
    assertThat(texts(file(Schemas.headersFile("batches")).at("/properties/ce_split/enum")))
        .containsExactlyElementsOf(splits);
    assertThat(texts(file(Schemas.RESULT).at("/properties/split/enum")))
        .containsExactlyElementsOf(splits);

    List<String> names = new ArrayList<>();
    for (Field f : Headers.class.getFields()) {
      if (Modifier.isStatic(f.getModifiers()) && f.getType() == String.class) {
        names.add((String) f.get(null));
      }
    }
    for (String topic : Schemas.HEADER_TOPICS) {
      file(Schemas.headersFile(topic))
          .get("properties")
          .fieldNames()
          .forEachRemaining(
              h -> assertThat(names).as(topic + " header " + h + " is in Headers").contains(h));
    }
  }

  private static JsonNode file(String name) {
    try {
      return JSON.readTree(DIR.resolve(name).toFile());
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static String notJson(String text) {
    return "$: not valid JSON: Unrecognized token '"
        + text.split(" ")[0]
        + "': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or"
        + " 'false')";
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void layersMayBeAutoButNoOtherString() {
    String auto = BLOB_MANIFEST.replaceFirst("\"layers\":\\{[^}]*}", "\"layers\":\"auto\"");
    assertThat(auto).contains("\"layers\":\"auto\"");
    assertThat(SCHEMAS.validateManifest(utf8(auto))).isEmpty();
    assertThat(SCHEMAS.validateManifest(utf8(auto.replace("\"auto\"", "\"all\""))))
        .containsExactly("$.layers = \"all\": must be the constant value 'auto'");
  }
}
