package io.probestream.service.view;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.service.view.ExperimentSummary.RunSummary;
import java.util.List;
import org.junit.jupiter.api.Test;

class ResultViewTest {
  private static final long ANY_STEP = Long.MAX_VALUE;

  /** A result whose id is {@code id}; its json names the id so pages can be read off it. */
  private static StoredResult result(
      String id, String experiment, String run, long step, String layer) {
    return new StoredResult(
        id,
        experiment,
        run,
        step,
        "neural_collapse",
        layer,
        "reference",
        "{\"id\":\"" + id + "\"}");
  }

  private static StoredResult result(String id, String run, long step) {
    return result(id, "e", run, step, "fc1");
  }

  private static List<String> ids(ResultPage page) {
    return page.results().stream().map(StoredResult::id).toList();
  }

  private static ResultPage page(ResultView view, ResultQuery q) {
    return view.results("e", q).orElseThrow();
  }

  private static ResultQuery filter(
      String run, String probe, String layer, String split, long stepMin, long stepMax) {
    return new ResultQuery(run, probe, layer, split, stepMin, stepMax, 0, 100);
  }

  @Test
  void resultsComeInPublicationOrderNotStepOrder() {
    ResultView view = new ResultView(10, 10);
    view.add(result("r30", "a", 30));
    view.add(result("r10", "a", 10));
    view.add(result("r20", "b", 20));

    ResultPage page = page(view, ResultQuery.all(0, 100));

    assertThat(ids(page)).containsExactly("r30", "r10", "r20");
    assertThat(page.total()).isEqualTo(3);
    assertThat(page.results().get(0).json()).isEqualTo("{\"id\":\"r30\"}");
  }

  @Test
  void eachFilterKeepsExactlyItsMatches() {
    ResultView view = new ResultView(10, 10);
    view.add(result("a1-fc1", "e", "a", 1, "fc1"));
    view.add(result("a1-fc2", "e", "a", 1, "fc2"));
    view.add(result("b2-fc1", "e", "b", 2, "fc1"));
    view.add(
        new StoredResult("pm3", "e", null, 3, "predictive_multiplicity", null, "reference", "{}"));
    view.add(new StoredResult("a4-eval", "e", "a", 4, "neural_collapse", "fc1", "eval", "{}"));

    assertThat(ids(page(view, filter("a", null, null, null, 0, ANY_STEP))))
        .containsExactly("a1-fc1", "a1-fc2", "a4-eval");
    assertThat(ids(page(view, filter(null, "predictive_multiplicity", null, null, 0, ANY_STEP))))
        .containsExactly("pm3");
    assertThat(ids(page(view, filter(null, null, "fc1", null, 0, ANY_STEP))))
        .containsExactly("a1-fc1", "b2-fc1", "a4-eval");
    assertThat(ids(page(view, filter(null, null, null, "eval", 0, ANY_STEP))))
        .containsExactly("a4-eval");
    assertThat(ids(page(view, filter(null, null, null, null, 2, ANY_STEP))))
        .containsExactly("b2-fc1", "pm3", "a4-eval");
    assertThat(ids(page(view, filter(null, null, null, null, 0, 2))))
        .containsExactly("a1-fc1", "a1-fc2", "b2-fc1");
    assertThat(ids(page(view, filter(null, null, null, null, 2, 3))))
        .containsExactly("b2-fc1", "pm3");
    assertThat(ids(page(view, filter("a", "neural_collapse", "fc1", "reference", 1, 1))))
        .containsExactly("a1-fc1");
    assertThat(page(view, filter("c", null, null, null, 0, ANY_STEP)).total()).isZero();
  }

  @Test
  void pagingSlicesTheMatchesAndCountsThemAll() {
    ResultView view = new ResultView(10, 10);
    for (int i = 1; i <= 5; i++) {
      view.add(result("r" + i, "a", i));
    }

    assertThat(page(view, ResultQuery.all(1, 2)))
        .isEqualTo(new ResultPage(5, 1, 2, List.of(result("r2", "a", 2), result("r3", "a", 3))));
    assertThat(ids(page(view, ResultQuery.all(4, 10)))).containsExactly("r5");
    assertThat(page(view, ResultQuery.all(5, 10))).isEqualTo(new ResultPage(5, 5, 10, List.of()));
    // The total counts matches only: steps 2..4 are 3 results, the page shows the last two.
    assertThat(page(view, new ResultQuery(null, null, null, null, 2, 4, 1, 5)))
        .isEqualTo(new ResultPage(3, 1, 5, List.of(result("r3", "a", 3), result("r4", "a", 4))));
  }

