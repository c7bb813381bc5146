package io.probestream.probes;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a probe computed for one layer: {@code metrics} in a fixed key order (a null value means
 * "applies, but undefined for this data"; an absent key means "does not apply"), the settings used,
 * and the reasons for every null. Immutable.
 */
public record ProbeOutput(
    Map<String, Double> metrics, Map<String, Object> params, List<String> notes) {

  public ProbeOutput {
    metrics = Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
    params = Collections.unmodifiableMap(new LinkedHashMap<>(params));
    notes = List.copyOf(notes);
    for (Map.Entry<String, Double> e : metrics.entrySet()) {
      if (e.getValue() != null && !Double.isFinite(e.getValue())) {
        throw new IllegalArgumentException(
            "metric " + e.getKey() + " = " + e.getValue() + ": results never carry NaN or Inf");
      }
    }
  }

  /** The notes joined as PROBES.md §0 asks, or null when there are none. */
  public String joinedNotes() {
    return notes.isEmpty() ? null : String.join("; ", notes);
  }
}
