package io.probestream.cli;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.embedded.EmbeddedKafka;
import io.probestream.service.ProbestreamService;
import io.probestream.service.kafka.KafkaSettings;
import io.vertx.core.Vertx;
import java.io.PrintWriter;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A running service: the embedded broker (if any), Vert.x and the service, stopped in reverse order
 * (Kafka clients before the broker). Owned by the command that started it.
 */
final class ServiceRuntime implements AutoCloseable {
  final EmbeddedKafka broker; // null against an external cluster
  final String bootstrap;
  final Vertx vertx;
  final ProbestreamService service;
  private boolean closed;

  private ServiceRuntime(
      EmbeddedKafka broker, String bootstrap, Vertx vertx, ProbestreamService service) {
    this.broker = broker;
    this.bootstrap = bootstrap;
    this.vertx = vertx;
    this.service = service;
  }

  static ServiceRuntime start(ProbestreamConfig config, PrintWriter err) throws Exception {
    EmbeddedKafka broker = null;
    String bootstrap = config.kafka().bootstrapServers();
    if (config.kafka().embedded()) {
      err.println("probestream: starting the embedded Kafka broker…");
      broker =
          EmbeddedKafka.start(
              EmbeddedKafka.Options.defaults()
                  .withBrokerPort(config.kafka().port())
                  .withDataDir(config.dataDir().resolve("kafka"))
                  .withMaxMessageBytes(
                      (int)
                          Math.min(
                              Integer.MAX_VALUE,
                              config.limits().maxBatchBytes() + KafkaSettings.SLACK_BYTES)));
      bootstrap = broker.bootstrapServers();
    }
    Vertx vertx = Vertx.vertx();
    try {
      ProbestreamService service =
          ProbestreamService.start(vertx, config, bootstrap)
              .toCompletionStage()
              .toCompletableFuture()
              .get(120, TimeUnit.SECONDS);
      return new ServiceRuntime(broker, bootstrap, vertx, service);
    } catch (Exception e) {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      if (broker != null) {
        broker.close();
      }
      throw e;
    }
  }

  /** Blocks until the JVM is asked to stop (Ctrl-C, SIGTERM), then stops everything cleanly. */
  void runUntilStopped(PrintWriter err) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              err.println("probestream: stopping…");
              err.flush();
              close();
              stopped.countDown();
            },
            "probestream-shutdown");
    java.lang.Runtime.getRuntime().addShutdownHook(hook);
    stopped.await();
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      service.stop().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("probestream: service stop: " + e.getMessage());
    }
    try {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      System.err.println("probestream: vert.x stop: " + e.getMessage());
    }
    if (broker != null) {
      try {
        broker.close();
      } catch (java.io.IOException e) {
        System.err.println("probestream: broker stop: " + e.getMessage());
      }
    }
  }
}