  @Test
  void anUnknownExperimentHasNoPage() {
    ResultView view = new ResultView(10, 10);
    view.add(result("r1", "a", 1));

    assertThat(view.results("other", ResultQuery.all(0, 10))).isEmpty();
  }

  @Test
  void anExperimentKeepsItsNewestResultsUpToTheBoundAndItsSummaryFollows() {
    ResultView view = new ResultView(10, 3);
    view.add(result("a1", "a", 1));
    view.add(result("a2", "a", 2));
    view.add(result("b3", "b", 3));
    view.add(result("a4", "a", 4)); // a1 leaves

    assertThat(ids(page(view, ResultQuery.all(0, 10)))).containsExactly("a2", "b3", "a4");
    assertThat(view.experiments())
        .containsExactly(
            new ExperimentSummary(
                "e", List.of(new RunSummary("a", 4, 2), new RunSummary("b", 3, 1)), 4, 3));

    view.add(result("b5", "b", 5)); // a2 leaves
    view.add(result("b6", "b", 6)); // b3 leaves
    view.add(result("c7", "c", 7)); // a4 leaves, and run a with it

    assertThat(ids(page(view, ResultQuery.all(0, 10)))).containsExactly("b5", "b6", "c7");
    assertThat(view.experiments())
        .containsExactly(
            new ExperimentSummary(
                "e", List.of(new RunSummary("b", 6, 2), new RunSummary("c", 7, 1)), 7, 3));
    assertThat(view.size()).isEqualTo(3);
  }

  @Test
  void theLatestStepStaysExactWhenTheHighestStepLeaves() {
    ResultView view = new ResultView(10, 2);
    view.add(result("a9", "a", 9)); // published first, so it leaves first
    view.add(result("a1", "a", 1));
    view.add(result("a2", "a", 2));

    assertThat(view.experiments())
        .containsExactly(new ExperimentSummary("e", List.of(new RunSummary("a", 2, 2)), 2, 2));
  }

  @Test
  void theLeastRecentlyUpdatedExperimentLeavesFirst() {
    ResultView view = new ResultView(2, 10);
    assertThat(view.add(result("x1", "e1", "a", 1, "fc1"))).isNull();
    assertThat(view.add(result("x2", "e2", "a", 1, "fc1"))).isNull();
    assertThat(view.add(result("x3", "e2", "a", 2, "fc1"))).isNull();
    assertThat(view.add(result("x4", "e1", "a", 2, "fc1"))).isNull(); // e2 is now the older

    assertThat(view.add(result("x5", "e3", "a", 1, "fc1"))).isEqualTo("e2");

    assertThat(view.experiments())
        .extracting(ExperimentSummary::experiment)
        .containsExactly("e1", "e3");
    assertThat(view.results("e2", ResultQuery.all(0, 10))).isEmpty();
    assertThat(view.size()).isEqualTo(3);
  }

  @Test
  void aResultIdAlreadyHeldIsListedOnce() {
    ResultView view = new ResultView(10, 10);
    view.add(result("r1", "a", 1));
    view.add(result("r2", "a", 2));
    view.add(result("r1", "a", 1)); // at-least-once delivery published it again

    assertThat(ids(page(view, ResultQuery.all(0, 10)))).containsExactly("r1", "r2");
    assertThat(view.size()).isEqualTo(2);
  }

  @Test
  void summariesAreByNameAndExperimentWideResultsBelongToNoRun() {
    ResultView view = new ResultView(10, 10);
    view.add(result("z1", "zeta", "s2", 10, "fc1"));
    view.add(result("a1", "alpha", "s2", 5, "fc1"));
    view.add(result("a2", "alpha", "s1", 7, "fc1"));
    view.add(
        new StoredResult(
            "pm", "alpha", null, 8, "predictive_multiplicity", null, "reference", "{}"));

    assertThat(view.experiments())
        .containsExactly(
            new ExperimentSummary(
                "alpha", List.of(new RunSummary("s1", 7, 1), new RunSummary("s2", 5, 1)), 8, 3),
            new ExperimentSummary("zeta", List.of(new RunSummary("s2", 10, 1)), 10, 1));
  }

  @Test
  void boundsBelowOneAreRejected() {
    assertThatThrownBy(() -> new ResultView(0, 10))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("maxExperiments = 0, maxResultsPerExperiment = 10: both must be at least 1");
    assertThatThrownBy(() -> new ResultView(10, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maxResultsPerExperiment = 0");
  }
}
