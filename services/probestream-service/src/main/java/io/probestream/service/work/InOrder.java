package io.probestream.service.work;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * Lets work run side by side but hands each outcome on in arrival order per key: {@link #after}
 * runs its continuation only once the continuation of the key's previous entry has run (whatever
 * that one's outcome). Confined to one event loop.
 */
public final class InOrder {
  private final Map<String, Future<Void>> last = new HashMap<>();

  /**
   * Runs {@code then} with {@code work}'s result after the previous entry of {@code key} was handed
   * on; a failed {@code work} (or a {@code then} that throws) fails the returned future and still
   * lets the next entry go.
   */
  public <T> Future<Void> after(String key, Future<T> work, Function<T, Future<Void>> then) {
    Future<Void> previous = last.getOrDefault(key, Future.succeededFuture());
    Promise<Void> handedOn = Promise.promise();
    Future<Void> done =
        previous
            .transform(x -> work)
            .transform(
                r -> {
                  try {
                    return r.failed()
                        ? Future.<Void>failedFuture(r.cause())
                        : then.apply(r.result());
                  } catch (RuntimeException e) {
                    return Future.<Void>failedFuture(e);
                  } finally {
                    handedOn.complete();
                  }
                });
    last.put(key, handedOn.future());
    handedOn.future().onComplete(x -> last.remove(key, handedOn.future()));
    return done;
  }
}
