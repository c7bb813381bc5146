package io.probestream.service;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.health.Readiness;
import io.probestream.service.intake.IntakeVerticle;
import io.probestream.service.kafka.KafkaSettings;
import io.probestream.service.kafka.TopicAdmin;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.web.HttpVerticle;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.logging.Logger;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;

/**
 * The streaming service, wired: checks the topics, creates the producer, deploys the intake and
 * HTTP verticles. {@link #stop} undoes it in reverse (consumer, then producer). Not thread-safe:
 * start and stop from one thread.
 */
public final class ProbestreamService {
  private static final Logger LOG = Logger.getLogger(ProbestreamService.class.getName());

  private final Vertx vertx;
  private final Producer<byte[], byte[]> producer;
  private final ServiceMetrics metrics;
  private final ResultPublisher results;
  private final Readiness readiness;
  private final List<String> deployments;
  private final int httpPort;

  private ProbestreamService(
      Vertx vertx,
      Producer<byte[], byte[]> producer,
      ServiceMetrics metrics,
      ResultPublisher results,
      Readiness readiness,
      List<String> deployments,
      int httpPort) {
    this.vertx = vertx;
    this.producer = producer;
    this.metrics = metrics;
    this.results = results;
    this.readiness = readiness;
    this.deployments = deployments;
    this.httpPort = httpPort;
  }

  /** Starts the service against {@code bootstrap}; fails if the broker does not answer. */
  public static Future<ProbestreamService> start(
      Vertx vertx, ProbestreamConfig config, String bootstrap) {
    ServiceMetrics metrics = new ServiceMetrics();
    Readiness readiness = new Readiness();
    return vertx
        .executeBlocking(
            () -> {
              java.nio.file.Files.createDirectories(config.dataDir());
              List<String> created = TopicAdmin.ensureTopics(config, bootstrap);
              if (!created.isEmpty()) {
                LOG.info("created topics " + created);
              }
              return new KafkaProducer<byte[], byte[]>(KafkaSettings.producer(config, bootstrap));
            })
        .recover(
            e ->
                Future.failedFuture(
                    new IllegalStateException(
                        "Kafka at " + bootstrap + " did not answer: " + e.getMessage(), e)))
        .compose(
            producer -> {
              readiness.broker(true);
              ResultPublisher results =
                  new ResultPublisher(producer, config.topicNames().results(), metrics);
              results.addListener(
                  r -> vertx.eventBus().publish(HttpVerticle.RESULTS_ADDRESS, r.toJson()));
              IntakeVerticle intake =
                  new IntakeVerticle(config, bootstrap, producer, metrics, results, readiness);
              HttpVerticle http =
                  new HttpVerticle(
                      config.http().host(), config.http().port(), metrics, results, readiness);
              return vertx
                  .deployVerticle(http)
                  .compose(
                      httpId ->
                          vertx
                              .deployVerticle(intake)
                              .map(
                                  intakeId ->
                                      new ProbestreamService(
                                          vertx,
                                          producer,
                                          metrics,
                                          results,
                                          readiness,
                                          List.of(intakeId, httpId),
                                          http.actualPort())))
                  .recover(
                      e -> {
                        producer.close(Duration.ofSeconds(5));
                        return Future.failedFuture(e);
                      });
            });
  }

  public int httpPort() {
    return httpPort;
  }

  public ResultPublisher results() {
    return results;
  }

  public ServiceMetrics metrics() {
    return metrics;
  }

  public Readiness readiness() {
    return readiness;
  }

  /** Stops intake (committing what is done), the HTTP server, then the producer. */
  public Future<Void> stop() {
    Future<Void> chain = Future.succeededFuture();
    for (String id : deployments) {
      chain = chain.transform(x -> vertx.undeploy(id));
    }
    return chain.transform(
        x ->
            vertx.executeBlocking(
                () -> {
                  producer.close(Duration.ofSeconds(10));
                  return null;
                }));
  }
}
