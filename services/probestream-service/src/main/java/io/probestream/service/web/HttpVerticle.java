package io.probestream.service.web;

import io.probestream.service.health.Readiness;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ReferenceStatus;
import io.probestream.service.view.ResultView;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.handler.StaticHandler;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
  private static final String CERT_KEY = "probestream.http.tls-cert-file";
  private static final String KEY_KEY = "probestream.http.tls-key-file";

  private final String host;
  private final int port;
  private final ServiceMetrics metrics;
  private final ResultView view;
  private final ReferenceStatus references;
  private final Readiness readiness;
  private final String authToken;
  private final List<String> openPaths;
  private final String tlsCertFile;
  private final String tlsKeyFile;
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
    this(host, port, authToken, openPaths, "", "", metrics, view, references, readiness);
  }

  /**
   * As above; with {@code tlsCertFile} and {@code tlsKeyFile} (PEM certificate chain and private
   * key) non-empty the server speaks HTTPS only, and start fails naming the file it cannot use.
   */
  public HttpVerticle(
      String host,
      int port,
      String authToken,
      List<String> openPaths,
      String tlsCertFile,
      String tlsKeyFile,
      ServiceMetrics metrics,
      ResultView view,
      ReferenceStatus references,
      Readiness readiness) {
    if (tlsCertFile.isBlank() != tlsKeyFile.isBlank()) {
      throw new IllegalArgumentException(
          CERT_KEY + " and " + KEY_KEY + " go together: set both or neither");
    }
    this.tlsCertFile = tlsCertFile;
    this.tlsKeyFile = tlsKeyFile;
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
    router.delete("/api/v1/experiments/:experiment").handler(rc -> command(rc, "delete"));
    router
        .post("/api/v1/experiments/:experiment/reprocess")
        .handler(rc -> command(rc, "reprocess"));
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
    return serverOptions()
        .compose(
            options -> vertx.createHttpServer(options).requestHandler(router).listen(port, host))
        .onSuccess(s -> server = s);
  }

  /** Plain HTTP, or HTTPS from the PEM files, read and checked here so errors name them. */
  private Future<HttpServerOptions> serverOptions() {
    if (tlsCertFile.isBlank()) {
      return Future.succeededFuture(new HttpServerOptions());
    }
    return vertx.executeBlocking(
        () -> {
          Buffer cert = readPem(CERT_KEY, tlsCertFile, "CERTIFICATE");
          Buffer key = readPem(KEY_KEY, tlsKeyFile, "PRIVATE KEY");
          PemKeyCertOptions pem = new PemKeyCertOptions().setCertValue(cert).setKeyValue(key);
          try {
            pem.getKeyManagerFactory(vertx); // parses the certificate chain and the key
          } catch (Exception e) {
            throw new IllegalStateException(
                CERT_KEY
                    + " = "
                    + tlsCertFile
                    + " and "
                    + KEY_KEY
                    + " = "
                    + tlsKeyFile
                    + ": not a usable certificate and key ("
                    + e
                    + ")",
                e);
          }
          LOG.info("HTTPS on; certificate " + tlsCertFile);
          return new HttpServerOptions().setSsl(true).setKeyCertOptions(pem);
        },
        false);
  }

  private static Buffer readPem(String key, String file, String label) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(Path.of(file));
    } catch (IOException | RuntimeException e) {
      throw new IllegalStateException(key + " = " + file + ": cannot read it (" + e + ")", e);
    }
    String text = new String(bytes, StandardCharsets.US_ASCII);
    if (!text.contains("-----BEGIN ") || !text.contains(label + "-----")) {
      throw new IllegalStateException(
          key + " = " + file + ": not a PEM file with a -----BEGIN " + label + "----- block");
    }
    return Buffer.buffer(bytes);
  }

  /**
   * DELETE an experiment or POST its reprocessing: a command record on the checkpoints topic that
   * the instance owning the experiment carries out. Refused unless a bearer token is configured, so
   * an open API can read but never remove anything.
   */
  private void command(io.vertx.ext.web.RoutingContext rc, String command) {
    if (authToken.isEmpty()) {
      ApiResponses.error(
          rc,
          403,
          command
              + " needs authentication: set probestream.http.auth-token-file (an API without a"
              + " token is read-only)");
      return;
    }
    String experiment = rc.pathParam("experiment");
    vertx
        .eventBus()
        .<JsonObject>request(
            io.probestream.service.intake.IntakeVerticle.COMMANDS_ADDRESS,
            new JsonObject().put("experiment", experiment).put("command", command))
        .onSuccess(reply -> ApiResponses.json(rc, 202, reply.body()))
        .onFailure(
            e -> {
              int code =
                  e instanceof io.vertx.core.eventbus.ReplyException r && r.failureCode() > 0
                      ? r.failureCode()
                      : 503;
              ApiResponses.error(rc, code, e.getMessage());
            });
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
