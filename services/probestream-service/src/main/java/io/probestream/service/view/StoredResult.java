package io.probestream.service.view;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.probestream.contracts.result.ProbeResult;
import java.nio.charset.StandardCharsets;

/**
 * One published result as the view holds it: the fields the API filters on, and the JSON document
 * exactly as it was published. Immutable.
 *
 * @param id the result's deterministic id; never null
 * @param experiment never null
 * @param run the run, or null for experiment-wide results (predictive multiplicity)
 * @param step the training step, at least 0
 * @param probe never null
 * @param layer the layer, or null for experiment-wide results
 * @param split never null
 * @param json the result document as published on the results topic; never null
 */
public record StoredResult(
    String id,
    String experiment,
    String run,
    long step,
    String probe,
    String layer,
    String split,
    String json) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The view's copy of a result this instance just published. */
  public static StoredResult of(ProbeResult r) {
    return new StoredResult(
        r.id(), r.experiment(), r.run(), r.step(), r.probe(), r.layer(), r.split(), r.toJson());
  }

  /**
   * Reads a record value of the results topic (DESIGN.md §3).
   *
   * @throws IllegalArgumentException naming the field that is missing or has the wrong type, or
   *     saying that the value is not a JSON object
   */
  public static StoredResult parse(byte[] value) {
    if (value == null) {
      throw new IllegalArgumentException("record has no value; expected a probe result object");
    }
    String text = new String(value, StandardCharsets.UTF_8);
    JsonNode o;
    try {
      o = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage(), e);
    }
    if (o == null || !o.isObject()) {
      throw new IllegalArgumentException("not a JSON object; expected a probe result object");
    }
    JsonNode step = o.get("step");
    if (step == null || !step.isIntegralNumber() || !step.canConvertToLong() || step.asLong() < 0) {
      throw new IllegalArgumentException(
          "field 'step' = " + step + ": expected an integer of at least 0");
    }
    return new StoredResult(
        text(o, "id", false),
        text(o, "experiment", false),
        text(o, "run", true),
        step.asLong(),
        text(o, "probe", false),
        text(o, "layer", true),
        text(o, "split", false),
        text.strip());
  }

  private static String text(JsonNode o, String field, boolean nullable) {
    JsonNode v = o.get(field);
    if (nullable && v != null && v.isNull()) {
      return null;
    }
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException(
          "field '" + field + "' = " + v + ": expected a string" + (nullable ? " or null" : ""));
    }
    return v.asText();
  }
}
