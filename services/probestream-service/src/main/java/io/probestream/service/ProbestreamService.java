package io.probestream.service;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.health.Readiness;
import io.probestream.service.intake.IntakeVerticle;
import io.probestream.service.kafka.KafkaSettings;
import io.probestream.service.kafka.TopicAdmin;
import io.probestream.service.kafka.TransactionalProducer;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.view.ReferenceBoard;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.ResultViewLoader;
import io.probestream.service.web.HttpVerticle;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.SslAuthenticationException;

/**
 * The streaming service, wired: checks the topics, creates the producer, rebuilds the results view
 * from the results topic, deploys the HTTP and intake verticles. {@link #stop} undoes it in reverse
 * (consumer, then producer). Not thread-safe: start and stop from one thread.
 */
public final class ProbestreamService {
  private static final Logger LOG = Logger.getLogger(ProbestreamService.class.getName());

  /** The rebuild fails when the results topic yields no record for this long short of its end. */
  private static final Duration REBUILD_STALL = Duration.ofSeconds(30);

  private final Vertx vertx;
  private final Producer<byte[], byte[]> producer;
  private final ServiceMetrics metrics;
  private final ResultPublisher results;
  private final ResultView view;
  private final Readiness readiness;
  private final List<String> deployments;
  private final int httpPort;

  private ProbestreamService(
      Vertx vertx,
      Producer<byte[], byte[]> producer,
      ServiceMetrics metrics,
      ResultPublisher results,
      ResultView view,
      Readiness readiness,
      List<String> deployments,
      int httpPort) {
    this.vertx = vertx;
    this.producer = producer;
    this.metrics = metrics;
    this.results = results;
    this.view = view;
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
              // Read the JSON Schemas here, off the event loop; later Schemas.get() calls are
              // cached.
              io.probestream.service.schema.Schemas.get();
              List<String> created = TopicAdmin.ensureTopics(config, bootstrap);
              if (!created.isEmpty()) {
                LOG.info("created topics " + created);
              }
              Map<String, Object> settings = KafkaSettings.producer(config, bootstrap);
              if (!config.kafka().exactlyOnce()) {
                return new KafkaProducer<byte[], byte[]>(settings);
              }
              settings.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId(config));
              settings.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "10000");
              // initTransactions and commitTransaction wait up to max.block.ms (on the state
              // executor, not an event loop); a fresh cluster's transaction coordinator may take
              // seconds to appear.
              settings.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
              return new TransactionalProducer(new KafkaProducer<byte[], byte[]>(settings));
            })
        .recover(e -> Future.failedFuture(brokerFailure(config, bootstrap, e)))
        .compose(
            producer -> {
              readiness.broker(true);
              ResultView view =
                  new ResultView(
                      ResultView.DEFAULT_MAX_EXPERIMENTS,
                      ResultView.DEFAULT_MAX_RESULTS_PER_EXPERIMENT);
              return rebuildView(vertx, config, bootstrap, config.topicNames().results(), view)
                  .compose(
                      loaded ->
                          deploy(vertx, config, bootstrap, producer, metrics, view, readiness))
                  .recover(
                      e -> {
                        producer.close(Duration.ofSeconds(5));
                        return Future.failedFuture(e);
                      });
            });
  }

  /**
   * The transactional id of this instance: stable across restarts on the same host and data dir, so
   * a restarted instance fences its killed predecessor and aborts its open transaction at once.
   */
  static String transactionalId(ProbestreamConfig config) {
    String host;
    try {
      host = java.net.InetAddress.getLocalHost().getHostName();
    } catch (java.io.IOException e) {
      host = "localhost";
    }
    String where =
        io.probestream.contracts.result.ProbeResult.sha256Hex(
            (host + "|" + config.dataDir()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
    return "probestream-" + config.kafka().groupId() + "-" + where.substring(0, 16);
  }

  /** Why the first contact with the broker failed; a refused login names the settings to fix. */
  private static IllegalStateException brokerFailure(
      ProbestreamConfig config, String bootstrap, Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof AuthenticationException) {
        String check =
            t instanceof SslAuthenticationException
                ? "probestream.kafka.ssl-truststore-file and the broker's certificate"
                : "probestream.kafka.sasl-username, probestream.kafka.sasl-password-file and"
                    + " probestream.kafka.sasl-mechanism";
        return new IllegalStateException(
            "Kafka at "
                + bootstrap
                + " refused the connection: "
                + t.getMessage()
                + " (check "
                + check
                + "; now "
                + config.kafkaSecurity()
                + ")",
            e);
      }
    }
    return new IllegalStateException(
        "Kafka at " + bootstrap + " did not answer: " + e.getMessage(), e);
  }

  /** Reads the results topic into {@code view} on a pool of its own, before anything publishes. */
  private static Future<ResultViewLoader.Loaded> rebuildView(
      Vertx vertx, ProbestreamConfig config, String bootstrap, String topic, ResultView view) {
    // A large topic may take minutes; a pool of its own keeps that off the shared worker pool
    // and its blocked-thread warnings.
    WorkerExecutor pool =
        vertx.createSharedWorkerExecutor("probestream-view-rebuild", 1, 30, TimeUnit.MINUTES);
    long started = System.nanoTime();
    return pool.<ResultViewLoader.Loaded>executeBlocking(
            () -> {
              try (KafkaConsumer<byte[], byte[]> consumer =
                  new KafkaConsumer<>(
                      KafkaSettings.reader(config, bootstrap, "probestream-view-rebuild"))) {
                return ResultViewLoader.load(consumer, topic, view, REBUILD_STALL);
              }
            })
        .onSuccess(
            loaded ->
                LOG.info(
                    "results view: loaded "
                        + view.size()
                        + " results of "
                        + view.experiments().size()
                        + " experiments from "
                        + loaded.records()
                        + " records of "
                        + topic
                        + " ("
                        + loaded.skipped()
                        + " not results) in "
                        + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)
                        + " ms"))
        .andThen(done -> pool.close());
  }

  private static Future<ProbestreamService> deploy(
      Vertx vertx,
      ProbestreamConfig config,
      String bootstrap,
      Producer<byte[], byte[]> producer,
      ServiceMetrics metrics,
      ResultView view,
      Readiness readiness) {
    ResultPublisher results =
        new ResultPublisher(producer, config.topicNames().results(), metrics, view);
    results.addListener(r -> vertx.eventBus().publish(HttpVerticle.RESULTS_ADDRESS, r.toJson()));
    results.addListener(r -> readiness.device(r.device()));
    ReferenceBoard references = new ReferenceBoard();
    IntakeVerticle intake =
        new IntakeVerticle(config, bootstrap, producer, metrics, results, readiness, references);
    HttpVerticle http =
        new HttpVerticle(
            config.http().host(),
            config.http().port(),
            config.http().authToken(),
            config.http().openPaths(),
            config.http().tlsCertFile(),
            config.http().tlsKeyFile(),
            metrics,
            view,
            references,
            readiness);
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
                                view,
                                readiness,
                                List.of(intakeId, httpId),
                                http.actualPort())));
  }

  public int httpPort() {
    return httpPort;
  }

  public ResultPublisher results() {
    return results;
  }

  /** The results the HTTP API serves. */
  public ResultView view() {
    return view;
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
