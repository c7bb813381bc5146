package io.probestream.service.dlq;

import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.kafka.Resend;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.record.InputRecord;
import io.vertx.core.Context;
import io.vertx.core.Future;
import java.nio.charset.StandardCharsets;
import java.util.logging.Logger;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;

/**
 * Sends a rejected record to the dead-letter topic with its original key, value and headers plus
 * the {@code dlq.*} headers, and counts it. The future completes on the caller's context once Kafka
 * acknowledged the write. Thread-safe (the producer is).
 */
public final class DeadLetterPublisher {
  private static final Logger LOG = Logger.getLogger(DeadLetterPublisher.class.getName());
  private static final int MAX_MESSAGE = 2000;

  private final Producer<byte[], byte[]> producer;
  private final String topic;
  private final ServiceMetrics metrics;

  public DeadLetterPublisher(
      Producer<byte[], byte[]> producer, String topic, ServiceMetrics metrics) {
    this.producer = producer;
    this.topic = topic;
    this.metrics = metrics;
  }

  public Future<Void> send(Context context, InputRecord record, DlqReason reason, Throwable cause) {
    String message =
        cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    if (message.length() > MAX_MESSAGE) {
      message = message.substring(0, MAX_MESSAGE) + "…";
    }
    LOG.warning(
        "dead-lettering "
            + record.where()
            + " key="
            + record.key()
            + ": "
            + reason.code()
            + ": "
            + message);
    ProducerRecord<byte[], byte[]> out =
        new ProducerRecord<>(topic, null, record.raw().key(), record.raw().value());
    for (Header h : record.raw().headers()) {
      out.headers().add(h);
    }
    out.headers().add(Headers.DLQ_REASON, utf8(reason.code()));
    out.headers().add(Headers.DLQ_CLASS, utf8(cause.getClass().getName()));
    out.headers().add(Headers.DLQ_MESSAGE, utf8(message));
    out.headers().add(Headers.DLQ_SOURCE_TOPIC, utf8(record.raw().topic()));
    out.headers()
        .add(Headers.DLQ_SOURCE_PARTITION, utf8(Integer.toString(record.raw().partition())));
    out.headers().add(Headers.DLQ_SOURCE_OFFSET, utf8(Long.toString(record.raw().offset())));
    // Sent again through a broker outage: a dead letter that fails leaves its offset uncommitted.
    return Resend.untilAcknowledged(context, producer, out)
        .map(
            meta -> {
              metrics.deadLettered(reason.code());
              return null;
            });
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
