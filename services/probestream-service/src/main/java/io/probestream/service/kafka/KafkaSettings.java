package io.probestream.service.kafka;

import io.probestream.contracts.config.ProbestreamConfig;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Client settings derived from the configuration, in one place: every map carries {@link #security}
 * last, so every client the service creates authenticates and encrypts alike. Stateless.
 */
public final class KafkaSettings {
  /** Room for record overhead (headers, batch framing) above the payload limit. */
  public static final int SLACK_BYTES = 1 << 20;

  private KafkaSettings() {}

  public static Map<String, String> consumer(ProbestreamConfig c, String bootstrap) {
    // Kafka returns a record larger than these limits on its own anyway, so small limits keep a
    // backlog's fetched-but-unhandled bytes (held while intake is paused) small without ever
    // blocking a 64 MiB batch.
    String fetch = Integer.toString(4 << 20);
    Map<String, String> m = new HashMap<>();
    m.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    m.put(ConsumerConfig.GROUP_ID_CONFIG, c.kafka().groupId());
    m.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.toString(c.kafka().sessionTimeoutMs()));
    m.put(
        ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG,
        Integer.toString(Math.max(500, c.kafka().sessionTimeoutMs() / 3)));
    m.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    m.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    m.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, fetch);
    m.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, fetch);
    // Small polls keep what the consumer has fetched but not handed over small while paused.
    m.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "16");
    // Range assignment gives one instance the same partition number of every input topic, so an
    // experiment's checkpoints, blobs and batches (all keyed by experiment) meet on one instance.
    m.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
    m.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    m.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    m.putAll(security(c.kafkaSecurity()));
    return m;
  }

  /**
   * A consumer that joins no group and commits nothing, for reading a topic from its start (the
   * results view's rebuild).
   */
  public static Map<String, Object> reader(ProbestreamConfig c, String bootstrap, String clientId) {
    Map<String, Object> m = new HashMap<>();
    m.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    m.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    m.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    m.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    m.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    m.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    m.putAll(security(c.kafkaSecurity()));
    return m;
  }

  public static Map<String, Object> producer(ProbestreamConfig c, String bootstrap) {
    Map<String, Object> m = new HashMap<>();
    m.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    m.put(ProducerConfig.ACKS_CONFIG, "all");
    m.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    m.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    // send() waits for a topic's metadata on the caller's thread (an event loop): with the broker
    // away, give up after 2 s and let the caller's retry (Resend) try again, instead of 60 s.
    m.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "2000");
    // A dead-lettered batch carries its original value, up to the batch limit.
    m.put(
        ProducerConfig.MAX_REQUEST_SIZE_CONFIG,
        Long.toString(c.limits().maxBatchBytes() + SLACK_BYTES));
    m.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    m.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    m.putAll(security(c.kafkaSecurity()));
    return m;
  }

  public static Map<String, Object> admin(ProbestreamConfig c, String bootstrap) {
    Map<String, Object> m = new HashMap<>();
    m.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    m.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    m.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    m.putAll(security(c.kafkaSecurity()));
    return m;
  }

  /**
   * The authentication and encryption settings every client gets: {@code security.protocol}; with
   * SASL the mechanism and a JAAS login ({@code ScramLoginModule} or {@code PlainLoginModule});
   * with TLS the truststore, its type by extension and its password; then the client properties,
   * which override all of these. The values hold secrets: never log the map (Kafka's own config log
   * shows {@code sasl.jaas.config} and passwords as {@code [hidden]}).
   */
  public static Map<String, String> security(ProbestreamConfig.KafkaSecurity s) {
    Map<String, String> m = new HashMap<>();
    m.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, s.protocol());
    if (s.usesSasl()) {
      m.put(SaslConfigs.SASL_MECHANISM, s.saslMechanism());
      m.put(
          SaslConfigs.SASL_JAAS_CONFIG,
          jaasConfig(s.saslMechanism(), s.saslUsername(), s.saslPassword()));
    }
    if (s.usesTls() && !s.truststoreFile().isEmpty()) {
      m.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, s.truststoreFile());
      m.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, s.truststoreType());
      if (!s.truststorePassword().isEmpty()) {
        m.put(SslConfigs.SSL_TRUSTSTORE_PASSWORD_CONFIG, s.truststorePassword());
      }
    }
    m.putAll(s.clientProperties());
    return m;
  }

  /**
   * The {@code sasl.jaas.config} line for a user: the SCRAM login module for SCRAM-SHA-*, the plain
   * one for PLAIN, with both values quoted so that any character survives Kafka's parser.
   */
  static String jaasConfig(String mechanism, String username, String password) {
    String module =
        mechanism.equals("PLAIN")
            ? "org.apache.kafka.common.security.plain.PlainLoginModule"
            : "org.apache.kafka.common.security.scram.ScramLoginModule";
    return module + " required username=" + quote(username) + " password=" + quote(password) + ";";
  }

  // Kafka reads sasl.jaas.config with java.io.StreamTokenizer: inside double quotes a backslash
  // escapes the next character, and a bare line break would end the value.
  private static String quote(String value) {
    StringBuilder b = new StringBuilder(value.length() + 2).append('"');
    for (int i = 0; i < value.length(); i++) {
      char ch = value.charAt(i);
      switch (ch) {
        case '\\' -> b.append("\\\\");
        case '"' -> b.append("\\\"");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        default -> b.append(ch);
      }
    }
    return b.append('"').toString();
  }
}
