package io.probestream.contracts.result;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * One probe result, the envelope of DESIGN.md §3 with PROBES.md §0's {@code metrics}, {@code
 * params} and {@code notes}. The {@code id} is a pure function of what identifies the result, so a
 * recomputation publishes the same id. Immutable.
 *
 * @param run run id, or null for experiment-wide probes
 * @param layer layer name, or null for experiment-wide probes
 * @param metrics key → value; a null value is "undefined for this data"; never null itself
 * @param notes the reasons for nulls and applied limits joined with "; ", or null
 * @param members experiment-wide probes over a set of checkpoints (predictive multiplicity): the
 *     members in canonical order; null for per-checkpoint probes
 * @param baseline position of the baseline in {@code members}, or null
 */
public record ProbeResult(
    String id,
    String experiment,
    String run,
    long step,
    String modelSha256,
    String referenceSha256,
    String probe,
    String layer,
    String split,
    Map<String, Double> metrics,
    Map<String, Object> params,
    String notes,
    String device,
    Instant computedAt,
    long latencyMs,
    java.util.List<Member> members,
    Integer baseline) {

  /** One member checkpoint of an experiment-wide result. */
  public record Member(String run, long step, String modelSha256) {}

  private static final ObjectMapper JSON =
      new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, false);
  private static final ObjectMapper CANONICAL =
      new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  public ProbeResult {
    metrics = Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
    params = Collections.unmodifiableMap(new LinkedHashMap<>(params));
    computedAt = computedAt.truncatedTo(ChronoUnit.MILLIS);
    members = members == null ? null : java.util.List.copyOf(members);
    if ((members == null) != (baseline == null)
        || (baseline != null && (baseline < 0 || baseline >= members.size()))) {
      throw new IllegalArgumentException("baseline " + baseline + " must index members " + members);
    }
  }

  /** Builds a result whose id is derived from its identifying fields (DESIGN.md §3). */
  public static ProbeResult of(
      String experiment,
      String run,
      long step,
      String modelSha256,
      String referenceSha256,
      String probe,
      String layer,
      String split,
      Map<String, Double> metrics,
      Map<String, Object> params,
      String notes,
      String device,
      Instant computedAt,
      long latencyMs) {
    String id =
        id(experiment, run, step, modelSha256, probe, layer, split, referenceSha256, params);
    return new ProbeResult(
        id,
        experiment,
        run,
        step,
        modelSha256,
        referenceSha256,
        probe,
        layer,
        split,
        metrics,
        params,
        notes,
        device,
        computedAt,
        latencyMs,
        null,
        null);
  }

  /**
   * An experiment-wide result over a set of checkpoints (DESIGN.md §3: {@code layer} null, {@code
   * run} null, or the run when the set is one run's window; {@code step} and {@code modelSha256}
   * those of the checkpoint that triggered it); its id also covers the members, so each update of
   * the set is a new result. With no members (no candidate had finite logits) the result has none,
   * like a per-checkpoint one.
   */
  public static ProbeResult ofMembers(
      String experiment,
      String run,
      long step,
      String modelSha256,
      String referenceSha256,
      String probe,
      String split,
      Map<String, Double> metrics,
      Map<String, Object> params,
      String notes,
      String device,
      Instant computedAt,
      long latencyMs,
      java.util.List<Member> members,
      int baseline) {
    if (members.isEmpty()) { // no member (no finite candidate): a plain result, every metric null
      return of(
          experiment,
          run,
          step,
          modelSha256,
          referenceSha256,
          probe,
          null,
          split,
          metrics,
          params,
          notes,
          device,
          computedAt,
          latencyMs);
    }
    Map<String, Object> keyed = new LinkedHashMap<>(params);
    java.util.List<String> names = new java.util.ArrayList<>();
    for (Member m : members) {
      names.add(m.run() + "@" + m.step() + "@" + nz(m.modelSha256()));
    }
    keyed.put("members", names);
    keyed.put("baseline", baseline);
    String id = id(experiment, run, step, modelSha256, probe, null, split, referenceSha256, keyed);
    return new ProbeResult(
        id,
        experiment,
        run,
        step,
        modelSha256,
        referenceSha256,
        probe,
        null,
        split,
        metrics,
        params,
        notes,
        device,
        computedAt,
        latencyMs,
        members,
        baseline);
  }

  /**
   * sha256 (hex) of {@code
   * experiment|run|step|model_sha256|probe|layer|split|reference_sha256|params} with null fields as
   * empty strings and params as JSON with keys sorted.
   */
  public static String id(
      String experiment,
      String run,
      long step,
      String modelSha256,
      String probe,
      String layer,
      String split,
      String referenceSha256,
      Map<String, Object> params) {
    String canonicalParams;
    try {
      canonicalParams = CANONICAL.writeValueAsString(new TreeMap<>(params));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("params are not JSON-serialisable: " + params, e);
    }
    String key =
        String.join(
            "|",
            nz(experiment),
            nz(run),
            Long.toString(step),
            nz(modelSha256),
            nz(probe),
            nz(layer),
            nz(split),
            nz(referenceSha256),
            canonicalParams);
    return sha256Hex(key.getBytes(StandardCharsets.UTF_8));
  }

  /** Lower-case hex sha256 of {@code bytes}. */
  public static String sha256Hex(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  /** The samples the probe used, or null when it does not say. */
  public Long samples() {
    Double s = metrics.get("samples");
    return s == null ? null : s.longValue();
  }

  /** The result as one line of JSON, fields in DESIGN.md order, NaN and Inf never written. */
  public String toJson() {
    ObjectNode o = JSON.createObjectNode();
    o.put("id", id);
    o.put("experiment", experiment);
    o.put("run", run);
    o.put("step", step);
    o.put("model_sha256", modelSha256);
    o.put("reference_sha256", referenceSha256);
    o.put("probe", probe);
    o.put("layer", layer);
    o.put("split", split);
    Long samples = samples();
    if (samples != null) {
      o.put("samples", samples);
    }
    ObjectNode m = o.putObject("metrics");
    metrics.forEach(
        (k, v) -> {
          if (v == null) {
            m.putNull(k);
          } else if (!Double.isFinite(v)) {
            throw new IllegalStateException("metric " + k + " = " + v + " is not a JSON number");
          } else if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            m.put(k, v.longValue());
          } else {
            m.put(k, v);
          }
        });
    o.set("params", JSON.valueToTree(params));
    if (notes != null) {
      o.put("notes", notes);
    }
    o.put("device", device);
    o.put("computed_at", computedAt.toString());
    o.put("latency_ms", latencyMs);
    if (members != null) {
      com.fasterxml.jackson.databind.node.ArrayNode a = o.putArray("members");
      for (Member member : members) {
        ObjectNode e = a.addObject();
        e.put("run", member.run());
        e.put("step", member.step());
        if (member.modelSha256() != null) {
          e.put("model_sha256", member.modelSha256());
        }
      }
      o.put("baseline", baseline);
    }
    try {
      return JSON.writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String nz(String s) {
    return s == null ? "" : s;
  }
}
