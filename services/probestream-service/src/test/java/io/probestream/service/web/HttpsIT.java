package io.probestream.service.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.service.ProbestreamService;
import io.probestream.service.ServiceHarness;
import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * HTTPS on the real service: a self-signed certificate made here with keytool, served from PEM
 * files, trusted by the test's client; plain HTTP on the same port gets nowhere, and files the
 * server cannot use fail the start naming the key and the file.
 */
@ProbestreamIT
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HttpsIT {
  private static final String STORE_PASSWORD = "changeit";

  @TempDir static Path dir;
  private static Path certPem;
  private static Path keyPem;
  private static X509Certificate cert;

  /** keytool makes a key pair in a PKCS12 store; its certificate and PKCS#8 key become PEM. */
  @BeforeAll
  static void makeCertificate() throws Exception {
    Path store = dir.resolve("server.p12");
    Process keytool =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
                "-genkeypair",
                "-alias",
                "server",
                "-keyalg",
                "EC",
                "-groupname",
                "secp256r1",
                "-dname",
                "CN=localhost",
                "-ext",
                "SAN=ip:127.0.0.1,dns:localhost",
                "-validity",
                "2",
                "-storetype",
                "PKCS12",
                "-keystore",
                store.toString(),
                "-storepass",
                STORE_PASSWORD,
                "-keypass",
                STORE_PASSWORD)
            .redirectErrorStream(true)
            .start();
    String output = new String(keytool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(keytool.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(keytool.exitValue()).as(output).isZero();

    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(store)) {
      ks.load(in, STORE_PASSWORD.toCharArray());
    }
    cert = (X509Certificate) ks.getCertificate("server");
    PrivateKey key = (PrivateKey) ks.getKey("server", STORE_PASSWORD.toCharArray());
    assertThat(key.getFormat()).isEqualTo("PKCS#8");
    certPem = Files.writeString(dir.resolve("server.crt"), pem("CERTIFICATE", cert.getEncoded()));
    keyPem = Files.writeString(dir.resolve("server.key"), pem("PRIVATE KEY", key.getEncoded()));
  }

  private static String pem(String label, byte[] der) {
    return "-----BEGIN "
        + label
        + "-----\n"
        + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END "
        + label
        + "-----\n";
  }

  /** A client that trusts exactly the test's certificate. */
  private static HttpClient trustingClient() throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("server", cert);
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext ssl = SSLContext.getInstance("TLS");
    ssl.init(null, tmf.getTrustManagers(), null);
    return HttpClient.newBuilder().sslContext(ssl).connectTimeout(Duration.ofSeconds(10)).build();
  }

  private static HttpRequest get(String url) {
    return HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build();
  }

  @Test
  void healthOverHttpsWithTheCertificateAndPlainHttpGetsNowhere(KafkaTestCluster kafka)
      throws Exception {
    Map<String, String> tls =
        Map.of("http.tls-cert-file", certPem.toString(), "http.tls-key-file", keyPem.toString());
    try (ServiceHarness h = ServiceHarness.start(kafka, tls)) {
      int port = h.service.httpPort();
      HttpResponse<String> live =
          trustingClient()
              .send(
                  get("https://127.0.0.1:" + port + "/health/live"),
                  HttpResponse.BodyHandlers.ofString());
      assertThat(live.statusCode()).isEqualTo(200);
      assertThat(live.version()).isEqualTo(HttpClient.Version.HTTP_1_1);
      assertThat(live.body()).contains("\"status\"").contains("\"UP\"");
      Certificate served = live.sslSession().orElseThrow().getPeerCertificates()[0];
      assertThat(served).isEqualTo(cert);

      // Plain HTTP to the same port: the TLS server never answers it with HTTP.
      HttpClient plain = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
      assertThatThrownBy(
              () ->
                  plain.send(
                      get("http://127.0.0.1:" + port + "/health/live"),
                      HttpResponse.BodyHandlers.ofString()))
          .isInstanceOf(IOException.class)
          .isNotInstanceOf(java.net.http.HttpTimeoutException.class);

      // A client that does not trust the certificate refuses the server.
      assertThatThrownBy(
              () ->
                  HttpClient.newHttpClient()
                      .send(
                          get("https://127.0.0.1:" + port + "/health/live"),
                          HttpResponse.BodyHandlers.ofString()))
          .isInstanceOf(SSLHandshakeException.class);
    }
  }

  @Test
  void missingOrNonPemFilesFailTheStartNamingTheKeyAndFile(KafkaTestCluster kafka)
      throws Exception {
    Path missing = dir.resolve("missing.crt");
    Path notPem = Files.writeString(dir.resolve("not-a-key.key"), "hello\n");
    Path garbled =
        Files.writeString(
            dir.resolve("garbled.key"),
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
    assertStartFails(
        kafka,
        missing,
        keyPem,
        "probestream.http.tls-cert-file = " + missing + ": cannot read it (");
    assertStartFails(
        kafka,
        certPem,
        notPem,
        "probestream.http.tls-key-file = "
            + notPem
            + ": not a PEM file with a -----BEGIN PRIVATE KEY----- block");
    assertStartFails(
        kafka,
        certPem,
        garbled,
        "probestream.http.tls-cert-file = "
            + certPem
            + " and probestream.http.tls-key-file = "
            + garbled
            + ": not a usable certificate and key (");
  }

  private static void assertStartFails(
      KafkaTestCluster kafka, Path certFile, Path keyFile, String messageStart) throws Exception {
    Map<String, String> flags = new LinkedHashMap<>();
    flags.put("kafka.bootstrap-servers", kafka.bootstrapServers());
    flags.put("kafka.group-id", kafka.topicPrefix() + "group");
    flags.put("topics.prefix", kafka.topicPrefix());
    flags.put("topics.partitions", "1");
    flags.put("http.port", "0");
    flags.put("http.host", "127.0.0.1");
    flags.put("data-dir", dir.resolve("data").toString());
    flags.put("http.tls-cert-file", certFile.toString());
    flags.put("http.tls-key-file", keyFile.toString());
    ProbestreamConfig config = ProbestreamConfig.of(flags);
    Vertx vertx = Vertx.vertx();
    try {
      assertThatThrownBy(
              () ->
                  ProbestreamService.start(vertx, config, kafka.bootstrapServers())
                      .toCompletionStage()
                      .toCompletableFuture()
                      .get(60, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .cause()
          .isInstanceOf(IllegalStateException.class)
          .hasMessageStartingWith(messageStart);
      // Nothing is left deployed: the failed start undid itself.
      assertThat(vertx.deploymentIDs()).isEqualTo(java.util.Set.of());
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }
}
