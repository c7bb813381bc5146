package io.probestream.service.web;

import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;

/** How every route writes JSON, and the one shape of an API error. Stateless. */
final class ApiResponses {
  static final String JSON = "application/json";

  private ApiResponses() {}

  static void json(RoutingContext rc, int status, String body) {
    rc.response().setStatusCode(status).putHeader("content-type", JSON).end(body);
  }

  static void json(RoutingContext rc, int status, JsonObject body) {
    json(rc, status, body.encode());
  }

  /** {@code {"error": message, "status": status}}. */
  static void error(RoutingContext rc, int status, String message) {
    json(rc, status, new JsonObject().put("error", message).put("status", status));
  }
}
