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
import io.probestream.service.kafka.TransactionalProducer;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.publish.ResultPublisher;
import io.probestream.service.record.InputRecord;
import io.probestream.service.record.PoisonException;
import io.probestream.service.state.Snapshot;
import io.probestream.service.state.StateStore;
import io.probestream.service.state.StateTracker;
import io.probestream.service.store.BlobStore;
import io.probestream.service.store.ReferenceStore;
import io.probestream.service.view.ReferenceBoard;
import io.probestream.service.work.Workers;
import io.vertx.core.Future;
import io.vertx.core.Promise;
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
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;

/**
 * Consumes the three input topics with one consumer (so an experiment's records meet on one
 * instance), routes each record to blob, reference or checkpoint handling, dead-letters what is
 * poison, and commits a partition's offset only past records whose effects are durable. Pauses
 * intake while the worker pool is full.
 *
 * <p>State moves through the compacted state topic: every commit interval the snapshots of the
 * experiments that changed are written first, then the offsets are committed (at-least-once), or
 * both go into one Kafka transaction with the results (exactly-once). When partitions are assigned
 * they are paused, the experiments on them are dropped and restored from their newest snapshot
 * (re-reading their reference batches and blob chunks by offset), and records whose results a
 * snapshot lists as published are skipped when read again. Every field is touched on this
 * verticle's event loop only.
 */
