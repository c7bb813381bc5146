package io.probestream.service.schema;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.SpecificationVersion;
import com.networknt.schema.path.PathType;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * The JSON Schemas of {@code schemas/} (draft 2020-12), read from the classpath once, and checks of
 * messages against them. Errors name the JSON path ({@code $.model.blob.sha256: …}); an empty list
 * means valid. Immutable and thread-safe.
 */
public final class Schemas {
  /**
   * The {@code $id} prefix of every schema; mapped to {@code classpath:schemas/}, never fetched.
   */
  public static final String ID_PREFIX = "https://probestream.io/schemas/";

  public static final String MANIFEST = "checkpoint-manifest.v1.schema.json";
  public static final String RESULT = "probe-result.v1.schema.json";

  /** The topics that have a header schema, as named by {@code headers-<topic>.v1.schema.json}. */
  public static final List<String> HEADER_TOPICS =
      List.of("checkpoints", "blobs", "batches", "results", "dlq");

  private static final int MAX_VALUE_CHARS = 100;
  private static final JsonMapper JSON =
      JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  private final Schema manifest;
  private final Schema result;
  private final Map<String, Schema> headers;

  private Schemas() {
    SchemaRegistry registry =
        SchemaRegistry.withDefaultDialect(
            SpecificationVersion.DRAFT_2020_12,
            b ->
                b.schemaRegistryConfig(
                        SchemaRegistryConfig.builder()
                            .pathType(PathType.JSON_PATH)
                            // "format" only annotates by default in 2020-12; computed_at and
                            // ce_time must really be RFC 3339.
                            .formatAssertionsEnabled(true)
                            .build())
                    .schemaLoader(
                        l ->
                            l.fetchRemoteResources(false)
                                .schemaIdResolvers(
                                    r -> r.mapPrefix(ID_PREFIX, "classpath:schemas/"))));
    this.manifest = load(registry, MANIFEST);
    this.result = load(registry, RESULT);
    Map<String, Schema> h = new LinkedHashMap<>();
    for (String topic : HEADER_TOPICS) {
      h.put(topic, load(registry, headersFile(topic)));
    }
    this.headers = Map.copyOf(h);
  }

  private static final class Holder {
    static final Schemas INSTANCE = new Schemas();
  }

  /** The schemas, read from the classpath on first use (so call it once at start-up). */
  public static Schemas get() {
    return Holder.INSTANCE;
  }

  /** The file name of a topic's header schema. */
  public static String headersFile(String topic) {
    return "headers-" + topic + ".v1.schema.json";
  }

  /** Checks a checkpoint manifest (the checkpoints topic's value). */
  public List<String> validateManifest(byte[] json) {
    JsonNode node;
    try {
      node = JSON.readTree(json);
    } catch (JacksonException e) {
      return List.of("$: not valid JSON: " + e.getOriginalMessage());
    }
    return messages(manifest, node);
  }

  /** Checks a probe result (the results topic's value). */
  public List<String> validateResult(String json) {
    JsonNode node;
    try {
      node = JSON.readTree(json);
    } catch (JacksonException e) {
      return List.of("$: not valid JSON: " + e.getOriginalMessage());
    }
    return messages(result, node);
  }

  /**
   * Checks a record's header set (name → UTF-8 value) against the schema of {@code topic}, one of
   * {@link #HEADER_TOPICS}.
   */
  public List<String> validateHeaders(String topic, Map<String, String> headerSet) {
    Schema schema = headers.get(topic);
    if (schema == null) {
      throw new IllegalArgumentException(
          "no header schema for topic '" + topic + "'; topics are " + HEADER_TOPICS);
    }
    ObjectNode node = JSON.createObjectNode();
    headerSet.forEach(node::put);
    return messages(schema, node);
  }

  private static List<String> messages(Schema schema, JsonNode node) {
    List<String> out = new ArrayList<>();
    for (Error e : schema.validate(node)) {
      JsonNode at = e.getInstanceNode();
      String value = at != null && at.isValueNode() ? " = " + abbreviate(at.toString()) : "";
      out.add(e.getInstanceLocation() + value + ": " + e.getMessage());
    }
    return out;
  }

  private static String abbreviate(String s) {
    return s.length() <= MAX_VALUE_CHARS ? s : s.substring(0, MAX_VALUE_CHARS) + "…";
  }

  private static Schema load(SchemaRegistry registry, String file) {
    if (Schemas.class.getResource("/schemas/" + file) == null) {
      throw new IllegalStateException(
          "schemas/"
              + file
              + " is not on the classpath; the service pom copies the repository's schemas/ there");
    }
    Schema s = registry.getSchema(SchemaLocation.of(ID_PREFIX + file));
    // Resolve every keyword now, so validation never loads anything and the object is immutable.
    s.initializeValidators();
    return s;
  }
}
