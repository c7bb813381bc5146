package io.probestream.service.work;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.metrics.ServiceMetrics;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.Callable;
import java.util.logging.Logger;

/**
 * The bounded worker pool for everything that blocks or computes (ORT, probe math, file I/O,
 * hashing). The pool queues without limit, so the bound is counted here: when {@code maxInFlight}
 * tasks run, intake pauses, and it resumes as they drain. Owned by the intake verticle's event
 * loop; {@link #run} must be called there, and its future completes there.
 */
public final class Workers {
  private static final Logger LOG = Logger.getLogger(Workers.class.getName());

  private final Vertx vertx;
  private final ProbestreamConfig.Retries retries;
  private final WorkerExecutor executor;
  private final int maxInFlight;
  private final ServiceMetrics metrics;
  private final Runnable pause;
  private final Runnable resume;
  private int inFlight;

  public Workers(
      Vertx vertx,
      ProbestreamConfig.Retries retries,
      WorkerExecutor executor,
      int maxInFlight,
      ServiceMetrics metrics,
      Runnable pause,
      Runnable resume) {
    this.vertx = vertx;
    this.retries = retries;
    this.executor = executor;
    this.maxInFlight = maxInFlight;
    this.metrics = metrics;
    this.pause = pause;
    this.resume = resume;
  }

  /**
   * Runs {@code task}, and again after a doubling backoff when it fails with an I/O error, at most
   * {@code probestream.retries.max-attempts} times in all; the last failure is what the future
   * fails with (and the record is dead-lettered as {@code retries_exhausted}).
   */
  public <T> Future<T> runRetrying(Callable<T> task) {
    return runRetrying(task, retries.maxAttempts(), retries.backoffMs());
  }

  private <T> Future<T> runRetrying(Callable<T> task, int attempts, long backoffMs) {
    return run(task)
        .recover(
            e -> {
              boolean transient_ = e instanceof IOException || e instanceof UncheckedIOException;
              if (!transient_ || attempts <= 1) {
                return Future.failedFuture(e);
              }
              LOG.warning("retrying after " + backoffMs + " ms: " + e);
              Promise<T> later = Promise.promise();
              vertx.setTimer(
                  Math.max(1, backoffMs),
                  id -> runRetrying(task, attempts - 1, backoffMs * 2).onComplete(later));
              return later.future();
            });
  }

  public <T> Future<T> run(Callable<T> task) {
    if (++inFlight >= maxInFlight) {
      pause.run(); // idempotent
    }
    metrics.inFlight(inFlight);
    return executor
        .executeBlocking(task, false)
        .andThen(
            done -> {
              if (--inFlight < maxInFlight) {
                resume.run(); // idempotent: intake resumes only if it was paused
              }
              metrics.inFlight(inFlight);
            });
  }

  public int inFlight() {
    return inFlight;
  }

  public Future<Void> close() {
    return executor.close();
  }
}
