package io.probestream.contracts.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A checkpoint manifest (DESIGN.md §3, topic {@code checkpoints}): which run and step, where the
 * model is, and which graph tensors are the probed layers, the logits and the classifier weight.
 * Valid once constructed; immutable.
 *
 * @param experiment experiment id, never blank
 * @param run run id, never blank
 * @param step training step, at least 0
 * @param epoch epoch, or null
 * @param metrics training metrics reported with the checkpoint (loss, accuracy, …); never null
 * @param model where the model bytes are, never null
 * @param input the model's data input tensor, never blank
 * @param layers probed layer name → graph tensor, in manifest order; may be empty
 * @param logits the logits tensor, never blank
 * @param classifierWeight the classifier weight initializer, or null
 * @param classes number of classes C, 1..{@link #MAX_CLASSES}
 * @param autoLayers whether {@code layers} was {@code "auto"}: the service picks the layers from
 *     the graph ({@code layers} is then empty)
 * @param complexity per layer, the initializers IFM takes instead of those the graph shows
 *     (PROBES.md §2.1); never null, usually empty
 */
public record CheckpointManifest(
    String experiment,
    String run,
    long step,
    Long epoch,
    Map<String, Double> metrics,
    ModelRef model,
    String input,
    Map<String, String> layers,
    String logits,
    String classifierWeight,
    int classes,
    boolean autoLayers,
    Map<String, IfmWeights> complexity) {

  public static final int MAX_CLASSES = 100_000;
  private static final int MAX_ID_LENGTH = 200;
  private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
  private static final Set<String> FIELDS =
      Set.of(
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
          "classes",
          "complexity");
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /** Where a checkpoint's model bytes come from: an assembled blob or a URI. */
  public sealed interface ModelRef permits Blob, Uri {}

  /** A manifest with the layers named (not {@code "auto"}). */
  public CheckpointManifest(
      String experiment,
      String run,
      long step,
      Long epoch,
      Map<String, Double> metrics,
      ModelRef model,
      String input,
      Map<String, String> layers,
      String logits,
      String classifierWeight,
      int classes) {
    this(
        experiment,
        run,
        step,
        epoch,
        metrics,
        model,
        input,
        layers,
        logits,
        classifierWeight,
        classes,
        false);
  }

  /** As the canonical constructor, without named IFM weights. */
  public CheckpointManifest(
      String experiment,
      String run,
      long step,
      Long epoch,
      Map<String, Double> metrics,
      ModelRef model,
      String input,
      Map<String, String> layers,
      String logits,
      String classifierWeight,
      int classes,
      boolean autoLayers) {
    this(
        experiment,
        run,
        step,
        epoch,
        metrics,
        model,
        input,
        layers,
        logits,
        classifierWeight,
        classes,
        autoLayers,
        Map.of());
  }

  /**
   * The initializers of one layer for Iterative Feature Merging: incoming weight {@code in}, its
   * {@code bias} (null: none) and the next layer's weight {@code out}.
   */
  public record IfmWeights(String in, String bias, String out) {
    public IfmWeights {
      requireName("complexity.*.in", in);
      requireName("complexity.*.out", out);
      if (bias != null) {
        requireName("complexity.*.bias", bias);
      }
    }
  }

  /** A model published on the {@code blobs} topic in {@code chunks} chunks. */
  public record Blob(String sha256, long size, int chunks) implements ModelRef {
    public Blob {
      if (sha256 == null || !SHA256.matcher(sha256).matches()) {
        throw new ManifestException(
            "model.blob.sha256 = " + quote(sha256) + ": must be 64 lower-case hex digits");
      }
      if (size < 1) {
        throw new ManifestException("model.blob.size = " + size + ": must be at least 1 byte");
      }
      if (chunks < 1) {
        throw new ManifestException("model.blob.chunks = " + chunks + ": must be at least 1");
      }
    }
  }

  /** A model at a URI ({@code file://} under configured roots, or an allowed http(s) host). */
  public record Uri(String uri) implements ModelRef {
    public Uri {
      if (uri == null || uri.isBlank()) {
        throw new ManifestException("model.uri must be a non-empty string");
      }
    }
  }

  public CheckpointManifest {
    requireId("experiment", experiment);
    requireId("run", run);
    if (step < 0) {
      throw new ManifestException("step = " + step + ": must be a non-negative integer");
    }
    if (epoch != null && epoch < 0) {
      throw new ManifestException("epoch = " + epoch + ": must be a non-negative integer");
    }
    if (model == null) {
      throw new ManifestException("model is required: {\"blob\": {...}} or {\"uri\": ...}");
    }
    requireName("input", input);
    requireName("logits", logits);
    if (classifierWeight != null) {
      requireName("classifier_weight", classifierWeight);
    }
    if (classes < 1 || classes > MAX_CLASSES) {
      throw new ManifestException("classes = " + classes + ": must be 1.." + MAX_CLASSES);
    }
    layers.forEach(
        (name, tensor) -> {
          requireId("layers key", name);
          requireName("layers." + name, tensor);
        });
    metrics = Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
    layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    complexity = Collections.unmodifiableMap(new LinkedHashMap<>(complexity));
    for (String layer : complexity.keySet()) {
      if (!autoLayers && !layers.containsKey(layer)) {
        throw new ManifestException(
            "complexity." + layer + ": not a probed layer; layers are " + layers.keySet());
      }
    }
  }

  /** The manifest as JSON, the form the {@code checkpoints} topic carries. */
  public byte[] toJson() {
    com.fasterxml.jackson.databind.node.ObjectNode o = JSON.createObjectNode();
    o.put("experiment", experiment);
    o.put("run", run);
    o.put("step", step);
    if (epoch != null) {
      o.put("epoch", epoch);
    }
    if (!metrics.isEmpty()) {
      com.fasterxml.jackson.databind.node.ObjectNode m = o.putObject("metrics");
      metrics.forEach(m::put);
    }
    com.fasterxml.jackson.databind.node.ObjectNode model = o.putObject("model");
    if (this.model instanceof Blob b) {
      model
          .putObject("blob")
          .put("sha256", b.sha256())
          .put("size", b.size())
          .put("chunks", b.chunks());
    } else {
      model.put("uri", ((Uri) this.model).uri());
    }
    o.put("input", input);
    if (autoLayers) {
      o.put("layers", "auto");
    } else {
      com.fasterxml.jackson.databind.node.ObjectNode l = o.putObject("layers");
      layers.forEach(l::put);
    }
    o.put("logits", logits);
    if (classifierWeight != null) {
      o.put("classifier_weight", classifierWeight);
    }
    o.put("classes", classes);
    if (!complexity.isEmpty()) {
      com.fasterxml.jackson.databind.node.ObjectNode c = o.putObject("complexity");
      complexity.forEach(
          (layer, w) -> {
            com.fasterxml.jackson.databind.node.ObjectNode e = c.putObject(layer);
            e.put("in", w.in());
            if (w.bias() != null) {
              e.put("bias", w.bias());
            }
            e.put("out", w.out());
          });
    }
    return o.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Parses and validates a manifest from JSON; errors name the field, the value and the rule. */
  public static CheckpointManifest parse(byte[] json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new ManifestException("manifest is not valid JSON: " + e.getOriginalMessage(), e);
    } catch (java.io.IOException e) {
      throw new ManifestException("manifest could not be read: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new ManifestException("manifest must be a JSON object");
    }
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (!FIELDS.contains(f)) {
        throw new ManifestException("unknown manifest field '" + f + "'; fields are " + FIELDS);
      }
    }
    return new CheckpointManifest(
        text(root, "experiment", true),
        text(root, "run", true),
        integer(root, "step", true),
        root.hasNonNull("epoch") ? integer(root, "epoch", true) : null,
        metrics(root.get("metrics")),
        modelRef(root.get("model")),
        text(root, "input", true),
        isAuto(root.get("layers")) ? Map.of() : layers(root.get("layers")),
        text(root, "logits", true),
        text(root, "classifier_weight", false),
        classes(root),
        isAuto(root.get("layers")),
        complexity(root.get("complexity")));
  }

  private static Map<String, IfmWeights> complexity(JsonNode node) {
    Map<String, IfmWeights> out = new LinkedHashMap<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if (!node.isObject()) {
      throw new ManifestException(
          "complexity must be an object of layer name → {\"in\", \"bias\", \"out\"}");
    }
    node.fields()
        .forEachRemaining(
            e -> {
              JsonNode w = e.getValue();
              String at = "complexity." + e.getKey();
              if (!w.isObject()) {
                throw new ManifestException(
                    at + " = " + w + ": must be an object with 'in', 'out' and optional 'bias'");
              }
              for (Iterator<String> it = w.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (!Set.of("in", "bias", "out").contains(f)) {
                  throw new ManifestException(
                      "unknown field '" + f + "' in " + at + "; fields are in, bias, out");
                }
              }
              out.put(
                  e.getKey(),
                  new IfmWeights(
                      text(w, "in", true, at + ".in"),
                      text(w, "bias", false, at + ".bias"),
                      text(w, "out", true, at + ".out")));
            });
    return out;
  }

  private static boolean isAuto(JsonNode layers) {
    return layers != null && layers.isTextual() && layers.asText().equals("auto");
  }

  private static int classes(JsonNode root) {
    long v = integer(root, "classes", true);
    if (v < 1 || v > MAX_CLASSES) {
      throw new ManifestException("classes = " + v + ": must be 1.." + MAX_CLASSES);
    }
    return (int) v;
  }

  private static ModelRef modelRef(JsonNode node) {
    if (node == null || !node.isObject()) {
      throw new ManifestException("model must be an object: {\"blob\": {...}} or {\"uri\": ...}");
    }
    boolean blob = node.has("blob");
    boolean uri = node.has("uri");
    if (blob == uri) {
      throw new ManifestException("model must have exactly one of 'blob' and 'uri', got " + node);
    }
    if (uri) {
      return new Uri(text(node, "uri", true));
    }
    JsonNode b = node.get("blob");
    if (!b.isObject()) {
      throw new ManifestException("model.blob must be an object with sha256, size, chunks");
    }
    long chunks = integer(b, "chunks", true);
    if (chunks < 1) {
      throw new ManifestException("model.blob.chunks = " + chunks + ": must be at least 1");
    }
    if (chunks > Integer.MAX_VALUE) {
      throw new ManifestException(
          "model.blob.chunks = " + chunks + ": must be at most " + Integer.MAX_VALUE);
    }
    return new Blob(text(b, "sha256", true), integer(b, "size", true), (int) chunks);
  }

  private static Map<String, Double> metrics(JsonNode node) {
    Map<String, Double> out = new LinkedHashMap<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if (!node.isObject()) {
      throw new ManifestException("metrics must be an object of numbers, got " + node);
    }
    node.fields()
        .forEachRemaining(
            e -> {
              if (!e.getValue().isNumber()) {
                throw new ManifestException(
                    "metrics." + e.getKey() + " = " + e.getValue() + ": must be a number");
              }
              out.put(e.getKey(), e.getValue().asDouble());
            });
    return out;
  }

  private static Map<String, String> layers(JsonNode node) {
    Map<String, String> out = new LinkedHashMap<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if (!node.isObject()) {
      throw new ManifestException(
          "layers must be an object of layer name → tensor name, or \"auto\"");
    }
    node.fields()
        .forEachRemaining(
            e -> {
              if (!e.getValue().isTextual()) {
                throw new ManifestException(
                    "layers." + e.getKey() + " = " + e.getValue() + ": must be a tensor name");
              }
              out.put(e.getKey(), e.getValue().asText());
            });
    return out;
  }

  private static String text(JsonNode node, String field, boolean required) {
    return text(node, field, required, field);
  }

  private static String text(JsonNode node, String field, boolean required, String path) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      if (required) {
        throw new ManifestException("manifest field '" + path + "' is required");
      }
      return null;
    }
    if (!v.isTextual()) {
      throw new ManifestException(path + " = " + v + ": must be a string");
    }
    return v.asText();
  }

  private static long integer(JsonNode node, String field, boolean required) {
    JsonNode v = node.get(field);
    if (v == null || v.isNull()) {
      if (required) {
        throw new ManifestException("manifest field '" + field + "' is required");
      }
      return 0;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new ManifestException(field + " = " + v + ": must be an integer");
    }
    return v.asLong();
  }

  private static void requireId(String field, String value) {
    requireName(field, value);
    if (value.indexOf('|') >= 0) {
      // '|' separates the fields hashed into a result id (DESIGN.md §3); allowing it would let two
      // different (experiment, run) pairs share an id.
      throw new ManifestException(field + " = \"" + value + "\": must not contain '|'");
    }
    if (value.length() > MAX_ID_LENGTH) {
      throw new ManifestException(
          field + " is " + value.length() + " characters; at most " + MAX_ID_LENGTH);
    }
  }

  private static void requireName(String field, String value) {
    if (value == null || value.isBlank()) {
      throw new ManifestException(field + " = " + quote(value) + ": must be a non-empty string");
    }
  }

  private static String quote(String s) {
    return s == null ? "null" : "\"" + s + "\"";
  }
}
