package io.probestream.service.web;

import io.probestream.service.health.Readiness;
import io.vertx.core.Handler;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/** {@code GET /health/ready}: 200 once the broker answered and intake has partitions, else 503. */
final class ReadyRoute implements Handler<RoutingContext> {
  private final Readiness readiness;

  ReadyRoute(Readiness readiness) {
    this.readiness = readiness;
  }

  @Override
  public void handle(RoutingContext rc) {
    boolean ready = readiness.ready();
    JsonObject body =
        new JsonObject()
            .put("status", ready ? "UP" : "DOWN")
            .put("broker", readiness.brokerUp())
            .put("assigned", readiness.hasAssignment())
            .put("device", readiness.device());
    ApiResponses.json(rc, ready ? 200 : 503, body);
  }
}
