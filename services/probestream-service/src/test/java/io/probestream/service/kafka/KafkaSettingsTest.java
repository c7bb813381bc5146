package io.probestream.service.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.contracts.config.ConfigException;
import io.probestream.contracts.config.ProbestreamConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.security.JaasContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What every Kafka client of the service gets from the security settings. */
class KafkaSettingsTest {
  private static final String BOOTSTRAP = "broker-1:9093";
  // Everything that could break a JAAS line: quotes, backslashes, '=', ';', spaces, a newline.
  private static final String PASSWORD = "pa\"ss\\word=1; x\ny ü";

  @TempDir Path dir;

  private ProbestreamConfig config(Map<String, String> security) {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.bootstrap-servers", BOOTSTRAP);
    flags.put("data-dir", dir.resolve("data").toString());
    flags.putAll(security);
    return ProbestreamConfig.of(flags);
  }

  private Path write(String name, String content) throws IOException {
    return Files.writeString(dir.resolve(name), content);
  }

  /** The four clients' settings: consumer, reader, producer, admin. */
  private static List<Map<String, Object>> clients(ProbestreamConfig c) {
    return List.of(
        new HashMap<>(KafkaSettings.consumer(c, BOOTSTRAP)),
        KafkaSettings.reader(c, BOOTSTRAP, "reader"),
        KafkaSettings.producer(c, BOOTSTRAP),
        KafkaSettings.admin(c, BOOTSTRAP));
  }

  /** The login module and its options, parsed by Kafka's own JAAS parser. */
  private static AppConfigurationEntry parseJaas(Object jaas) {
    List<AppConfigurationEntry> entries =
        JaasContext.loadClientContext(
                Map.of(SaslConfigs.SASL_JAAS_CONFIG, new Password((String) jaas)))
            .configurationEntries();
    assertThat(entries).hasSize(1);
    return entries.get(0);
  }

  @Test
  void plaintextByDefaultWithNoSaslOrSslSettings() {
    ProbestreamConfig c = config(Map.of());
    assertThat(KafkaSettings.security(c.kafkaSecurity()))
        .isEqualTo(Map.of("security.protocol", "PLAINTEXT"));
    for (Map<String, Object> m : clients(c)) {
      assertThat(m).containsEntry("security.protocol", "PLAINTEXT");
      assertThat(m.keySet()).noneMatch(k -> k.startsWith("sasl.") || k.startsWith("ssl."));
    }
  }

  @Test
  void scramLoginReachesEveryClientAndSurvivesKafkasJaasParser() throws IOException {
    Path secret = write("kafka-password", PASSWORD + "\n");
    ProbestreamConfig c =
        config(
            Map.of(
                "kafka.security-protocol", "SASL_PLAINTEXT",
                "kafka.sasl-username", "probe \"svc\"",
                "kafka.sasl-password-file", secret.toString()));
    Map<String, String> security = KafkaSettings.security(c.kafkaSecurity());
    assertThat(security)
        .containsEntry("security.protocol", "SASL_PLAINTEXT")
        .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
        .doesNotContainKeys("ssl.truststore.location", "ssl.truststore.type");
    String jaas = security.get("sasl.jaas.config");
    assertThat(jaas)
        .isEqualTo(
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
                + " username=\"probe \\\"svc\\\"\" password=\"pa\\\"ss\\\\word=1; x\\ny ü\";");
    AppConfigurationEntry entry = parseJaas(jaas);
    assertThat(entry.getLoginModuleName())
        .isEqualTo("org.apache.kafka.common.security.scram.ScramLoginModule");
    assertThat(entry.getControlFlag())
        .isEqualTo(AppConfigurationEntry.LoginModuleControlFlag.REQUIRED);
    assertThat(entry.getOptions())
        .isEqualTo(Map.of("username", "probe \"svc\"", "password", PASSWORD));
    for (Map<String, Object> m : clients(c)) {
      assertThat(m)
          .containsEntry("bootstrap.servers", BOOTSTRAP)
          .containsEntry("security.protocol", "SASL_PLAINTEXT")
          .containsEntry("sasl.mechanism", "SCRAM-SHA-512")
          .containsEntry("sasl.jaas.config", jaas);
    }
  }

  @Test
  void plainMechanismUsesThePlainLoginModule() throws IOException {
    ProbestreamConfig c =
        config(
            Map.of(
                "kafka.security-protocol", "SASL_SSL",
                "kafka.sasl-mechanism", "plain",
                "kafka.sasl-username", "svc",
                "kafka.sasl-password-file", write("pw", "s3cret").toString()));
    Map<String, String> security = KafkaSettings.security(c.kafkaSecurity());
    assertThat(security).containsEntry("sasl.mechanism", "PLAIN");
    AppConfigurationEntry entry = parseJaas(security.get("sasl.jaas.config"));
    assertThat(entry.getLoginModuleName())
        .isEqualTo("org.apache.kafka.common.security.plain.PlainLoginModule");
    assertThat(entry.getOptions()).isEqualTo(Map.of("username", "svc", "password", "s3cret"));
  }

