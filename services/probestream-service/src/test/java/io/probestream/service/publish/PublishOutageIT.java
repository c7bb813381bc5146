package io.probestream.service.publish;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.embedded.EmbeddedKafka;
import io.probestream.service.dlq.DeadLetterPublisher;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.record.InputRecord;
import io.probestream.service.view.ResultView;
import io.probestream.testkit.KafkaTestCluster;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * A broker outage longer than the producer's delivery.timeout.ms (shortened here to 3 s; 120 s by
 * default): a result or dead letter sent during it is sent again until the broker is back, rather
 * than failing, which would dead-letter a valid checkpoint for the broker's absence (and, for a
 * dead letter, leave its offset uncommitted for good).
 */
class PublishOutageIT {
  private static final int DELIVERY_TIMEOUT_MS = 3000;

  @Test
  void sendsOutliveAnOutageLongerThanTheDeliveryTimeout() throws Exception {
    Path kafkaDir = Files.createTempDirectory("probestream-outage-kafka-");
    EmbeddedKafka broker =
        EmbeddedKafka.start(EmbeddedKafka.Options.defaults().withDataDir(kafkaDir));
    int port = broker.port();
    KafkaTestCluster cluster = new KafkaTestCluster(broker.bootstrapServers(), "outage-");
    String results = cluster.topicPrefix() + "results";
    String dlq = cluster.topicPrefix() + "dlq";
    cluster.createTopics(results, dlq);
    Vertx vertx = Vertx.vertx();
    Map<String, Object> p = new HashMap<>();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "1000");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Integer.toString(DELIVERY_TIMEOUT_MS));
    try (Producer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      ServiceMetrics metrics = new ServiceMetrics();
      ResultPublisher publisher =
          new ResultPublisher(producer, results, metrics, new ResultView(10, 100));
      DeadLetterPublisher deadLetters = new DeadLetterPublisher(producer, dlq, metrics);
      Context context = vertx.getOrCreateContext();
      // a first result while the broker is up: metadata known, producer id assigned
      on(context, () -> publisher.publish(context, List.of(result(1)))).get(30, TimeUnit.SECONDS);
      on(context, () -> deadLetter(deadLetters, context, 6)).get(30, TimeUnit.SECONDS);

      broker.close();
      CompletableFuture<Void> result =
          on(context, () -> publisher.publish(context, List.of(result(2))));
      CompletableFuture<Void> deadLetter = on(context, () -> deadLetter(deadLetters, context, 7));
      Thread.sleep(2L * DELIVERY_TIMEOUT_MS + 1000);
      assertThat(result).as("result publish during the outage").isNotDone();
      assertThat(deadLetter).as("dead letter during the outage").isNotDone();

      broker =
          EmbeddedKafka.start(
              EmbeddedKafka.Options.defaults().withBrokerPort(port).withDataDir(kafkaDir));
      result.get(60, TimeUnit.SECONDS);
      deadLetter.get(60, TimeUnit.SECONDS);

      List<ConsumerRecord<byte[], byte[]>> out =
          cluster.readAll(results, 2, Duration.ofSeconds(30));
      assertThat(out.stream().map(r -> header(r, Headers.ID)).distinct().toList())
          .containsExactly(result(1).id(), result(2).id());
      List<ConsumerRecord<byte[], byte[]>> dead = cluster.readAll(dlq, 2, Duration.ofSeconds(30));
      assertThat(dead.stream().map(r -> header(r, Headers.DLQ_SOURCE_OFFSET)).distinct().toList())
          .containsExactly("6", "7");
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      broker.close();
      deleteTree(kafkaDir);
    }
  }

  /** Dead-letters an input record at {@code offset} of topic "in". */
  private static Future<Void> deadLetter(DeadLetterPublisher dlq, Context context, long offset) {
    return dlq.send(
        context,
        new InputRecord(
            new ConsumerRecord<>("in", 0, offset, utf8("e"), utf8("{\"not\":\"a manifest\"}"))),
        DlqReason.INVALID_MANIFEST,
        new IllegalArgumentException("bad"));
  }

  /** Runs {@code send} on the context and hands its outcome to the test thread. */
  private static CompletableFuture<Void> on(Context context, Supplier<Future<Void>> send) {
    CompletableFuture<Void> done = new CompletableFuture<>();
    context.runOnContext(
        v ->
            send.get()
                .onComplete(
                    x -> {
                      if (x.succeeded()) {
                        done.complete(null);
                      } else {
                        done.completeExceptionally(x.cause());
                      }
                    }));
    return done;
  }

  private static ProbeResult result(long step) {
    return ProbeResult.of(
        "e",
        "r",
        step,
        "m",
        "ref",
        "neural_collapse",
        "h1",
        "reference",
        Map.of("nc1", 0.5),
        Map.of("reduction", "none"),
        null,
        "cpu",
        Instant.parse("2026-11-25T00:00:00Z"),
        1);
  }

  private static String header(ConsumerRecord<byte[], byte[]> r, String name) {
    var h = r.headers().lastHeader(name);
    return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path q : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(q);
      }
    }
  }
}
