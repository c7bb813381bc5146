package io.probestream.service.web;

import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ReferenceStatus;
import io.probestream.service.view.ResultView;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.handler.StaticHandler;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The HTTP side: {@code /metrics}, {@code /health/live}, {@code /health/ready}, the results API,
 * the server-sent event stream and the live page, each route in a class of its own, behind an
 * optional bearer-token check ({@link AuthHandler}). Every field is touched on this verticle's
 * event loop only; results for the stream arrive over the event bus.
 */
public final class HttpVerticle extends VerticleBase {
  /** Event-bus address on which every acknowledged result is published as JSON text. */
  public static final String RESULTS_ADDRESS = "probestream.results";

  private static final Logger LOG = Logger.getLogger(HttpVerticle.class.getName());

  private final String host;
  private final int port;
  private final ServiceMetrics metrics;
  private final ResultView view;
  private final ReferenceStatus references;
  private final Readiness readiness;
  private final String authToken;
  private final List<String> openPaths;
  private final StreamRoute stream = new StreamRoute();
  private HttpServer server;

  /** Without authentication: every path is open. */
  public HttpVerticle(
      String host,
      int port,
      ServiceMetrics metrics,
      ResultView view,
      ReferenceStatus references,
      Readiness readiness) {
    this(host, port, "", List.of(), metrics, view, references, readiness);
  }

  /**
   * With {@code authToken} non-empty, every path not under one of {@code openPaths} needs the token
   * ({@link AuthHandler}); empty serves every path without one.
   */
  public HttpVerticle(
      String host,
      int port,
      String authToken,
      List<String> openPaths,
      ServiceMetrics metrics,
      ResultView view,
      ReferenceStatus references,
      Readiness readiness) {
    this.host = host;
    this.port = port;
    this.authToken = authToken;
    this.openPaths = List.copyOf(openPaths);
    this.metrics = metrics;
    this.view = view;
    this.references = references;
    this.readiness = readiness;
  }

  @Override
  public Future<?> start() {
    Router router = Router.router(vertx);
    if (!authToken.isEmpty()) {
      router.route().handler(new AuthHandler(authToken, openPaths));
      LOG.info("HTTP bearer-token authentication on; open paths: " + openPaths);
    }
    router
        .get("/metrics")
        .handler(
            rc ->
                rc.response()
                    .putHeader("content-type", ServiceMetrics.contentType())
                    .end(metrics.scrape()));
    router
        .get("/health/live")
        .handler(rc -> ApiResponses.json(rc, 200, new JsonObject().put("status", "UP")));
    router.get("/health/ready").handler(new ReadyRoute(readiness));
    router.get("/api/v1/experiments").handler(new ExperimentsRoute(view, references));
    router.get("/api/v1/experiments/:experiment/results").handler(new ResultsRoute(view));
    router.get("/api/v1/stream").handler(stream);
    // The dashboard's chart library, from its webjar on the classpath.
    router
        .get("/webjars/uplot/*")
        .handler(StaticHandler.create("META-INF/resources/webjars/uplot").setCachingEnabled(true));
    router
        .get("/")
        .handler(
            rc ->
                rc.response()
                    .putHeader("content-type", "text/html; charset=utf-8")
                    .end(LivePage.HTML));
    router.errorHandler(
        404,
        rc ->
            ApiResponses.error(
                rc, 404, "no such path: " + rc.request().method() + " " + rc.request().path()));
    router.errorHandler(
        405,
        rc ->
            ApiResponses.error(
                rc, 405, rc.request().method() + " is not allowed on " + rc.request().path()));
    router.errorHandler(
        500,
        rc -> {
          Throwable cause = rc.failure();
          LOG.log(Level.SEVERE, "HTTP " + rc.request().path() + " failed", cause);
          if (rc.response().headWritten()) {
            rc.response().reset();
          } else {
            ApiResponses.error(rc, 500, "internal error: " + cause);
          }
        });
    vertx.eventBus().<String>consumer(RESULTS_ADDRESS, m -> stream.broadcast(m.body()));
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

  @Override
  public Future<?> stop() {
    stream.closeAll();
    return server == null ? Future.succeededFuture() : server.close();
  }
}
