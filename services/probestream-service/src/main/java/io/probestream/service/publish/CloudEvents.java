package io.probestream.service.publish;

import io.probestream.contracts.topics.Headers;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * The records the service writes with a JSON value: key, value and the CloudEvents binary-mode
 * headers (DESIGN.md §3) in one place. Stateless.
 */
public final class CloudEvents {
  private CloudEvents() {}

  /**
   * A JSON record with {@code ce_specversion}, {@code ce_id}, {@code ce_source}, {@code ce_type},
   * {@code ce_time} and {@code content-type}.
   */
  public static ProducerRecord<byte[], byte[]> json(
      String topic, String key, byte[] value, String id, String source, String type, Instant time) {
    ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, null, utf8(key), value);
    r.headers().add(Headers.SPECVERSION, utf8(Headers.SPEC_VERSION));
    r.headers().add(Headers.ID, utf8(id));
    r.headers().add(Headers.SOURCE, utf8(source));
    r.headers().add(Headers.TYPE, utf8(type));
    r.headers().add(Headers.TIME, utf8(time.toString()));
    r.headers().add(Headers.CONTENT_TYPE, utf8(Headers.JSON));
    return r;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
