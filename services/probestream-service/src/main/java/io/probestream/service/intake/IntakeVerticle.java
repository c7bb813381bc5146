package io.probestream.service.intake;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.safetensors.SafetensorsException;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.inference.InferenceException;
import io.probestream.service.dlq.DeadLetterPublisher;
import io.probestream.service.engine.CheckpointEngine;
import io.probestream.service.engine.LiveSplits;
import io.probestream.service.health.Readiness;
import io.probestream.service.ingest.BlobIngest;
import io.probestream.service.ingest.ReferenceIngest;
import io.probestream.service.kafka.KafkaSettings;
import io.probestream.service.kafka.OffsetTracker;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.store.BlobStore;
import io.probestream.service.store.ReferenceStore;
import io.probestream.service.view.ReferenceBoard;
import io.probestream.service.work.Workers;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.kafka.client.consumer.KafkaConsumer;
import io.vertx.kafka.client.consumer.KafkaConsumerRecord;
import io.vertx.kafka.client.consumer.OffsetAndMetadata;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;

/**
 * Consumes the three input topics with one consumer (so an experiment's records meet on one
 * instance), routes each record to blob, reference or checkpoint handling, dead-letters what is
 * poison, and commits a partition's offset only past records whose effects are durable. Pauses
 * intake while the worker pool is full. Every field is touched on this verticle's event loop only.
 */