  @Test
  void truststoreTypeFollowsTheExtensionAndOnlyStoresWithAPasswordGetOne() throws IOException {
    Path password = write("truststore-password", "changeit");
    Map<String, String> expected =
        Map.of(
            "ca.pem", "PEM", "ca.CRT", "PEM", "ts.p12", "PKCS12", "ts.pfx", "PKCS12", "ts.jks",
            "JKS");
    expected.forEach(
        (file, type) -> {
          Map<String, String> flags = new LinkedHashMap<>();
          flags.put("kafka.security-protocol", "SSL");
          flags.put("kafka.ssl-truststore-file", "/etc/kafka/" + file);
          if (!type.equals("PEM")) {
            flags.put("kafka.ssl-truststore-password-file", password.toString());
          }
          Map<String, String> security = KafkaSettings.security(config(flags).kafkaSecurity());
          assertThat(security)
              .as(file)
              .containsEntry("security.protocol", "SSL")
              .containsEntry("ssl.truststore.location", "/etc/kafka/" + file)
              .containsEntry("ssl.truststore.type", type)
              .doesNotContainKeys("sasl.mechanism", "sasl.jaas.config");
          if (type.equals("PEM")) {
            assertThat(security).doesNotContainKey("ssl.truststore.password");
          } else {
            assertThat(security).containsEntry("ssl.truststore.password", "changeit");
          }
        });

    assertThatThrownBy(
            () ->
                config(
                    Map.of(
                        "kafka.security-protocol",
                        "SSL",
                        "kafka.ssl-truststore-file",
                        "/etc/kafka/ca.txt")))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.kafka.ssl-truststore-file = /etc/kafka/ca.txt: cannot tell the store"
                + " type; name it .pem or .crt (PEM), .p12 or .pfx (PKCS12), or .jks (JKS)");
    assertThatThrownBy(
            () ->
                config(
                    Map.of(
                        "kafka.security-protocol", "SSL",
                        "kafka.ssl-truststore-file", "/etc/kafka/ca.pem",
                        "kafka.ssl-truststore-password-file", password.toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.kafka.ssl-truststore-password-file is for PKCS12 and JKS stores; the PEM"
                + " truststore /etc/kafka/ca.pem takes no password");
  }

  @Test
  void clientPropertiesApplyLastToEveryClient() throws IOException {
    Path props =
        write(
            "client.properties",
            "security.protocol=SASL_SSL\n"
                + "ssl.endpoint.identification.algorithm=\n"
                + "request.timeout.ms=5000\n"
                + "ssl.keystore.location=/etc/kafka/client.p12\n"
                + "ssl.keystore.password=keystore-secret\n");
    ProbestreamConfig c =
        config(
            Map.of(
                "kafka.security-protocol",
                "SASL_PLAINTEXT",
                "kafka.sasl-username",
                "svc",
                "kafka.sasl-password-file",
                write("pw", "s3cret").toString(),
                "kafka.client-properties-file",
                props.toString()));
    for (Map<String, Object> m : clients(c)) {
      assertThat(m)
          .containsEntry("security.protocol", "SASL_SSL")
          .containsEntry("ssl.endpoint.identification.algorithm", "")
          .containsEntry("request.timeout.ms", "5000")
          .containsEntry("ssl.keystore.password", "keystore-secret")
          .containsEntry("sasl.mechanism", "SCRAM-SHA-512");
    }
    // The admin's own 10 s request timeout is overridden too.
    assertThat(KafkaSettings.admin(c, BOOTSTRAP)).containsEntry("request.timeout.ms", "5000");
  }

  @Test
  void theEmbeddedBrokerTakesPlaintextOnly() throws IOException {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.embedded", "true");
    flags.put("data-dir", dir.resolve("data").toString());
    flags.put("kafka.security-protocol", "SASL_PLAINTEXT");
    flags.put("kafka.sasl-username", "svc");
    flags.put("kafka.sasl-password-file", write("pw", "s3cret").toString());
    assertThatThrownBy(() -> ProbestreamConfig.of(flags))
        .isInstanceOf(ConfigException.class)
        .hasMessage(
            "probestream.kafka.security-protocol = SASL_PLAINTEXT and probestream.kafka.embedded"
                + " = true: the embedded broker speaks PLAINTEXT on 127.0.0.1 only");
  }

  @Test
  void configToStringNeverShowsAPassword() throws IOException {
    Path props = write("client.properties", "ssl.keystore.password=keystore-secret\n");
    ProbestreamConfig c =
        config(
            Map.of(
                "kafka.security-protocol",
                "SASL_SSL",
                "kafka.sasl-username",
                "svc",
                "kafka.sasl-password-file",
                write("pw", "sasl-secret-1").toString(),
                "kafka.ssl-truststore-file",
                "/etc/kafka/ts.p12",
                "kafka.ssl-truststore-password-file",
                write("tspw", "trust-secret-2").toString(),
                "kafka.client-properties-file",
                props.toString()));
    assertThat(c.kafkaSecurity().saslPassword()).isEqualTo("sasl-secret-1");
    assertThat(c.kafkaSecurity().truststorePassword()).isEqualTo("trust-secret-2");
    for (String shown : List.of(c.toString(), c.kafkaSecurity().toString())) {
      assertThat(shown)
          .contains("protocol=SASL_SSL", "user=svc", "truststore=/etc/kafka/ts.p12")
          .doesNotContain("sasl-secret-1", "trust-secret-2", "keystore-secret");
    }
  }
}
