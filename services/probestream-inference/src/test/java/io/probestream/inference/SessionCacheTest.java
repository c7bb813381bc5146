package io.probestream.inference;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.testkit.Mlp;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The session cache on real ORT sessions of generated models. */
class SessionCacheTest {
  private static final byte[] A = Mlp.random(1, 4, 8, 3).onnx();
  private static final byte[] B = Mlp.random(2, 4, 8, 3).onnx();

  private static ModelSession open(byte[] model, AtomicInteger opened) {
    opened.incrementAndGet();
    return ModelSession.open(model, "input", List.of("logits"), Device.CPU, 1);
  }

  private static float[] logits(ModelSession s) {
    return s.run(new float[] {1, 2, 3, 4}, new long[] {1, 4}).get("logits").values();
  }

  @Test
  void aSecondEvaluationOfTheSameModelReusesTheSession() {
    AtomicInteger opened = new AtomicInteger();
    try (SessionCache cache = new SessionCache(1 << 20)) {
      try (SessionCache.Lease l = cache.acquire("a", A.length, () -> open(A, opened))) {
        logits(l.session());
      }
      try (SessionCache.Lease l = cache.acquire("a", A.length, () -> open(A, opened))) {
        logits(l.session());
      }
      assertThat(opened).hasValue(1);
      assertThat(cache.hits()).isEqualTo(1);
      assertThat(cache.misses()).isEqualTo(1);
    }
  }

  @Test
  void overBudgetTheLeastRecentlyUsedIdleSessionGoes() {
    AtomicInteger opened = new AtomicInteger();
    // Room for one model's estimated cost (2 bytes of native memory per model byte), not two.
    try (SessionCache cache = new SessionCache(2L * Math.max(A.length, B.length) + 1)) {
      cache.acquire("a", A.length, () -> open(A, opened)).close();
      cache.acquire("b", B.length, () -> open(B, opened)).close();
      assertThat(cache.size()).isEqualTo(1); // a was evicted and closed
      cache.acquire("a", A.length, () -> open(A, opened)).close();
      assertThat(opened).hasValue(3);
    }
  }

  @Test
  void aSessionEvictedWhileInUseKeepsWorkingUntilReleased() {
    AtomicInteger opened = new AtomicInteger();
    SessionCache cache = new SessionCache(0);
    try (SessionCache.Lease l = cache.acquire("a", A.length, () -> open(A, opened))) {
      assertThat(cache.size()).isZero(); // evicted at once: the budget is 0
      float[] first = logits(l.session()); // still open: closing it here would crash the JVM
      cache.close(); // a shutdown while the run is in flight
      assertThat(logits(l.session())).containsExactly(first);
    }
  }
}