public final class IntakeVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(IntakeVerticle.class.getName());
  private static final long COMMIT_INTERVAL_MS = 500;

  private final ProbestreamConfig config;
  private final String bootstrap;
  private final Producer<byte[], byte[]> producer;
  private final ServiceMetrics metrics;
  private final ResultPublisher publisher;
  private final Readiness readiness;
  private final ReferenceBoard board;
  private final Topics topics;
  private final OffsetTracker offsets = new OffsetTracker();
  private final Set<TopicPartition> assigned = new HashSet<>();

  private KafkaConsumer<byte[], byte[]> consumer;
  private Workers workers;
  private DeadLetterPublisher deadLetters;
  private BlobIngest blobIngest;
  private ReferenceIngest referenceIngest;
  private CheckpointEngine engine;
  private LiveSplits live;
  private boolean paused;
  private boolean committing;
  private long commitTimer = -1;
  private long expiryTimer = -1;

  public IntakeVerticle(
      ProbestreamConfig config,
      String bootstrap,
      Producer<byte[], byte[]> producer,
      ServiceMetrics metrics,
      ResultPublisher publisher,
      Readiness readiness,
      ReferenceBoard board) {
    this.config = config;
    this.bootstrap = bootstrap;
    this.producer = producer;
    this.metrics = metrics;
    this.publisher = publisher;
    this.readiness = readiness;
    this.board = board;
    this.topics = config.topicNames();
  }

  @Override
  public Future<?> start() {
    workers =
        new Workers(
            vertx,
            config.retries(),
            vertx.createSharedWorkerExecutor("probestream-inference", config.workers().threads()),
            config.workers().maxInFlight(),
            metrics,
            this::pauseIntake,
            this::resumeIntake);
    deadLetters = new DeadLetterPublisher(producer, topics.dlq(), metrics);
    BlobStore blobStore = new BlobStore(config.dataDir(), config.blobs().storeBytes());
    blobStore.pinnedBy(sha -> engine.waitsFor(sha)); // blobs of waiting checkpoints stay
    ReferenceStore referenceStore = new ReferenceStore(config.dataDir());
    referenceIngest =
        new ReferenceIngest(
            referenceStore, workers, config.limits(), board, e -> engine.onReferenceComplete(e));
    blobIngest =
        new BlobIngest(
            blobStore,
            workers,
            config.limits(),
            sha -> engine.onBlob(sha),
            (sha, cause) -> engine.onBlobFailed(sha, cause));
    engine =
        new CheckpointEngine(
            context, config, workers, blobStore, referenceIngest, publisher, metrics);
    live = new LiveSplits(context, config, workers, engine, publisher);
    List<String> reasons = new java.util.ArrayList<>();
    for (DlqReason r : DlqReason.values()) {
      reasons.add(r.code());
    }
    metrics.initDlqReasons(reasons);

    return vertx
        .executeBlocking(
            () -> {
              Map<String, BlobStore.Partial> partial = blobStore.open();
              Map<String, List<ReferenceIngest.Restored>> sets =
                  ReferenceIngest.scan(referenceStore.open());
              return Map.entry(partial, sets);
            })
        .compose(
            restored -> {
              blobIngest.restore(restored.getKey());
              referenceIngest.restore(restored.getValue());
              blobIngest.resumeAssembly();
              LOG.info(
                  "restored "
                      + restored.getValue().size()
                      + " reference set(s) and "
                      + restored.getKey().size()
                      + " partial blob(s) from "
                      + config.dataDir());
              return subscribe();
            })
        .onSuccess(
            v -> {
              commitTimer = vertx.setPeriodic(COMMIT_INTERVAL_MS, id -> commit());
              long every = Math.max(100, Math.min(1000, config.pending().maxAgeMs() / 4));
              expiryTimer =
                  vertx.setPeriodic(
                      every,
                      id -> {
                        engine.expire();
                        live.expire();
                        blobIngest.expire(config.pending().maxAgeMs());
                      });
            });
  }

  private Future<Void> subscribe() {
    consumer = KafkaConsumer.create(vertx, KafkaSettings.consumer(config, bootstrap));
    consumer.partitionsAssignedHandler(
        set -> {
          set.forEach(tp -> assigned.add(new TopicPartition(tp.getTopic(), tp.getPartition())));
          readiness.assigned(!assigned.isEmpty());
          LOG.info("assigned " + assigned.size() + " partition(s)");
        });
    consumer.partitionsRevokedHandler(
        set -> {
          List<TopicPartition> gone = new java.util.ArrayList<>();
          set.forEach(tp -> gone.add(new TopicPartition(tp.getTopic(), tp.getPartition())));
          gone.forEach(assigned::remove);
          offsets.revoke(gone);
          readiness.assigned(!assigned.isEmpty());
        });
    consumer.exceptionHandler(e -> LOG.log(Level.WARNING, "Kafka consumer: " + e.getMessage(), e));
    consumer.handler(this::handle);
    return consumer.subscribe(new HashSet<>(topics.inputs()));
  }

  private void handle(KafkaConsumerRecord<byte[], byte[]> kr) {
    InputRecord r = new InputRecord(kr.record());
    TopicPartition tp = r.partition();
    long offset = kr.offset();
    offsets.begin(tp, offset);
    metrics.consumed(kr.topic());
    Future<Void> work;
    try {
      work = route(r);
    } catch (RuntimeException e) {
      work = Future.failedFuture(e);
    }
    work.recover(cause -> deadLetter(r, cause))
        .onComplete(
            done -> {
              if (done.succeeded()) {
                offsets.end(tp, offset);
              } else {
                // Not even the DLQ took it: leave the offset uncommitted so a restart retries.
                LOG.log(
                    Level.SEVERE,
                    "could not dead-letter " + r.where() + "; its offset stays uncommitted",
                    done.cause());
              }
            });
  }

  private Future<Void> route(InputRecord r) {
    String topic = r.raw().topic();
    if (topic.equals(topics.checkpoints())) {
      return engine.onCheckpoint(r);
    }
    if (topic.equals(topics.blobs())) {
      return blobIngest.onChunk(r);
    }
    if (topic.equals(topics.batches())) {
      String split = r.header(Headers.SPLIT);
      if (Headers.SPLIT_TRAIN.equals(split) || Headers.SPLIT_EVAL.equals(split)) {
        return live.onBatch(r, split);
      }
      return referenceIngest.onBatch(r);
    }
    return Future.failedFuture(new IllegalStateException("not an input topic: " + topic));
  }

  private Future<Void> deadLetter(InputRecord r, Throwable cause) {
    return deadLetters.send(context, r, reasonOf(cause), cause);
  }

  static DlqReason reasonOf(Throwable cause) {
    if (cause instanceof PoisonException p) {
      return p.reason();
    }
    if (cause instanceof InferenceException i) {
      return i.reason();
    }
    if (cause instanceof SafetensorsException) {
      return DlqReason.MALFORMED_SAFETENSORS;
    }
    if (cause instanceof IOException || cause instanceof UncheckedIOException) {
      return DlqReason.RETRIES_EXHAUSTED;
    }
    return DlqReason.INFERENCE_FAILED;
  }

  private void pauseIntake() {
    if (!paused && consumer != null) {
      paused = true;
      consumer.pause();
      metrics.paused();
    }
  }

  private void resumeIntake() {
    if (paused && consumer != null) {
      paused = false;
      consumer.resume();
    }
  }

  private void commit() {
    if (committing || consumer == null) {
      return;
    }
    Map<TopicPartition, Long> positions = offsets.commitable();
    positions.keySet().retainAll(assigned);
    if (positions.isEmpty()) {
      return;
    }
    Map<io.vertx.kafka.client.common.TopicPartition, OffsetAndMetadata> request = new HashMap<>();
    positions.forEach(
        (tp, p) ->
            request.put(
                new io.vertx.kafka.client.common.TopicPartition(tp.topic(), tp.partition()),
                new OffsetAndMetadata(p, "")));
    committing = true;
    consumer
        .commit(request)
        .onComplete(
            done -> {
              committing = false;
              if (done.succeeded()) {
                offsets.committed(positions);
              } else {
                LOG.warning("offset commit failed (will retry): " + done.cause().getMessage());
              }
            });
  }

  @Override
  public Future<?> stop() {
    vertx.cancelTimer(commitTimer);
    vertx.cancelTimer(expiryTimer);
    if (consumer == null) {
      return workers.close().onComplete(x -> engine.close());
    }
    consumer.pause();
    Map<TopicPartition, Long> positions = offsets.commitable();
    positions.keySet().retainAll(assigned);
    Map<io.vertx.kafka.client.common.TopicPartition, OffsetAndMetadata> request = new HashMap<>();
    positions.forEach(
        (tp, p) ->
            request.put(
                new io.vertx.kafka.client.common.TopicPartition(tp.topic(), tp.partition()),
                new OffsetAndMetadata(p, "")));
    Future<?> committed = request.isEmpty() ? Future.succeededFuture() : consumer.commit(request);
    return committed
        .transform(x -> consumer.close())
        .transform(x -> workers.close())
        .onComplete(x -> engine.close());
  }
}
