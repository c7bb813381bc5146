package io.probestream.inference;

import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.probes.complexity.FeatureComplexity;
import io.probestream.probes.multiplicity.PredictiveMultiplicity;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * What to probe in one checkpoint: the model's data input, the probed layers (layer name → graph
 * tensor), the logits tensor, the classifier weight initializer (or null), the number of classes
 * (or null to take the logits' width), the reduction, the probes to run ({@link
 * NeuralCollapseProbe#NAME}, {@link FeatureComplexity#NAME}; {@link PredictiveMultiplicity#NAME}
 * keeps the logits of every reference sample for the caller's experiment state), the settings of
 * {@code feature_complexity}, and per layer the IFM weights a manifest names (layers not named are
 * found from the graph). Immutable.
 */
public record EvaluationSpec(
    String input,
    Map<String, String> layers,
    String logits,
    String classifierWeight,
    Integer classes,
    Reduction reduction,
    Set<String> probes,
    FeatureComplexity.Settings complexity,
    Map<String, IfmNames> ifmWeights) {

  /** The probes the evaluator knows, in result order. */
  public static final Set<String> KNOWN_PROBES =
      Collections.unmodifiableSet(
          new LinkedHashSet<>(
              java.util.List.of(
                  NeuralCollapseProbe.NAME, FeatureComplexity.NAME, PredictiveMultiplicity.NAME)));

  /**
   * The initializers of one layer for IFM: {@code in} [n0, d_in] (PyTorch layout; [d_in, n0] is
   * recognised by the bias length), {@code bias} [n0] or null for none, {@code out} [d_out, n0].
   */
  public record IfmNames(String in, String bias, String out) {
    public IfmNames {
      if (in == null || in.isBlank() || out == null || out.isBlank()) {
        throw new IllegalArgumentException("ifm weights need 'in' and 'out' initializers");
      }
      if (bias != null && bias.isBlank()) {
        bias = null;
      }
    }
  }

  public EvaluationSpec {
    if (input == null || input.isBlank() || logits == null || logits.isBlank()) {
      throw new IllegalArgumentException("input and logits tensors are required");
    }
    layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    if (reduction == null) {
      reduction = Reduction.GAP;
    }
    Set<String> ordered = new LinkedHashSet<>();
    for (String p : KNOWN_PROBES) {
      if (probes.contains(p)) {
        ordered.add(p);
      }
    }
    for (String p : probes) {
      if (!KNOWN_PROBES.contains(p)) {
        throw new IllegalArgumentException(
            "unknown probe '" + p + "'; the evaluator runs " + KNOWN_PROBES);
      }
    }
    if (ordered.isEmpty()) {
      throw new IllegalArgumentException("no probe to run; choose from " + KNOWN_PROBES);
    }
    probes = Collections.unmodifiableSet(ordered);
    if (complexity == null) {
      complexity = FeatureComplexity.Settings.defaults();
    }
    ifmWeights = Collections.unmodifiableMap(new LinkedHashMap<>(ifmWeights));
    for (String layer : ifmWeights.keySet()) {
      if (!layers.isEmpty() && !layers.containsKey(layer)) {
        throw new IllegalArgumentException(
            "ifm weights are named for layer '"
                + layer
                + "', which is not probed "
                + layers.keySet());
      }
    }
  }

  /** {@code neural_collapse} only, with the default settings. */
  public EvaluationSpec(
      String input,
      Map<String, String> layers,
      String logits,
      String classifierWeight,
      Integer classes,
      Reduction reduction) {
    this(
        input,
        layers,
        logits,
        classifierWeight,
        classes,
        reduction,
        Set.of(NeuralCollapseProbe.NAME),
        null,
        Map.of());
  }

  /** Whether {@code probe} is to run. */
  public boolean runs(String probe) {
    return probes.contains(probe);
  }
}
