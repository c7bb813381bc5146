package io.probestream.inference;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What to probe in one checkpoint: the model's data input, the probed layers (layer name → graph
 * tensor), the logits tensor, the classifier weight initializer (or null) and the number of classes
 * (or null to take the logits' width). Immutable.
 */
public record EvaluationSpec(
    String input,
    Map<String, String> layers,
    String logits,
    String classifierWeight,
    Integer classes,
    Reduction reduction) {

  public EvaluationSpec {
    if (input == null || input.isBlank() || logits == null || logits.isBlank()) {
      throw new IllegalArgumentException("input and logits tensors are required");
    }
    layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    if (reduction == null) {
      reduction = Reduction.GAP;
    }
  }
}
