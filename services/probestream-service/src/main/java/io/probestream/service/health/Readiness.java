package io.probestream.service.health;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What {@code /health/ready} reports: the broker answered (topics checked) and the consumer has its
 * partitions. Thread-safe; written by the intake side, read by the HTTP verticle.
 */
public final class Readiness {
  private final AtomicBoolean broker = new AtomicBoolean();
  private final AtomicBoolean assigned = new AtomicBoolean();
  private final java.util.concurrent.atomic.AtomicReference<String> device =
      new java.util.concurrent.atomic.AtomicReference<>("none yet");

  /** The device ONNX Runtime ran the latest evaluation on ("cpu", "cuda:0"). */
  public void device(String name) {
    device.set(name);
  }

  public String device() {
    return device.get();
  }

  public void broker(boolean up) {
    broker.set(up);
  }

  public void assigned(boolean has) {
    assigned.set(has);
  }

  public boolean brokerUp() {
    return broker.get();
  }

  public boolean hasAssignment() {
    return assigned.get();
  }

  public boolean ready() {
    return brokerUp() && hasAssignment();
  }
}
