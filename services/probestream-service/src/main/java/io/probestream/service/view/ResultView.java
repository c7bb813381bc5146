package io.probestream.service.view;

import io.probestream.service.view.ExperimentSummary.RunSummary;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The published results the HTTP API serves, by experiment, in publication order. Bounded: at most
 * {@code maxResultsPerExperiment} results per experiment (its oldest go first) and {@code
 * maxExperiments} experiments (the least recently updated goes first). A result whose id the view
 * already holds is ignored, so a result published twice (at-least-once delivery) is listed once.
 * Thread-safe: every method holds this object's lock; the publisher writes, the HTTP verticle
 * reads, and the start-up rebuild writes before either runs.
 */
public final class ResultView {
  public static final int DEFAULT_MAX_EXPERIMENTS = 200;
  public static final int DEFAULT_MAX_RESULTS_PER_EXPERIMENT = 2_000;

  private final int maxExperiments;
  private final int maxResultsPerExperiment;
  // Insertion order is update order: add() moves an experiment to the end.
  private final LinkedHashMap<String, Experiment> experiments = new LinkedHashMap<>();
  private int size;

  public ResultView(int maxExperiments, int maxResultsPerExperiment) {
    if (maxExperiments < 1 || maxResultsPerExperiment < 1) {
      throw new IllegalArgumentException(
          "maxExperiments = "
              + maxExperiments
              + ", maxResultsPerExperiment = "
              + maxResultsPerExperiment
              + ": both must be at least 1");
    }
    this.maxExperiments = maxExperiments;
    this.maxResultsPerExperiment = maxResultsPerExperiment;
  }

  /**
   * Adds a result as the newest of its experiment.
   *
   * @return the experiment evicted to make room for a new one, or null if none was
   */
  public synchronized String add(StoredResult r) {
    Experiment e = experiments.remove(r.experiment());
    if (e == null) {
      e = new Experiment();
    }
    experiments.put(r.experiment(), e);
    if (!e.ids.add(r.id())) {
      return null;
    }
    e.add(r);
    size++;
    if (e.results.size() > maxResultsPerExperiment) {
      e.removeOldest();
      size--;
    }
    if (experiments.size() > maxExperiments) {
      Iterator<Map.Entry<String, Experiment>> oldest = experiments.entrySet().iterator();
      Map.Entry<String, Experiment> evicted = oldest.next();
      oldest.remove();
      size -= evicted.getValue().results.size();
      return evicted.getKey();
    }
    return null;
  }

  /** Every experiment the view holds, by name; never null. */
  /** Removes an experiment and its results; whether it was held. */
  public synchronized boolean remove(String experiment) {
    Experiment e = experiments.remove(experiment);
    if (e == null) {
      return false;
    }
    size -= e.results.size();
    return true;
  }

  public synchronized List<ExperimentSummary> experiments() {
    List<ExperimentSummary> out = new ArrayList<>();
    for (String name : new TreeMap<>(experiments).keySet()) {
      Experiment e = experiments.get(name);
      List<RunSummary> runs = new ArrayList<>();
      e.runs.forEach((run, steps) -> runs.add(new RunSummary(run, steps.latest(), steps.count)));
      out.add(new ExperimentSummary(name, runs, e.steps.latest(), e.results.size()));
    }
    return out;
  }

  /** The page of an experiment's results that {@code q} selects; empty if the view lacks it. */
  public synchronized Optional<ResultPage> results(String experiment, ResultQuery q) {
    Experiment e = experiments.get(experiment);
    if (e == null) {
      return Optional.empty();
    }
    List<StoredResult> page = new ArrayList<>();
    int total = 0;
    for (StoredResult r : e.results) {
      if (q.matches(r)) {
        if (total >= q.offset() && page.size() < q.limit()) {
          page.add(r);
        }
        total++;
      }
    }
    return Optional.of(new ResultPage(total, q.offset(), q.limit(), page));
  }

  /** Results held, over all experiments. */
  public synchronized int size() {
    return size;
  }

  /** One experiment's results and the step counts that keep its summary exact under eviction. */
  private static final class Experiment {
    final Deque<StoredResult> results = new ArrayDeque<>();
    final Set<String> ids = new HashSet<>();
    final Steps steps = new Steps();
    final TreeMap<String, Steps> runs = new TreeMap<>();

    void add(StoredResult r) {
      results.addLast(r);
      steps.add(r.step());
      if (r.run() != null) {
        runs.computeIfAbsent(r.run(), k -> new Steps()).add(r.step());
      }
    }

    void removeOldest() {
      StoredResult r = results.removeFirst();
      ids.remove(r.id());
      steps.remove(r.step());
      if (r.run() != null) {
        Steps s = runs.get(r.run());
        s.remove(r.step());
        if (s.count == 0) {
          runs.remove(r.run());
        }
      }
    }
  }

  /** A multiset of steps: the latest step stays exact when any result leaves. */
  private static final class Steps {
    final TreeMap<Long, Integer> counts = new TreeMap<>();
    int count;

    void add(long step) {
      counts.merge(step, 1, Integer::sum);
      count++;
    }

    void remove(long step) {
      counts.computeIfPresent(step, (k, n) -> n == 1 ? null : n - 1);
      count--;
    }

    long latest() {
      return counts.lastKey();
    }
  }
}
