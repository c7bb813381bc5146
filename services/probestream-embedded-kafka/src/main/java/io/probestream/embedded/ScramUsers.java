package io.probestream.embedded;

import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.metadata.UserScramCredentialRecord;
import org.apache.kafka.common.security.scram.ScramCredential;
import org.apache.kafka.common.security.scram.internals.ScramFormatter;
import org.apache.kafka.common.security.scram.internals.ScramMechanism;
import org.apache.kafka.server.common.ApiMessageAndVersion;

/** The embedded broker's SCRAM-SHA-512 users: created at format time, or over the Admin API. */
final class ScramUsers {
  static final String MECHANISM = "SCRAM-SHA-512";
  private static final int ITERATIONS = 4096;
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private ScramUsers() {}

  /** The metadata records that create {@code users} when the storage is formatted. */
  static List<ApiMessageAndVersion> records(Map<String, String> users) {
    List<ApiMessageAndVersion> records = new ArrayList<>();
    try {
      ScramFormatter formatter = new ScramFormatter(ScramMechanism.SCRAM_SHA_512);
      for (Map.Entry<String, String> u : new TreeMap<>(users).entrySet()) {
        ScramCredential c = formatter.generateCredential(u.getValue(), ITERATIONS);
        records.add(
            new ApiMessageAndVersion(
                new UserScramCredentialRecord()
                    .setName(u.getKey())
                    .setMechanism(ScramMechanism.SCRAM_SHA_512.type())
                    .setSalt(c.salt())
                    .setStoredKey(c.storedKey())
                    .setServerKey(c.serverKey())
                    .setIterations(c.iterations()),
                (short) 0));
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JVM cannot compute SCRAM-SHA-512 credentials", e);
    }
    return records;
  }

  /**
   * Creates or updates {@code users} through the PLAINTEXT listener, then waits until each of them
   * can log in on the SASL listener (the broker applies the change asynchronously).
   */
  static void upsert(String plainBootstrap, String saslBootstrap, Map<String, String> users) {
    List<UserScramCredentialAlteration> changes = new ArrayList<>();
    users.forEach(
        (name, password) ->
            changes.add(
                new UserScramCredentialUpsertion(
                    name,
                    new ScramCredentialInfo(
                        org.apache.kafka.clients.admin.ScramMechanism.SCRAM_SHA_512, ITERATIONS),
                    password)));
    try (Admin admin =
        Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, plainBootstrap))) {
      admin.alterUserScramCredentials(changes).all().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (ExecutionException | TimeoutException e) {
      throw new IllegalStateException("creating SCRAM users " + users.keySet() + " failed", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted creating SCRAM users", e);
    }
    for (Map.Entry<String, String> u : users.entrySet()) {
      awaitLogin(saslBootstrap, u.getKey(), u.getValue());
    }
  }

  private static void awaitLogin(String saslBootstrap, String user, String password) {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    Map<String, Object> config =
        Map.of(
            AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG,
            saslBootstrap,
            AdminClientConfig.SECURITY_PROTOCOL_CONFIG,
            "SASL_PLAINTEXT",
            "sasl.mechanism",
            MECHANISM,
            "sasl.jaas.config",
            jaas(user, password));
    while (true) {
      try (Admin admin = Admin.create(config)) {
        admin.describeCluster().clusterId().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        return;
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof AuthenticationException) || System.nanoTime() > deadline) {
          throw new IllegalStateException("SCRAM user '" + user + "' cannot log in", e);
        }
      } catch (TimeoutException e) {
        throw new IllegalStateException("SCRAM user '" + user + "' cannot log in", e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted waiting for SCRAM user '" + user + "'", e);
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted waiting for SCRAM user '" + user + "'", e);
      }
    }
  }

  /** A client's {@code sasl.jaas.config} for one user, quoted for Kafka's parser. */
  static String jaas(String user, String password) {
    return "org.apache.kafka.common.security.scram.ScramLoginModule required username="
        + quote(user)
        + " password="
        + quote(password)
        + ";";
  }

  private static String quote(String v) {
    return '"'
        + v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\r", "\\r")
        + '"';
  }
}
