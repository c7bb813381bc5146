package io.probestream.probes.multiplicity;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;

/**
 * {@code predictive_multiplicity} of PROBES.md §3 over an experiment's candidates: the ε-Rashomon
 * set, its baseline, and ambiguity, discrepancy, viable prediction range, Rashomon capacity and
 * pairwise disagreement. Stateless; see {@link MultiplicityState} for the bounded experiment state.
 */
public final class PredictiveMultiplicity {
  public static final String NAME = "predictive_multiplicity";

  /** Default {@code epsilon} in nats (PROBES.md §0). */
  public static final double DEFAULT_EPSILON = 0.05;

  private PredictiveMultiplicity() {}

  /**
   * The outcome: metrics in PROBES.md §3.2 order, the members (canonical order), the baseline's
   * position among them, and notes. {@code members} is empty when no candidate was finite.
   */
  public record Result(
      Map<String, Double> metrics, List<Candidate> members, int baseline, List<String> notes) {
    public Result {
      metrics = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
      members = List.copyOf(members);
      notes = List.copyOf(notes);
    }
  }

  /**
   * PROBES.md §3.1–3.3.
   *
   * @param candidates the candidates in canonical order, all on the same reference set
   * @param seen models seen (including any no longer kept), for {@code models_seen}
   * @param nonfinite of those, how many had non-finite logits
   * @param pool where the per-sample capacities run
   */
  public static Result compute(
      List<Candidate> candidates, double epsilon, long seen, long nonfinite, ForkJoinPool pool) {
    List<Candidate> finite = new ArrayList<>();
    for (Candidate c : candidates) {
      if (c.finite()) {
        finite.add(c);
      }
    }
    Map<String, Double> m = new LinkedHashMap<>();
    List<String> notes = new ArrayList<>();
    if (finite.isEmpty()) {
      for (String k :
          List.of(
              "ambiguity",
              "discrepancy",
              "vpr_mean",
              "rashomon_capacity_mean",
              "disagreement_mean",
              "rashomon_set_size")) {
        m.put(k, null);
      }
      m.put("models_seen", (double) seen);
      m.put("models_nonfinite", (double) nonfinite);
      m.put("samples", null);
      m.put("baseline_loss", null);
      notes.add("predictive_multiplicity: no candidate has finite logits");
      return new Result(m, List.of(), 0, notes);
    }
    int n = finite.get(0).samples();
    int k = finite.get(0).classes();
    for (Candidate c : finite) {
      if (c.samples() != n || c.classes() != k) {
        throw new IllegalArgumentException(
            "candidate "
                + c.run()
                + "@"
                + c.step()
                + " has "
                + c.samples()
                + " × "
                + c.classes()
                + " probabilities; the others have "
                + n
                + " × "
                + k);
      }
    }
    Candidate best = finite.get(0);
    for (Candidate c : finite) {
      if (c.loss() < best.loss()) {
        best = c; // strict: exact ties keep the earliest candidate
      }
    }
    List<Candidate> set = new ArrayList<>();
    for (Candidate c : finite) {
      if (c.loss() <= best.loss() + epsilon) {
        set.add(c);
      }
    }
    int b = set.indexOf(best);
    int s = set.size();
    int[][] pred = new int[s][n];
    for (int j = 0; j < s; j++) {
      float[] p = set.get(j).probs();
      for (int i = 0; i < n; i++) {
        int arg = 0;
        for (int c = 1; c < k; c++) {
          if (p[i * k + c] > p[i * k + arg]) {
            arg = c;
          }
        }
        pred[j][i] = arg;
      }
    }
    long ambiguous = 0;
    double vpr = 0;
    for (int i = 0; i < n; i++) {
      int kb = pred[b][i];
      boolean any = false;
      double lo = Double.POSITIVE_INFINITY;
      double hi = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < s; j++) {
        any |= pred[j][i] != kb;
        double v = set.get(j).probs()[i * k + kb];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      if (any) {
        ambiguous++;
      }
      vpr += hi - lo;
    }
    long worst = 0;
    for (int j = 0; j < s; j++) {
      long d = 0;
      for (int i = 0; i < n; i++) {
        if (pred[j][i] != pred[b][i]) {
          d++;
        }
      }
      worst = Math.max(worst, d);
    }
    double disagreement = 0;
    if (s > 1) {
      long pairs = 0;
      double sum = 0;
      for (int j = 0; j < s; j++) {
        for (int l = j + 1; l < s; l++) {
          long d = 0;
          for (int i = 0; i < n; i++) {
            if (pred[j][i] != pred[l][i]) {
              d++;
            }
          }
          sum += (double) d / n;
          pairs++;
        }
      }
      disagreement = sum / pairs;
    }
    List<float[]> probs = new ArrayList<>();
    set.forEach(c -> probs.add(c.probs()));
    RashomonCapacity.BatchResult rc = RashomonCapacity.batch(probs, n, k, pool);
    if (s == 1) {
      notes.add("predictive_multiplicity: the Rashomon set has one member");
    }
    if (rc.notConverged() > 0) {
      notes.add("capacity not converged for " + rc.notConverged() + " samples");
    }
    m.put("ambiguity", (double) ambiguous / n);
    m.put("discrepancy", (double) worst / n);
    m.put("vpr_mean", vpr / n);
    m.put("rashomon_capacity_mean", rc.meanRc());
    m.put("disagreement_mean", disagreement);
    m.put("rashomon_set_size", (double) s);
    m.put("models_seen", (double) seen);
    m.put("models_nonfinite", (double) nonfinite);
    m.put("samples", (double) n);
    m.put("baseline_loss", best.loss());
    return new Result(m, set, b, notes);
  }
}