public final class IntakeVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(IntakeVerticle.class.getName());
  private static final long COMMIT_INTERVAL_MS = 500;

  /**
   * Event-bus address of experiment commands from the HTTP API: a JSON object {@code experiment},
   * {@code command} ({@code delete} or {@code reprocess}), answered once the command record is on
   * the checkpoints topic.
   */
  public static final String COMMANDS_ADDRESS = "probestream.commands";

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
  private final StateTracker tracker;
  // input partition numbers being restored, and the records that arrived for them meanwhile
  private final Set<Integer> restoring = new HashSet<>();
  private final List<KafkaConsumerRecord<byte[], byte[]>> held = new java.util.ArrayList<>();
  // bumped when this instance gives up its in-flight work (revoke, rewind): outcomes of older
  // records are dropped, since those records are read again
  private int generation;
  private StateStore stateStore;
  // experiment → when a record of it last finished here (idle TTL, max-experiments)
  private final java.util.LinkedHashMap<String, Long> lastSeen = new java.util.LinkedHashMap<>();
  private io.vertx.core.WorkerExecutor serial; // restores and transaction commits, in order

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
    this.tracker = new StateTracker(java.util.UUID.randomUUID().toString());
  }

  private boolean exactlyOnce() {
    return producer instanceof TransactionalProducer;
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
    engine.onEvaluated(
        m ->
            tracker.evaluated(
                m.experiment(),
                m.run(),
                new String(m.toJson(), java.nio.charset.StandardCharsets.UTF_8),
                m.model() instanceof io.probestream.contracts.checkpoint.CheckpointManifest.Blob b
                    ? b.sha256()
                    : null,
                engine::waitsFor));
    engine.onBacklog(
        p -> {
          if (consumer != null) {
            LOG.info(
                "partition "
                    + p
                    + " of "
                    + topics.checkpoints()
                    + " paused: an experiment has probestream.pending.max-checkpoints = "
                    + config.pending().maxCheckpoints()
                    + " checkpoints waiting for their blob or reference set");
            consumer.pause(vertxPartitions(Set.of(new TopicPartition(topics.checkpoints(), p))));
          }
        },
        p -> {
          if (consumer != null && !restoring.contains(p)) {
            consumer.resume(vertxPartitions(Set.of(new TopicPartition(topics.checkpoints(), p))));
          }
        });
    serial =
        vertx.createSharedWorkerExecutor(
            "probestream-state", 1, 30, java.util.concurrent.TimeUnit.MINUTES);
    Map<String, Object> reader =
        KafkaSettings.reader(config, bootstrap, "probestream-state-reader");
    reader.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    reader.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Integer.toString(4 << 20));
    if (producer instanceof TransactionalProducer tx) {
      tx.bind(context);
      stateStore = new StateStore(tx::sendInTransaction, topics.state(), reader);
    } else {
      stateStore = new StateStore(producer::send, topics.state(), reader);
    }
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
                        expireExperiments();
                      });
              vertx
                  .eventBus()
                  .<io.vertx.core.json.JsonObject>consumer(
                      COMMANDS_ADDRESS, this::onCommandRequest);
            });
  }

  private Future<Void> subscribe() {
    Map<String, String> settings = KafkaSettings.consumer(config, bootstrap);
    if (exactlyOnce()) {
      settings.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    }
    consumer = KafkaConsumer.create(vertx, settings);
    consumer.partitionsAssignedHandler(
        set -> {
          Set<TopicPartition> added = new HashSet<>();
          set.forEach(tp -> added.add(new TopicPartition(tp.getTopic(), tp.getPartition())));
          added.removeAll(assigned);
          assigned.addAll(added);
          readiness.assigned(!assigned.isEmpty());
          LOG.info("assigned " + assigned.size() + " partition(s)");
          if (!added.isEmpty()) {
            restore(added, false);
          }
        });
    consumer.partitionsRevokedHandler(
        set -> {
          List<TopicPartition> gone = new java.util.ArrayList<>();
          set.forEach(tp -> gone.add(new TopicPartition(tp.getTopic(), tp.getPartition())));
          gone.forEach(assigned::remove);
          offsets.revoke(gone);
          readiness.assigned(!assigned.isEmpty());
          giveUpInFlight();
        });
    consumer.exceptionHandler(e -> LOG.log(Level.WARNING, "Kafka consumer: " + e.getMessage(), e));
    consumer.handler(this::handle);
    return consumer.subscribe(new HashSet<>(topics.inputs()));
  }

  private void handle(KafkaConsumerRecord<byte[], byte[]> kr) {
    if (restoring.contains(kr.partition())) {
      held.add(kr); // handled once the partition's experiments are restored
      return;
    }
    InputRecord r = new InputRecord(kr.record());
    TopicPartition tp = r.partition();
    long offset = kr.offset();
    offsets.begin(tp, offset);
    metrics.consumed(kr.topic());
    String key = r.key();
    if (key != null && tracker.isDone(key, kr.topic(), offset)) {
      offsets.end(tp, offset); // its results were published before a restart or handover
      return;
    }
    int gen = generation;
    Future<Void> work;
    try {
      work = route(r);
    } catch (RuntimeException e) {
      work = Future.failedFuture(e);
    }
    work.map(v -> Boolean.TRUE)
        .recover(
            cause ->
                cause instanceof CheckpointEngine.Abandoned || gen != generation
                    ? Future.failedFuture(cause)
                    : deadLetter(r, cause).map(v -> Boolean.FALSE))
        .onComplete(
            done -> {
              if (gen != generation) {
                return; // this instance gave the record up; it is read again
              }
              if (done.succeeded()) {
                if (done.result()) {
                  track(r);
                }
                offsets.end(tp, offset);
              } else if (done.cause() instanceof CheckpointEngine.Abandoned) {
                offsets.end(tp, offset); // its experiment was removed here
              } else {
                // Not even the DLQ took it: leave the offset uncommitted so a restart retries.
                LOG.log(
                    Level.SEVERE,
                    "could not dead-letter " + r.where() + "; its offset stays uncommitted",
                    done.cause());
              }
            });
  }

  /** Notes a record whose effects are durable in the experiment's next snapshot. */
  private void track(InputRecord r) {
    ConsumerRecord<byte[], byte[]> raw = r.raw();
    String experiment = r.key();
    if (experiment == null) {
      return;
    }
    touch(experiment);
    String topic = raw.topic();
    if (topic.equals(topics.checkpoints())
        && !Headers.TYPE_CHECKPOINT.equals(r.header(Headers.TYPE))) {
      return; // a command: nothing to snapshot
    }
    if (topic.equals(topics.blobs())) {
      tracker.blobChunk(experiment, raw.partition(), r.header(Headers.BLOB_SHA256), raw.offset());
    } else if (topic.equals(topics.batches())
        && !Headers.SPLIT_TRAIN.equals(r.header(Headers.SPLIT))
        && !Headers.SPLIT_EVAL.equals(r.header(Headers.SPLIT))) {
      tracker.referenceBatch(
          experiment,
          raw.partition(),
          Integer.parseInt(r.header(Headers.BATCH_INDEX).trim()),
          raw.offset());
    } else {
      tracker.done(experiment, raw.partition(), topic, raw.offset());
    }
  }

  /**
   * Gives up what is in flight (partitions revoked, or a transaction aborted): outcomes of records
   * read so far are dropped and, under exactly-once, the open transaction is aborted, since all of
   * them are read again from the committed offsets.
   */
  private void giveUpInFlight() {
    generation++;
    held.clear();
    if (exactlyOnce()) {
      TransactionalProducer tx = (TransactionalProducer) producer;
      serial
          .executeBlocking(
              () -> {
                tx.abort();
                return null;
              })
          .onFailure(e -> LOG.log(Level.SEVERE, "aborting the transaction failed", e));
    }
  }

  /**
   * Pauses {@code partitions}, drops the experiments on them and restores each from its newest
   * snapshot: multiplicity states, the checkpoints live splits follow, and the reference batches
   * and blob chunks it locates, re-read from their topics. With {@code seek} the partitions then go
   * back to their committed offsets (a rewind). Resumes them when done.
   */
  private void restore(Set<TopicPartition> partitions, boolean seek) {
    long started = System.nanoTime();
    Set<Integer> numbers = new java.util.TreeSet<>();
    partitions.forEach(tp -> numbers.add(tp.partition()));
    restoring.addAll(numbers);
    consumer.pause(vertxPartitions(partitions));
    Set<String> dropped = tracker.on(numbers);
    engine.forget(dropped);
    live.forget(dropped);
    dropped.forEach(tracker::forget);
    if (!config.state().enabled()) {
      finishRestore(partitions, numbers, seek, 0, started);
      return;
    }
    serial
        .executeBlocking(stateStore::readLatest)
        .compose(
            latest -> {
              List<Snapshot> mine = new java.util.ArrayList<>();
              for (Snapshot s : latest.values()) {
                if (numbers.contains(s.partition())) {
                  mine.add(s);
                }
              }
              for (Snapshot s : mine) {
                adopt(s);
              }
              return serial.executeBlocking(() -> replay(mine)).map(v -> mine.size());
            })
        .onComplete(
            done -> {
              if (done.failed()) {
                LOG.log(
                    Level.SEVERE,
                    "restoring partitions "
                        + numbers
                        + " from "
                        + topics.state()
                        + " failed; they go on without the lost state",
                    done.cause());
              }
              finishRestore(
                  partitions, numbers, seek, done.succeeded() ? done.result() : 0, started);
            });
  }

  private void touch(String experiment) {
    lastSeen.remove(experiment);
    lastSeen.put(experiment, System.currentTimeMillis()); // insertion order: least recent first
  }

  /** Removes experiments idle past the TTL, then the least recently active past the maximum. */
  private void expireExperiments() {
    long ttl = config.experiments().idleTtlMs();
    long now = System.currentTimeMillis();
    List<String> gone = new java.util.ArrayList<>();
    int over = lastSeen.size() - config.experiments().max();
    for (Map.Entry<String, Long> e : lastSeen.entrySet()) {
      if (over > 0) {
        gone.add(e.getKey());
        over--;
      } else if (ttl > 0 && e.getValue() < now - ttl) {
        gone.add(e.getKey());
      } else {
        break;
      }
    }
    for (String e : gone) {
      remove(
          e,
          ttl > 0 && lastSeen.get(e) < now - ttl
              ? "idle for longer than probestream.experiments.idle-ttl-ms = " + ttl
              : "more than probestream.experiments.max = "
                  + config.experiments().max()
                  + " experiments are active and it is the least recent");
    }
  }

  /**
   * Removes an experiment: waiting and in-flight work, its reference set and stored batches,
   * multiplicity and live state, its results in the API and its metric series, and its snapshot (a
   * tombstone on the state topic). Its records already read are not read again.
   */
  private Future<Void> remove(String experiment, String why) {
    LOG.info("removing experiment '" + experiment + "': " + why);
    lastSeen.remove(experiment);
    Set<String> one = Set.of(experiment);
    engine.forget(one);
    live.forget(one);
    tracker.forget(experiment);
    publisher.forget(experiment);
    Future<Void> files = referenceIngest.forget(experiment);
    Future<Void> tombstone =
        config.state().enabled()
            ? stateStore.delete(context, experiment)
            : Future.succeededFuture();
    return Future.all(files, tombstone).mapEmpty();
  }

  /** A command record of the checkpoints topic (key = experiment). */
  private Future<Void> command(InputRecord r, String type) {
    r.requireCloudEvent(type);
    String experiment = r.requireKey();
    if (type.equals(Headers.TYPE_COMMAND_DELETE)) {
      return remove(experiment, "a delete command (" + r.where() + ")");
    }
    return reprocess(experiment, r.raw().partition(), r.raw().offset());
  }

  /**
   * Evaluates an experiment's checkpoints again, in topic order, from a fresh multiplicity state:
   * reads the checkpoints topic partition up to the command and hands each of the experiment's
   * checkpoint records to the engine (results carry the same ids as the first time when nothing
   * else changed). Completes when every one is evaluated or dead-lettered.
   */
  private Future<Void> reprocess(String experiment, int partition, long before) {
    TopicPartition tp = new TopicPartition(topics.checkpoints(), partition);
    List<ConsumerRecord<byte[], byte[]>> found = new java.util.ArrayList<>();
    return serial
        .executeBlocking(
            () ->
                stateStore.scan(
                    tp,
                    before,
                    rec -> {
                      String type =
                          rec.headers().lastHeader(Headers.TYPE) == null
                              ? null
                              : new String(
                                  rec.headers().lastHeader(Headers.TYPE).value(),
                                  java.nio.charset.StandardCharsets.UTF_8);
                      if (rec.key() != null
                          && experiment.equals(
                              new String(rec.key(), java.nio.charset.StandardCharsets.UTF_8))
                          && Headers.TYPE_CHECKPOINT.equals(type)) {
                        found.add(rec);
                      }
                    }))
        .compose(
            n -> {
              LOG.info(
                  "reprocessing "
                      + found.size()
                      + " checkpoint(s) of experiment '"
                      + experiment
                      + "' from "
                      + tp);
              engine.forget(Set.of(experiment));
              List<Future<Void>> runs = new java.util.ArrayList<>();
              for (ConsumerRecord<byte[], byte[]> rec : found) {
                InputRecord in = new InputRecord(rec);
                Future<Void> run;
                try {
                  run = engine.onCheckpoint(in);
                } catch (RuntimeException e) {
                  run = Future.failedFuture(e);
                }
                runs.add(
                    run.recover(
                        e -> {
                          LOG.warning("reprocessing " + in.where() + " failed: " + e.getMessage());
                          return Future.succeededFuture();
                        }));
              }
              return Future.all(runs).mapEmpty();
            });
  }

  /** From the HTTP API: puts a command record on the checkpoints topic. */
  private void onCommandRequest(io.vertx.core.eventbus.Message<io.vertx.core.json.JsonObject> m) {
    String experiment = m.body().getString("experiment");
    String command = m.body().getString("command");
    String type =
        "delete".equals(command)
            ? Headers.TYPE_COMMAND_DELETE
            : "reprocess".equals(command) ? Headers.TYPE_COMMAND_REPROCESS : null;
    if (experiment == null || experiment.isBlank() || type == null) {
      m.fail(400, "experiment and command (delete or reprocess) are required");
      return;
    }
    String id = java.util.UUID.randomUUID().toString();
    org.apache.kafka.clients.producer.ProducerRecord<byte[], byte[]> rec =
        io.probestream.service.publish.CloudEvents.json(
            topics.checkpoints(),
            experiment,
            new io.vertx.core.json.JsonObject()
                .put("experiment", experiment)
                .put("command", command)
                .encode()
                .getBytes(java.nio.charset.StandardCharsets.UTF_8),
            id,
            "probestream-api",
            type,
            java.time.Instant.now());
    producer.send(
        rec,
        (meta, error) ->
            context.runOnContext(
                v -> {
                  if (error != null) {
                    m.fail(503, "the command could not be sent to Kafka: " + error.getMessage());
                  } else {
                    m.reply(
                        new io.vertx.core.json.JsonObject()
                            .put("experiment", experiment)
                            .put("command", command)
                            .put("id", id)
                            .put("status", "accepted"));
                  }
                }));
  }

  /** Takes a snapshot's state in (on the event loop). */
  private void adopt(Snapshot s) {
    Map<String, String> latestBlobs = new HashMap<>();
    s.latest()
        .forEach(
            (run, json) -> {
              io.probestream.contracts.checkpoint.CheckpointManifest m =
                  io.probestream.contracts.checkpoint.CheckpointManifest.parse(
                      json.getBytes(java.nio.charset.StandardCharsets.UTF_8));
              if (m.model()
                  instanceof io.probestream.contracts.checkpoint.CheckpointManifest.Blob b) {
                latestBlobs.put(run, b.sha256());
              }
              live.follow(m);
            });
    tracker.restore(s, latestBlobs);
    touch(s.experiment());
    try {
      engine.restoreMultiplicity(s.multiplicity());
    } catch (IllegalArgumentException e) {
      LOG.warning(
          "multiplicity state of '" + s.experiment() + "' is unreadable: " + e.getMessage());
    }
  }

  /** Blocking: re-reads the reference batches and blob chunks the snapshots locate. */
  private Void replay(List<Snapshot> snapshots) {
    for (Snapshot s : snapshots) {
      if (s.partition() < 0) {
        continue;
      }
      boolean haveReference = callOnContext(() -> referenceIngest.complete(s.experiment()) != null);
      if (!haveReference && !s.reference().isEmpty()) {
        java.util.TreeSet<Long> at = new java.util.TreeSet<>(s.reference().values());
        int found =
            stateStore.replay(
                new TopicPartition(topics.batches(), s.partition()),
                at,
                rec -> handleOnContext(rec, r -> referenceIngest.onBatch(r)));
        if (found < at.size()) {
          LOG.warning(
              "experiment '"
                  + s.experiment()
                  + "': "
                  + (at.size() - found)
                  + " reference batch(es) are no longer in "
                  + topics.batches()
                  + " (retention); the reference set must be sent again");
        }
      }
      java.util.TreeSet<Long> chunks = new java.util.TreeSet<>();
      s.blobs()
          .forEach(
              (sha, offs) -> {
                if (!callOnContext(() -> blobIngest.has(sha))) {
                  chunks.addAll(offs);
                }
              });
      stateStore.replay(
          new TopicPartition(topics.blobs(), s.partition()),
          chunks,
          rec -> handleOnContext(rec, r -> blobIngest.onChunk(r)));
    }
    return null;
  }

  private <T> T callOnContext(java.util.concurrent.Callable<T> call) {
    java.util.concurrent.CompletableFuture<T> f = new java.util.concurrent.CompletableFuture<>();
    context.runOnContext(
        v -> {
          try {
            f.complete(call.call());
          } catch (Exception e) {
            f.completeExceptionally(e);
          }
        });
    return f.join();
  }

  /** Blocking: hands a replayed record to a handler on the event loop and waits for it. */
  private void handleOnContext(
      ConsumerRecord<byte[], byte[]> rec,
      java.util.function.Function<InputRecord, Future<Void>> handler) {
    java.util.concurrent.CompletableFuture<Void> f = new java.util.concurrent.CompletableFuture<>();
    context.runOnContext(
        v -> {
          Future<Void> w;
          try {
            w = handler.apply(new InputRecord(rec));
          } catch (RuntimeException e) {
            w = Future.failedFuture(e);
          }
          w.onComplete(
              done -> {
                if (done.failed()) {
                  LOG.warning(
                      "replaying "
                          + rec.topic()
                          + "-"
                          + rec.partition()
                          + "@"
                          + rec.offset()
                          + " failed: "
                          + done.cause().getMessage());
                }
                f.complete(null);
              });
        });
    f.join();
  }

  private void finishRestore(
      Set<TopicPartition> partitions,
      Set<Integer> numbers,
      boolean seek,
      int restored,
      long started) {
    Future<Void> positioned = Future.succeededFuture();
    if (seek) {
      List<Future<Void>> seeks = new java.util.ArrayList<>();
      for (TopicPartition tp : partitions) {
        io.vertx.kafka.client.common.TopicPartition v =
            new io.vertx.kafka.client.common.TopicPartition(tp.topic(), tp.partition());
        seeks.add(
            consumer
                .committed(v)
                .compose(
                    c ->
                        c == null ? consumer.seekToBeginning(v) : consumer.seek(v, c.getOffset())));
      }
      positioned = Future.all(seeks).mapEmpty();
    }
    positioned.onComplete(
        x -> {
          if (x.failed()) {
            LOG.log(Level.SEVERE, "seeking to the committed offsets failed", x.cause());
          }
          restoring.removeAll(numbers);
          Set<TopicPartition> still = new HashSet<>(partitions);
          still.retainAll(assigned);
          if (!still.isEmpty()) {
            consumer.resume(vertxPartitions(still));
          }
          LOG.info(
              "partitions "
                  + numbers
                  + ": restored "
                  + restored
                  + " experiment(s) from "
                  + topics.state()
                  + " in "
                  + (System.nanoTime() - started) / 1_000_000
                  + " ms");
          List<KafkaConsumerRecord<byte[], byte[]>> waiting = new java.util.ArrayList<>(held);
          held.clear();
          waiting.forEach(this::handle);
        });
  }

  private static Set<io.vertx.kafka.client.common.TopicPartition> vertxPartitions(
      Set<TopicPartition> partitions) {
    Set<io.vertx.kafka.client.common.TopicPartition> out = new HashSet<>();
    partitions.forEach(
        tp -> out.add(new io.vertx.kafka.client.common.TopicPartition(tp.topic(), tp.partition())));
    return out;
  }

  private Future<Void> route(InputRecord r) {
    String topic = r.raw().topic();
    if (topic.equals(topics.checkpoints())) {
      String type = r.header(Headers.TYPE);
      if (Headers.TYPE_COMMAND_DELETE.equals(type) || Headers.TYPE_COMMAND_REPROCESS.equals(type)) {
        return command(r, type);
      }
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
      // Stream-level flow control; partitions paused for a restore stay paused (pause(Set)).
      consumer.resume();
    }
  }

  /**
   * One commit: the snapshots of changed experiments, then the offsets of finished records, either
   * with the consumer (at-least-once) or in the open transaction (exactly-once). Under exactly-once
   * the producer is frozen first (later sends wait for the next transaction) and the commit waits
   * until every earlier send was acknowledged and handled, so the snapshots and offsets in the
   * transaction record the completion of exactly the records whose outputs it holds.
   */
  private void commit() {
    if (committing || consumer == null) {
      return;
    }
    boolean pendingSends = exactlyOnce() && ((TransactionalProducer) producer).hasSends();
    Map<TopicPartition, Long> now = offsets.commitable();
    now.keySet().retainAll(assigned);
    if (now.isEmpty() && !tracker.dirty() && !pendingSends) {
      return;
    }
    committing = true;
    int gen = generation;
    commitNow()
        .onComplete(
            done -> {
              committing = false;
              readiness.broker(done.succeeded() || !brokerAway(done.cause()));
              if (done.failed() && exactlyOnce() && gen == generation) {
                LOG.log(
                    Level.WARNING,
                    "transaction aborted ("
                        + done.cause()
                        + "); reading the assigned partitions again from their committed offsets",
                    done.cause());
                giveUpInFlight();
                offsets.revoke(new java.util.ArrayList<>(assigned));
                if (!assigned.isEmpty()) {
                  restore(new HashSet<>(assigned), true);
                }
              } else if (done.failed() && !exactlyOnce()) {
                LOG.warning("commit failed (will retry): " + done.cause().getMessage());
              }
            });
  }

  /** Snapshots, then offsets (and under exactly-once the transaction); see {@link #commit}. */
  private Future<Void> commitNow() {
    Future<Void> quiet = Future.succeededFuture();
    if (exactlyOnce()) {
      TransactionalProducer tx = (TransactionalProducer) producer;
      tx.freeze();
      quiet = acknowledged(tx, System.currentTimeMillis() + 30_000);
    }
    return quiet.compose(
        v -> {
          Map<TopicPartition, Long> positions = offsets.commitable();
          positions.keySet().retainAll(assigned);
          List<Snapshot> snapshots =
              config.state().enabled()
                  ? tracker.drainDirty(engine::multiplicitySnapshot)
                  : List.of();
          return stateStore
              .write(context, snapshots)
              .compose(x -> commitOffsets(positions))
              .onSuccess(
                  x -> {
                    offsets.committed(positions);
                    positions.forEach((tp, p) -> tracker.committed(tp.topic(), tp.partition(), p));
                  })
              .onFailure(x -> tracker.markDirty(snapshots));
        });
  }

  /** Completes once every send of {@code tx} so far was acknowledged and handled here. */
  private Future<Void> acknowledged(TransactionalProducer tx, long deadline) {
    if (tx.outstanding() == 0) {
      return Future.succeededFuture();
    }
    if (System.currentTimeMillis() > deadline) {
      return Future.failedFuture(
          new IllegalStateException(
              tx.outstanding() + " record(s) still unacknowledged after 30 s; aborting"));
    }
    Promise<Void> p = Promise.promise();
    vertx.setTimer(2, id -> acknowledged(tx, deadline).onComplete(p));
    return p.future();
  }

  /** Whether a failure says the broker cannot be reached (readiness drops until it can). */
  private static boolean brokerAway(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof org.apache.kafka.common.errors.TimeoutException
          || t instanceof org.apache.kafka.common.errors.DisconnectException) {
        return true;
      }
    }
    return false;
  }

  @SuppressWarnings("removal") // ConsumerGroupMetadata's constructors: see the comment below
  private Future<Void> commitOffsets(Map<TopicPartition, Long> positions) {
    if (exactlyOnce()) {
      Map<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata> offsetsMap =
          new HashMap<>();
      positions.forEach(
          (tp, p) ->
              offsetsMap.put(tp, new org.apache.kafka.clients.consumer.OffsetAndMetadata(p)));
      TransactionalProducer tx = (TransactionalProducer) producer;
      // No generation: zombies are fenced by the stable transactional id instead (the consumer's
      // own metadata cannot be read off its polling thread).
      ConsumerGroupMetadata group =
          new ConsumerGroupMetadata(config.kafka().groupId(), -1, "", java.util.Optional.empty());
      return serial.executeBlocking(
          () -> {
            tx.commit(offsetsMap, group);
            return null;
          });
    }
    if (positions.isEmpty()) {
      return Future.succeededFuture();
    }
    Map<io.vertx.kafka.client.common.TopicPartition, OffsetAndMetadata> request = new HashMap<>();
    positions.forEach(
        (tp, p) ->
            request.put(
                new io.vertx.kafka.client.common.TopicPartition(tp.topic(), tp.partition()),
                new OffsetAndMetadata(p, "")));
    return consumer.commit(request).mapEmpty();
  }

  @Override
  public Future<?> stop() {
    vertx.cancelTimer(commitTimer);
    vertx.cancelTimer(expiryTimer);
    if (consumer == null) {
      return workers.close().onComplete(x -> engine.close());
    }
    consumer.pause();
    Future<?> committed = committing ? Future.succeededFuture() : commitNow();
    return committed
        .transform(x -> consumer.close())
        .transform(x -> workers.close())
        .onComplete(
            x -> {
              engine.close();
              serial.close();
            });
  }
}
