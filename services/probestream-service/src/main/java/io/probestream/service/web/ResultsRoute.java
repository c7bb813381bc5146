package io.probestream.service.web;

import io.probestream.service.view.ResultPage;
import io.probestream.service.view.ResultQuery;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.StoredResult;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.ext.web.RoutingContext;
import java.util.List;
import java.util.Optional;

/**
 * {@code GET /api/v1/experiments/{e}/results}: one page of an experiment's results in publication
 * order, filtered by run, probe, layer, split and step range. A parameter given empty is the same
 * as one left out; an unknown, repeated or out-of-range parameter is a 400 that names it and its
 * allowed range. Stateless apart from the view.
 */
final class ResultsRoute implements Handler<RoutingContext> {
  static final int DEFAULT_LIMIT = 100;
  static final int MAX_LIMIT = 1000;
  private static final List<String> PARAMETERS =
      List.of("run", "probe", "layer", "split", "step_min", "step_max", "limit", "offset");

  private final ResultView view;

  ResultsRoute(ResultView view) {
    this.view = view;
  }

  @Override
  public void handle(RoutingContext rc) {
    ResultQuery query;
    try {
      query = query(rc.queryParams());
    } catch (IllegalArgumentException e) {
      ApiResponses.error(rc, 400, e.getMessage());
      return;
    }
    String experiment = rc.pathParam("experiment");
    Optional<ResultPage> page = view.results(experiment, query);
    if (page.isEmpty()) {
      ApiResponses.error(rc, 404, "unknown experiment '" + experiment + "'");
      return;
    }
    ResultPage p = page.get();
    StringBuilder body =
        new StringBuilder("{\"total\":")
            .append(p.total())
            .append(",\"offset\":")
            .append(p.offset())
            .append(",\"limit\":")
            .append(p.limit())
            .append(",\"results\":[");
    for (int i = 0; i < p.results().size(); i++) {
      StoredResult r = p.results().get(i);
      body.append(i == 0 ? "" : ",").append(r.json());
    }
    ApiResponses.json(rc, 200, body.append("]}").toString());
  }

  /** The query the parameters ask for; IllegalArgumentException names the parameter at fault. */
  static ResultQuery query(MultiMap params) {
    for (String name : params.names()) {
      if (!PARAMETERS.contains(name)) {
        throw new IllegalArgumentException(
            "unknown query parameter '" + name + "'; allowed: " + String.join(", ", PARAMETERS));
      }
      int given = params.getAll(name).size();
      if (given > 1) {
        throw new IllegalArgumentException(
            "query parameter " + name + " is given " + given + " times; give it once");
      }
    }
    long stepMin = number(params, "step_min", 0, 0, Long.MAX_VALUE);
    long stepMax = number(params, "step_max", Long.MAX_VALUE, 0, Long.MAX_VALUE);
    if (stepMin > stepMax) {
      throw new IllegalArgumentException(
          "query parameter step_min = "
              + stepMin
              + " is above step_max = "
              + stepMax
              + "; give step_min <= step_max");
    }
    return new ResultQuery(
        text(params, "run"),
        text(params, "probe"),
        text(params, "layer"),
        text(params, "split"),
        stepMin,
        stepMax,
        (int) number(params, "offset", 0, 0, Integer.MAX_VALUE),
        (int) number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT));
  }

  private static String text(MultiMap params, String name) {
    String v = params.get(name);
    return v == null || v.isEmpty() ? null : v;
  }

  private static long number(MultiMap params, String name, long absent, long min, long max) {
    String v = text(params, name);
    if (v == null) {
      return absent;
    }
    String allowed =
        "query parameter " + name + " = '" + v + "': must be an integer from " + min + " to " + max;
    long n;
    try {
      n = Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(allowed, e);
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(allowed);
    }
    return n;
  }
}
