package io.probestream.service.work;

import io.probestream.service.metrics.ServiceMetrics;
import io.vertx.core.Future;
import io.vertx.core.WorkerExecutor;
import java.util.concurrent.Callable;

/**
 * The bounded worker pool for everything that blocks or computes (ORT, probe math, file I/O,
 * hashing). The pool queues without limit, so the bound is counted here: when {@code maxInFlight}
 * tasks run, intake pauses, and it resumes as they drain. Owned by the intake verticle's event
 * loop; {@link #run} must be called there, and its future completes there.
 */
public final class Workers {
  private final WorkerExecutor executor;
  private final int maxInFlight;
  private final ServiceMetrics metrics;
  private final Runnable pause;
  private final Runnable resume;
  private int inFlight;

  public Workers(
      WorkerExecutor executor,
      int maxInFlight,
      ServiceMetrics metrics,
      Runnable pause,
      Runnable resume) {
    this.executor = executor;
    this.maxInFlight = maxInFlight;
    this.metrics = metrics;
    this.pause = pause;
    this.resume = resume;
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
