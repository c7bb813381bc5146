package io.probestream.service.kafka;

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
 * A transactional producer that is always inside a transaction, for {@code delivery=exactly-once}:
 * results, dead letters and state snapshots are sent as usual, and {@link #commit} puts the input
 * offsets into the open transaction, commits it and opens the next. Sends made while a commit runs
 * wait in a queue and go into the next transaction, so callers never see the producer between
 * transactions. Thread-safe; {@link #commit} and {@link #abort} block (call them from one worker).
 */
public final class TransactionalProducer implements Producer<byte[], byte[]> {
  private final Producer<byte[], byte[]> delegate;
  private final List<Queued> queued = new ArrayList<>();
  private boolean committing;
  private boolean sent; // since the open transaction began

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

  @Override
  public Future<RecordMetadata> send(ProducerRecord<byte[], byte[]> record) {
    return send(record, null);
  }

  @Override
  public synchronized Future<RecordMetadata> send(
      ProducerRecord<byte[], byte[]> record, Callback callback) {
    sent = true;
    if (!committing) {
      return delegate.send(record, callback);
    }
    CompletableFuture<RecordMetadata> result = new CompletableFuture<>();
    queued.add(new Queued(record, callback, result));
    return result;
  }

  /**
   * Blocking: commits the open transaction with these input offsets and opens the next one. On
   * failure the transaction is aborted (when Kafka allows it), the next one opened, and the error
   * rethrown: the caller must then read its inputs again from the committed offsets.
   */
  public void commit(Map<TopicPartition, OffsetAndMetadata> offsets, ConsumerGroupMetadata group) {
    synchronized (this) {
      committing = true;
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

  private void reopen() {
    List<Queued> waiting;
    synchronized (this) {
      delegate.beginTransaction();
      committing = false;
      sent = !queued.isEmpty();
      waiting = new ArrayList<>(queued);
      queued.clear();
      for (Queued q : waiting) {
        delegate.send(
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
  }

  /** Whether anything was sent in the open transaction. */
  public synchronized boolean hasSends() {
    return sent;
  }

  /** Blocking: aborts the open transaction (its sends are discarded) and opens the next one. */
  public void abort() {
    synchronized (this) {
      committing = true;
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
