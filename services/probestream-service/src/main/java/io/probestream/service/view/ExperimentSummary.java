package io.probestream.service.view;

import java.util.List;

/**
 * What the view holds of one experiment. Immutable.
 *
 * @param runs the runs with results in the view, by name; experiment-wide results (run null) count
 *     in {@code results} and {@code latestStep} but belong to no run; never null
 * @param latestStep the highest step among the experiment's results in the view
 * @param results how many of the experiment's results the view holds
 */
public record ExperimentSummary(
    String experiment, List<RunSummary> runs, long latestStep, int results) {
  public ExperimentSummary {
    runs = List.copyOf(runs);
  }

  /**
   * One run of an experiment.
   *
   * @param latestStep the highest step among the run's results in the view
   * @param results how many of the run's results the view holds
   */
  public record RunSummary(String run, long latestStep, int results) {}
}
