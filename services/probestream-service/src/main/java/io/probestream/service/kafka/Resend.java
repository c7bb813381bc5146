package io.probestream.service.kafka;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.logging.Logger;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.RetriableException;

/**
 * Sends a record and, while Kafka answers with a retriable error (above all a {@code
 * TimeoutException} once {@code delivery.timeout.ms} passed with the broker away), sends it again
 * after a backoff, until it is acknowledged. The producer retries within {@code
 * delivery.timeout.ms} by itself; past it, an outage is still not the record's fault, so failing
 * would dead-letter valid input (and a dead letter that fails leaves its offset uncommitted for
 * good). A resend may duplicate a record: the service is at-least-once and results carry a
 * deterministic id. Non-retriable errors (record too large, authorization) fail at once. Stateless.
 */
public final class Resend {
  private static final Logger LOG = Logger.getLogger(Resend.class.getName());
  static final long FIRST_BACKOFF_MS = 500;
  static final long MAX_BACKOFF_MS = 5000;

  private Resend() {}

  /** The future completes on {@code context} once Kafka acknowledged the record. */
  public static Future<RecordMetadata> untilAcknowledged(
      Context context, Producer<byte[], byte[]> producer, ProducerRecord<byte[], byte[]> record) {
    Promise<RecordMetadata> acked = Promise.promise();
    attempt(context, producer, record, acked, 1, FIRST_BACKOFF_MS);
    return acked.future();
  }

  private static void attempt(
      Context context,
      Producer<byte[], byte[]> producer,
      ProducerRecord<byte[], byte[]> record,
      Promise<RecordMetadata> acked,
      int attempt,
      long backoffMs) {
    try {
      producer.send(
          record,
          (meta, error) ->
              context.runOnContext(
                  v -> outcome(context, producer, record, acked, attempt, backoffMs, meta, error)));
    } catch (RuntimeException e) { // send throws at once when it cannot even queue the record
      context.runOnContext(
          v -> outcome(context, producer, record, acked, attempt, backoffMs, null, e));
    }
  }

  private static void outcome(
      Context context,
      Producer<byte[], byte[]> producer,
      ProducerRecord<byte[], byte[]> record,
      Promise<RecordMetadata> acked,
      int attempt,
      long backoffMs,
      RecordMetadata meta,
      Exception error) {
    if (error == null) {
      acked.complete(meta);
      return;
    }
    // Under exactly-once a failed send dooms the open transaction: it is aborted and its inputs
    // are read again, so sending again would only duplicate the record in the next one.
    if (!(error instanceof RetriableException) || producer instanceof TransactionalProducer) {
      acked.fail(error);
      return;
    }
    LOG.warning(
        "a record for "
            + record.topic()
            + " was not acknowledged (attempt "
            + attempt
            + ": "
            + error.getMessage()
            + "); sending it again in "
            + backoffMs
            + " ms");
    context
        .owner()
        .setTimer(
            backoffMs,
            id ->
                attempt(
                    context,
                    producer,
                    record,
                    acked,
                    attempt + 1,
                    Math.min(MAX_BACKOFF_MS, backoffMs * 2)));
  }
}
