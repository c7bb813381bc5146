package io.probestream.service.web;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The HTTP side: {@code /metrics}, {@code /health/live}, {@code /health/ready}, the results API,
 * the server-sent event stream and the live page. Every field is touched on this verticle's event
 * loop only; results arrive over the event bus.
 */
public final class HttpVerticle extends VerticleBase {
  /** Event-bus address on which every acknowledged result is published as JSON text. */
  public static final String RESULTS_ADDRESS = "probestream.results";

  private final String host;
  private final int port;
  private final ServiceMetrics metrics;
  private final ResultPublisher results;
  private final Readiness readiness;
  private final Set<HttpServerResponse> streams = new HashSet<>();
  private HttpServer server;

  public HttpVerticle(
      String host, int port, ServiceMetrics metrics, ResultPublisher results, Readiness readiness) {
    this.host = host;
    this.port = port;
    this.metrics = metrics;
    this.results = results;
    this.readiness = readiness;
  }

  @Override
  public Future<?> start() {
    Router router = Router.router(vertx);
    router.get("/metrics").handler(this::metrics);
    router.get("/health/live").handler(rc -> json(rc, 200, new JsonObject().put("status", "UP")));
    router.get("/health/ready").handler(this::ready);
    router.get("/api/v1/experiments").handler(this::experiments);
    router.get("/api/v1/experiments/:experiment/results").handler(this::experimentResults);
    router.get("/api/v1/stream").handler(this::stream);
    router
        .get("/")
        .handler(
            rc ->
                rc.response()
                    .putHeader("content-type", "text/html; charset=utf-8")
                    .end(LivePage.HTML));
    vertx.eventBus().<String>consumer(RESULTS_ADDRESS, m -> broadcast(m.body()));
    return vertx
        .createHttpServer()
        .requestHandler(router)
        .listen(port, host)
        .onSuccess(s -> server = s);
  }

  /** The port actually bound (useful when configured as 0). */
  public int actualPort() {
    return server.actualPort();
  }

  private void metrics(RoutingContext rc) {
    rc.response().putHeader("content-type", ServiceMetrics.contentType()).end(metrics.scrape());
  }

  private void ready(RoutingContext rc) {
    JsonObject body =
        new JsonObject()
            .put("status", readiness.ready() ? "UP" : "DOWN")
            .put("broker", readiness.brokerUp())
            .put("assigned", readiness.hasAssignment());
    json(rc, readiness.ready() ? 200 : 503, body);
  }

  private void experiments(RoutingContext rc) {
    JsonArray out = new JsonArray();
    for (String e : results.experiments()) {
      List<ProbeResult> rs = results.results(e);
      long lastStep = rs.isEmpty() ? -1 : rs.get(rs.size() - 1).step();
      out.add(
          new JsonObject()
              .put("experiment", e)
              .put("results", rs.size())
              .put("last_step", lastStep));
    }
    rc.response().putHeader("content-type", "application/json").end(out.encode());
  }

  private void experimentResults(RoutingContext rc) {
    String experiment = rc.pathParam("experiment");
    List<String> items = new ArrayList<>();
    for (ProbeResult r : results.results(experiment)) {
      items.add(r.toJson());
    }
    rc.response()
        .putHeader("content-type", "application/json")
        .end("[" + String.join(",", items) + "]");
  }

  private void stream(RoutingContext rc) {
    HttpServerResponse res = rc.response();
    res.setChunked(true)
        .putHeader("content-type", "text/event-stream")
        .putHeader("cache-control", "no-cache")
        .putHeader("connection", "keep-alive");
    res.write(": probestream result stream\n\n");
    streams.add(res);
    res.closeHandler(v -> streams.remove(res));
    res.exceptionHandler(e -> streams.remove(res));
  }

  private void broadcast(String json) {
    for (HttpServerResponse res : List.copyOf(streams)) {
      if (res.writeQueueFull()) {
        continue; // a slow reader misses results rather than growing our heap
      }
      res.write("event: result\ndata: " + json + "\n\n");
    }
  }

  private static void json(RoutingContext rc, int status, JsonObject body) {
    rc.response()
        .setStatusCode(status)
        .putHeader("content-type", "application/json")
        .end(body.encode());
  }

  @Override
  public Future<?> stop() {
    for (HttpServerResponse res : List.copyOf(streams)) {
      res.end();
    }
    return server == null ? Future.succeededFuture() : server.close();
  }
}
