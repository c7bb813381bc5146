package io.probestream.service.web;

import io.probestream.service.view.ExperimentSummary;
import io.probestream.service.view.ReferenceStatus;
import io.probestream.service.view.ResultView;
import io.vertx.core.Handler;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/**
 * {@code GET /api/v1/experiments}: every experiment in the results view, by name, with its runs,
 * latest step, result count and reference-set status. Stateless apart from its collaborators.
 */
final class ExperimentsRoute implements Handler<RoutingContext> {
  private final ResultView view;
  private final ReferenceStatus references;

  ExperimentsRoute(ResultView view, ReferenceStatus references) {
    this.view = view;
    this.references = references;
  }

  @Override
  public void handle(RoutingContext rc) {
    JsonArray out = new JsonArray();
    for (ExperimentSummary e : view.experiments()) {
      JsonArray runs = new JsonArray();
      for (ExperimentSummary.RunSummary r : e.runs()) {
        runs.add(
            new JsonObject()
                .put("run", r.run())
                .put("latest_step", r.latestStep())
                .put("results", r.results()));
      }
      out.add(
          new JsonObject()
              .put("experiment", e.experiment())
              .put("runs", runs)
              .put("latest_step", e.latestStep())
              .put("results", e.results())
              .put("reference_set", references.status(e.experiment())));
    }
    ApiResponses.json(rc, 200, out.encode());
  }
}
