package io.probestream.service.web;

import io.vertx.core.Handler;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.RoutingContext;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;

/**
 * Bearer-token check in front of every route: a path under one of the open prefixes passes; any
 * other needs {@code Authorization: Bearer <token>} or, for the browser's EventSource (which cannot
 * set headers), the query parameter {@code access_token}. The comparison is constant-time; the
 * token is never logged or echoed. A passing {@code access_token} is removed from the query
 * parameters so that routes which reject unknown parameters do not see it. Stateless apart from the
 * counter.
 */
final class AuthHandler implements Handler<RoutingContext> {
  static final String QUERY_PARAMETER = "access_token";
  static final String CHALLENGE = "Bearer realm=\"probestream\"";
  private static final String BEARER = "bearer ";

  private final byte[] token;
  private final List<String> openPaths;

  AuthHandler(String token, List<String> openPaths) {
    if (token.isEmpty()) {
      throw new IllegalArgumentException("AuthHandler needs a token");
    }
    this.token = token.getBytes(StandardCharsets.UTF_8);
    this.openPaths = List.copyOf(openPaths);
  }

  @Override
  public void handle(RoutingContext rc) {
    // The router matches on the normalized path, so the check must too ("/health/../api" is /api).
    String path = rc.normalizedPath();
    for (String open : openPaths) {
      if (path.startsWith(open)) {
        rc.next();
        return;
      }
    }
    String header = rc.request().getHeader("Authorization");
    List<String> query = rc.queryParams().getAll(QUERY_PARAMETER);
    boolean ok;
    if (header != null) {
      ok =
          header.regionMatches(true, 0, BEARER, 0, BEARER.length())
              && matches(header.substring(BEARER.length()).trim());
    } else {
      ok = query.size() == 1 && matches(query.get(0));
    }
    if (!ok) {
      rc.response().putHeader("WWW-Authenticate", CHALLENGE);
      ApiResponses.json(
          rc,
          401,
          new JsonObject()
              .put("error", "unauthorized")
              .put(
                  "message",
                  "this path needs Authorization: Bearer <token> or ?"
                      + QUERY_PARAMETER
                      + "=<token>")
              .put("status", 401));
      return;
    }
    rc.queryParams().remove(QUERY_PARAMETER);
    rc.next();
  }

  private boolean matches(String given) {
    return MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), token);
  }
}
