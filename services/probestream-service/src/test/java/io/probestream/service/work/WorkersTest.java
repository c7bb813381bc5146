package io.probestream.service.work;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.metrics.ServiceMetrics;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class WorkersTest {
  private final Vertx vertx = Vertx.vertx();
  private final List<String> signals = new ArrayList<>();

  @AfterEach
  void close() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** Runs {@code body} on an event loop with a fresh Workers and waits for its future. */
  private <T> CompletableFuture<T> onLoop(
      int maxInFlight, int attempts, Function<Workers, Future<T>> body) {
    CompletableFuture<T> out = new CompletableFuture<>();
    vertx.runOnContext(
        v -> {
          Workers w =
              new Workers(
                  vertx,
                  new ProbestreamConfig.Retries(attempts, 1),
                  vertx.createSharedWorkerExecutor("test-workers", 2),
                  maxInFlight,
                  new ServiceMetrics(),
                  () -> signals.add("pause"),
                  () -> signals.add("resume"));
          body.apply(w)
              .onComplete(
                  ar -> {
                    if (ar.succeeded()) {
                      out.complete(ar.result());
                    } else {
                      out.completeExceptionally(ar.cause());
                    }
                  });
        });
    return out;
  }

  @Test
  void ioFailuresAreRetriedUpToTheLimit() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    String result =
        onLoop(
                8,
                3,
                w ->
                    w.runRetrying(
                        () -> {
                          if (calls.incrementAndGet() < 3) {
                            throw new IOException("disk hiccup " + calls.get());
                          }
                          return "ok";
                        }))
            .get(10, TimeUnit.SECONDS);
    assertThat(result).isEqualTo("ok");
    assertThat(calls).hasValue(3);
  }

  @Test
  void theLastIoFailureIsReportedOnceAttemptsRunOut() {
    AtomicInteger calls = new AtomicInteger();
    CompletableFuture<Object> f =
        onLoop(
            8,
            2,
            w ->
                w.runRetrying(
                    () -> {
                      throw new IOException("attempt " + calls.incrementAndGet());
                    }));
    assertThat(f)
        .failsWithin(10, TimeUnit.SECONDS)
        .withThrowableThat()
        .withMessageContaining("attempt 2");
    assertThat(calls).hasValue(2);
  }

  @Test
  void poisonIsNeverRetried() {
    AtomicInteger calls = new AtomicInteger();
    CompletableFuture<Object> f =
        onLoop(
            8,
            5,
            w ->
                w.runRetrying(
                    () -> {
                      calls.incrementAndGet();
                      throw new IllegalArgumentException("bad input");
                    }));
    assertThat(f).failsWithin(10, TimeUnit.SECONDS);
    assertThat(calls).hasValue(1);
  }

  @Test
  void intakePausesAtTheBoundAndResumesAsTasksDrain() throws Exception {
    // Both tasks block until released, so both are in flight when the second is submitted.
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.Callable<Integer> blocked =
        () -> {
          release.await(10, TimeUnit.SECONDS);
          return 1;
        };
    CompletableFuture<Object> done =
        onLoop(
            2,
            1,
            w -> {
              Future<Object> both = Future.all(w.run(blocked), w.run(blocked)).map(x -> null);
              release.countDown();
              return both;
            });
    done.get(10, TimeUnit.SECONDS);
    // The second task reaches the bound of 2 and pauses; the first to finish resumes.
    assertThat(signals.subList(0, 2)).containsExactly("pause", "resume");
  }
}
