package io.probestream.service.web;

import io.vertx.core.Handler;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code GET /api/v1/stream}: server-sent events, one {@code result} event per acknowledged result.
 * Owned by the HTTP verticle: every method runs on its event loop.
 */
final class StreamRoute implements Handler<RoutingContext> {
  private final Set<HttpServerResponse> streams = new HashSet<>();

  @Override
  public void handle(RoutingContext rc) {
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

  /** Sends one result document to every open stream. */
  void broadcast(String json) {
    for (HttpServerResponse res : List.copyOf(streams)) {
      if (res.writeQueueFull()) {
        continue; // a slow reader misses results rather than growing our heap
      }
      res.write("event: result\ndata: " + json + "\n\n");
    }
  }

  /** Ends every open stream, for the verticle's stop. */
  void closeAll() {
    for (HttpServerResponse res : List.copyOf(streams)) {
      res.end();
    }
    streams.clear();
  }
}
