package io.probestream.service.record;

import io.probestream.contracts.topics.DlqReason;
import io.probestream.contracts.topics.Headers;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * One consumed record with typed access to its headers; header errors are {@link PoisonException}s
 * that name the header. Immutable.
 */
public record InputRecord(ConsumerRecord<byte[], byte[]> raw) {

  public TopicPartition partition() {
    return new TopicPartition(raw.topic(), raw.partition());
  }

  public String where() {
    return raw.topic() + "-" + raw.partition() + "@" + raw.offset();
  }

  /** The record key as text, or null. */
  public String key() {
    return raw.key() == null ? null : new String(raw.key(), StandardCharsets.UTF_8);
  }

  public byte[] value() {
    return raw.value() == null ? new byte[0] : raw.value();
  }

  /** The last value of a header as text, or null when absent. */
  public String header(String name) {
    Header h = raw.headers().lastHeader(name);
    return h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }

  public String require(String name) {
    String v = header(name);
    if (v == null || v.isBlank()) {
      throw new PoisonException(DlqReason.MISSING_HEADER, "header " + name + " is required");
    }
    return v.trim();
  }

  public long requireLong(String name, long min, long max) {
    String v = require(name);
    long n;
    try {
      n = Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER, "header " + name + " = '" + v + "': must be an integer");
    }
    if (n < min || n > max) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER, "header " + name + " = " + n + ": must be " + min + ".." + max);
    }
    return n;
  }

  /**
   * Checks the required CloudEvents attributes (binary mode) and that {@code ce_type} is the one
   * this topic carries.
   */
  public void requireCloudEvent(String expectedType) {
    String spec = require(Headers.SPECVERSION);
    require(Headers.ID);
    require(Headers.SOURCE);
    String type = require(Headers.TYPE);
    if (!spec.equals(Headers.SPEC_VERSION)) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER,
          "header " + Headers.SPECVERSION + " = '" + spec + "': expected " + Headers.SPEC_VERSION);
    }
    if (!type.equals(expectedType)) {
      throw new PoisonException(
          DlqReason.INVALID_HEADER,
          "header "
              + Headers.TYPE
              + " = '"
              + type
              + "': topic "
              + raw.topic()
              + " carries "
              + expectedType);
    }
  }

  /** The key, which every input topic sets to the experiment. */
  public String requireKey() {
    String k = key();
    if (k == null || k.isBlank()) {
      throw new PoisonException(
          DlqReason.KEY_MISMATCH, "the record has no key; input topics are keyed by experiment");
    }
    return k;
  }
}
