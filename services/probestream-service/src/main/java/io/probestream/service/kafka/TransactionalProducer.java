package io.probestream.service.kafka;

import io.vertx.core.Context;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metrics.KafkaMetric;

/**
 * A transactional producer that is always inside a transaction, for {@code delivery=exactly-once}.
 * Results, dead letters and commands are sent as usual. A commit goes: {@link #freeze} (later sends
 * wait in a queue for the next transaction), wait until every send before it was acknowledged and
 * its acknowledgement handled on the bound context ({@link #outstanding} is 0), send the snapshots
 * with {@link #sendInTransaction}, then {@link #commit} puts the input offsets in, commits and
 * opens the next transaction with the queued sends. So a transaction holds exactly the outputs of
 * the records whose completion the snapshots and offsets in it record. Thread-safe; {@link #commit}
 * and {@link #abort} block (call them from one worker).
 */
public final class TransactionalProducer implements Producer<byte[], byte[]> {
  private final Producer<byte[], byte[]> delegate;
  private final List<Queued> queued = new ArrayList<>();
  private Context context; // where acknowledgements are handled
  private boolean frozen;
  private boolean sent; // since the open transaction began
  // sends not yet acknowledged and handled: up at the send, down on the context after the
  // sender's own hand-over there
  private final java.util.concurrent.atomic.AtomicInteger outstanding =
      new java.util.concurrent.atomic.AtomicInteger();

  private record Queued(
      ProducerRecord<byte[], byte[]> record,
      Callback callback,
      CompletableFuture<RecordMetadata> result) {}

  /** Blocking: fences earlier producers with the same transactional id, opens a transaction. */
  public TransactionalProducer(Producer<byte[], byte[]> delegate) {
    this.delegate = delegate;
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
    while (true) {
      try {
        delegate.initTransactions(); // may be called again after a timeout (KafkaProducer docs)
        break;
      } catch (org.apache.kafka.common.errors.TimeoutException e) {
        if (System.nanoTime() > deadline) {
          delegate.close(Duration.ZERO);
          throw e;
        }
      }
    }
    delegate.beginTransaction();
  }

  /**
   * The context whose callbacks handle acknowledgements (every sender's callback hands over to it
   * with {@code runOnContext}); the count of outstanding sends drops there, after them.
   */
  public synchronized void bind(Context context) {
    this.context = context;
  }

  @Override
  public Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
    return send(record, null);
  }

  @Override
  public synchronized Future<RecordMetadata> send(
      ProducerRecord<byte[], byte[]> record, Callback callback) {
    if (!frozen) {
      return tracked(record, callback);
    }
    CompletableFuture<RecordMetadata> result = new CompletableFuture<>();
    queued.add(new Queued(record, callback, result));
    return result;
  }

  /** Sends into the open transaction even while frozen (the snapshots of a commit). */
  public synchronized Future<RecordMetadata> sendInTransaction(
      ProducerRecord<byte[], byte[]> record, Callback callback) {
    return tracked(record, callback);
  }

  private Future<RecordMetadata> tracked(ProducerRecord<byte[], byte[]> record, Callback callback) {
    sent = true;
    Context c = context;
    if (c != null) {
      outstanding.incrementAndGet();
    }
    return delegate.send(
        record,
        (meta, error) -> {
          if (callback != null) {
            callback.onCompletion(meta, error);
          }
          if (c != null) {
            c.runOnContext(v -> outstanding.decrementAndGet()); // after the callback's hand-over
          }
        });
  }

  /** Sends not yet acknowledged and handled on the bound context. */
  public int outstanding() {
    return outstanding.get();
  }

  /** Later sends wait for the next transaction (until {@link #commit} or {@link #thaw}). */
  public synchronized void freeze() {
    frozen = true;
  }

  /** Ends a freeze without a commit: the queued sends go into the open transaction. */
  public synchronized void thaw() {
    frozen = false;
    drainQueue();
  }

  /** Whether anything was sent in the open transaction. */
  public synchronized boolean hasSends() {
    return sent;
  }

  /**
   * Blocking: commits the open transaction with these input offsets and opens the next one. On
   * failure the transaction is aborted (when Kafka allows it), the next one opened, and the error
   * rethrown: the caller must then read its inputs again from the committed offsets.
   */
  public void commit(Map<TopicPartition, OffsetAndMetadata> offsets, ConsumerGroupMetadata group) {
    synchronized (this) {
      frozen = true;
    }
    try {
      if (!offsets.isEmpty()) {
        delegate.sendOffsetsToTransaction(offsets, group);
      }
      delegate.commitTransaction();
    } catch (RuntimeException e) {
      abortQuietly(e);
      throw e;
    } finally {
      reopen();
    }
  }

  private void abortQuietly(RuntimeException cause) {
    try {
      delegate.abortTransaction();
    } catch (RuntimeException again) {
      cause.addSuppressed(again);
    }
  }

  private synchronized void reopen() {
    delegate.beginTransaction();
    sent = false;
    frozen = false;
    drainQueue();
  }

  private void drainQueue() {
    List<Queued> waiting = new ArrayList<>(queued);
    queued.clear();
    for (Queued q : waiting) {
      tracked(
          q.record(),
          (meta, error) -> {
            if (q.callback() != null) {
              q.callback().onCompletion(meta, error);
            }
            if (error != null) {
              q.result().completeExceptionally(error);
            } else {
              q.result().complete(meta);
            }
          });
    }
  }

  /** Blocking: aborts the open transaction (its sends are discarded) and opens the next one. */
  public void abort() {
    synchronized (this) {
      frozen = true;
    }
    try {
      delegate.abortTransaction();
    } finally {
      reopen();
    }
  }

  @Override
  public void initTransactions() {
    throw new UnsupportedOperationException("transactions are managed by commit() and abort()");
  }

  @Override
  public void beginTransaction() {
    throw new UnsupportedOperationException("transactions are managed by commit() and abort()");
  }

  @Override
  public void sendOffsetsToTransaction(
      Map<TopicPartition, OffsetAndMetadata> offsets, ConsumerGroupMetadata groupMetadata) {
    throw new UnsupportedOperationException("transactions are managed by commit() and abort()");
  }

  @Override
  public void commitTransaction() {
    throw new UnsupportedOperationException("transactions are managed by commit() and abort()");
  }

  @Override
  public void abortTransaction() {
    throw new UnsupportedOperationException("transactions are managed by commit() and abort()");
  }

  @Override
  public void registerMetricForSubscription(KafkaMetric metric) {
    delegate.registerMetricForSubscription(metric);
  }

  @Override
  public void unregisterMetricFromSubscription(KafkaMetric metric) {
    delegate.unregisterMetricFromSubscription(metric);
  }

  @Override
  public void flush() {
    delegate.flush();
  }

  @Override
  public List<PartitionInfo> partitionsFor(String topic) {
    return delegate.partitionsFor(topic);
  }

  @Override
  public Map<MetricName, ? extends Metric> metrics() {
    return delegate.metrics();
  }

  @Override
  public Uuid clientInstanceId(Duration timeout) {
    return delegate.clientInstanceId(timeout);
  }

  /** Blocking: commits nothing more; an open transaction is aborted by the close. */
  @Override
  public void close() {
    delegate.close();
  }

  @Override
  public void close(Duration timeout) {
    delegate.close(timeout);
  }
}
