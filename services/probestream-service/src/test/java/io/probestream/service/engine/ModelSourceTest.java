package io.probestream.service.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.inference.InferenceException;
import io.probestream.inference.ModelBytes;
import io.probestream.service.Fixtures;
import io.probestream.service.record.PoisonException;
import io.probestream.service.store.BlobStore;
import io.probestream.testkit.OnnxModelBuilder;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model sources on real files and a real HTTP server on 127.0.0.1: what is read, what is refused
 * (and with which reason and key), and which failures stay transient {@link IOException}s.
 */
class ModelSourceTest {
  private static final byte[] NCB = Fixtures.ncbModel();
  private static final long LIMIT = 1024; // the smallest probestream.limits.max-model-bytes

  @TempDir Path tmp;
  private Path root;
  private Path outside;
  private HttpServer server;
  private ExecutorService serverThreads;
  private String base;

  @BeforeEach
  void setUp() throws IOException {
    root = Files.createDirectories(tmp.resolve("models"));
    outside = Files.createDirectories(tmp.resolve("elsewhere"));
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    serverThreads = Executors.newCachedThreadPool();
    server.setExecutor(serverThreads); // a sleeping handler must not hold up the others
    server.start();
    base = "http://127.0.0.1:" + server.getAddress().getPort();
    serve("/ncb.onnx", x -> reply(x, 200, NCB));
  }

  @AfterEach
  void tearDown() {
    server.stop(0);
    serverThreads.shutdownNow();
  }

  private void serve(String path, HttpHandler handler) {
    server.createContext(path, handler);
  }

  private static void reply(HttpExchange x, int status, byte[] body) throws IOException {
    x.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
    try (OutputStream out = x.getResponseBody()) {
      out.write(body);
    }
  }

  private ModelSource source(String... flags) {
    Map<String, String> set = new LinkedHashMap<>();
    set.put("kafka.embedded", "true");
    set.put("model.file-roots", root.toString());
    for (int i = 0; i < flags.length; i += 2) {
      set.put(flags[i], flags[i + 1]);
    }
    ProbestreamConfig c = ProbestreamConfig.of(set);
    return new ModelSource(c.model(), c.limits(), new BlobStore(tmp.resolve("data")));
  }

  private ModelSource web(String... flags) {
    String[] all = new String[flags.length + 2];
    all[0] = "model.allowed-hosts";
    all[1] = "127.0.0.1:" + server.getAddress().getPort();
    System.arraycopy(flags, 0, all, 2, flags.length);
    return source(all);
  }

  private static void refused(ThrowingCallable call, DlqReason reason, String message) {
    assertThatThrownBy(call)
        .isInstanceOfSatisfying(
            PoisonException.class, p -> assertThat(p.reason()).as("reason").isEqualTo(reason))
        .hasMessageContaining(message);
  }

  private static String file(Path p) {
    return p.toUri().toString();
  }

  // file://

  @Test
  void aFileUnderARootIsReadWholeAndInline() throws Exception {
    Files.write(root.resolve("ncb.onnx"), NCB);
    ModelBytes m = source().readUri(file(root.resolve("ncb.onnx")));
    assertThat(m.bytes()).isEqualTo(NCB);
    assertThat(m.externalDataDir()).isNull();
  }

  @Test
  void dotDotAndSymlinksOutOfTheRootsAreRefused() throws Exception {
    Files.write(outside.resolve("ncb.onnx"), NCB);
    Files.createSymbolicLink(root.resolve("link.onnx"), outside.resolve("ncb.onnx"));
    ModelSource s = source();
    refused(
        () -> s.readUri("file://" + root + "/../elsewhere/ncb.onnx"),
        DlqReason.URI_NOT_ALLOWED,
        "is outside probestream.model.file-roots = [" + root + "]");
    refused(
        () -> s.readUri(file(root.resolve("link.onnx"))),
        DlqReason.URI_NOT_ALLOWED,
        "is outside probestream.model.file-roots");
  }

  @Test
  void aMissingFileIsUnloadableAndFileUrisNeedARoot() {
    refused(
        () -> source().readUri(file(root.resolve("missing.onnx"))),
        DlqReason.MODEL_UNLOADABLE,
        "no such file");
    refused(
        () -> source("model.file-roots", "").checkUri(file(root.resolve("ncb.onnx"))),
        DlqReason.URI_NOT_ALLOWED,
        "file URIs are refused while probestream.model.file-roots is empty");
  }

  @Test
  void bytesThatAreNotOnnxAreUnloadableAsTheEvaluatorSaysIt() throws Exception {
    Files.writeString(root.resolve("junk.onnx"), "this is not an ONNX model");
    assertThatThrownBy(() -> source().readUri(file(root.resolve("junk.onnx"))))
        .isInstanceOfSatisfying(
            InferenceException.class,
            x -> assertThat(x.reason()).isEqualTo(DlqReason.MODEL_UNLOADABLE))
        .hasMessageContaining("not an ONNX model");
  }

  @Test
  void aFileOverTheModelLimitIsTooLarge() throws Exception {
    Files.write(root.resolve("big.onnx"), new byte[2000]);
    refused(
        () -> source("limits.max-model-bytes", "1024").readUri(file(root.resolve("big.onnx"))),
        DlqReason.PAYLOAD_TOO_LARGE,
        "model file is 2000 bytes; limit probestream.limits.max-model-bytes = 1024");
  }

  @Test
  void otherSchemesAreRefused() {
    refused(
        () -> source().checkUri("ftp://127.0.0.1/ncb.onnx"),
        DlqReason.URI_NOT_ALLOWED,
        "only file:// URIs under probestream.model.file-roots and http(s):// URIs to"
            + " probestream.model.allowed-hosts are allowed");
    refused(() -> source().checkUri("not a uri"), DlqReason.URI_NOT_ALLOWED, "is not a URI");
  }

  // ONNX external data beside a file:// model

  private static OnnxModelBuilder ncbWithExternalWeight(String location) {
    return new OnnxModelBuilder()
        .input("input", 2)
        .externalMatrix("classifier.weight", new double[][] {{1, 0}, {0, 1}, {-1, -1}}, location)
        .vector("classifier.bias", 0, -2.5, 0)
        .identity("input", "h")
        .linear("h", "classifier.weight", "classifier.bias", "logits")
        .output("h", 2)
        .output("logits", 3);
  }

  @Test
  void externalDataBesideTheModelGivesItsDirectory() throws Exception {
    Path sub = Files.createDirectories(root.resolve("big"));
    Path model = ncbWithExternalWeight("weights/ncb.data").writeTo(sub, "ncb.onnx");
    ModelBytes m = source().readUri(file(model));
    assertThat(m.bytes()).isEqualTo(Files.readAllBytes(model));
    assertThat(m.externalDataDir()).isEqualTo(sub.toRealPath());
  }

  @Test
  void externalDataLocationsThatLeaveTheDirectoryAreRefused() throws Exception {
    Files.write(outside.resolve("ncb.data"), new byte[24]);
    Path sub = Files.createDirectories(root.resolve("sub"));
    Files.write(root.resolve("up.data"), new byte[24]);
    Files.write(sub.resolve("up.onnx"), ncbWithExternalWeight("../up.data").build());
    Files.write(
        sub.resolve("abs.onnx"),
        ncbWithExternalWeight(outside.resolve("ncb.data").toString()).build());
    Files.createSymbolicLink(sub.resolve("link.data"), outside.resolve("ncb.data"));
    Files.write(sub.resolve("link.onnx"), ncbWithExternalWeight("link.data").build());
    ModelSource s = source();
    refused(
        () -> s.readUri(file(sub.resolve("up.onnx"))),
        DlqReason.URI_NOT_ALLOWED,
        "tensor 'classifier.weight' has external data location '../up.data', which is refused:"
            + " it contains '..'");
    refused(
        () -> s.readUri(file(sub.resolve("abs.onnx"))),
        DlqReason.URI_NOT_ALLOWED,
        "which is refused: it is absolute");
    refused(
        () -> s.readUri(file(sub.resolve("link.onnx"))),
        DlqReason.URI_NOT_ALLOWED,
        "outside the model's directory " + sub.toRealPath());
  }

  @Test
  void aMissingExternalDataFileIsUnloadable() throws Exception {
    Files.write(root.resolve("lost.onnx"), ncbWithExternalWeight("lost.data").build());
    refused(
        () -> source().readUri(file(root.resolve("lost.onnx"))),
        DlqReason.MODEL_UNLOADABLE,
        "has external data location 'lost.data', which does not exist in " + root.toRealPath());
  }

  @Test
  void blobsAndDownloadsMayNotUseExternalData() throws Exception {
    byte[] external = ncbWithExternalWeight("ncb.data").build();
    String sha = ProbeResult.sha256Hex(external);
    BlobStore blobs = new BlobStore(tmp.resolve("data"));
    blobs.open();
    blobs.writeChunk(sha, 0, 1, external.length, external);
    blobs.assemble(sha, 1, external.length);
    ProbestreamConfig c = ProbestreamConfig.of(Map.of("kafka.embedded", "true"));
    ModelSource s = new ModelSource(c.model(), c.limits(), blobs);
    CheckpointManifest m =
        CheckpointManifest.parse(
            Fixtures.manifest(
                    "e", "r", 1, sha, external.length, 1, "{\"h\":\"h\"}", ",\"classes\":3")
                .getBytes(StandardCharsets.UTF_8));
    refused(
        () -> s.load(m),
        DlqReason.URI_NOT_ALLOWED,
        "model blob "
            + sha
            + ": tensor 'classifier.weight' has external data location 'ncb.data'; external data"
            + " is read only beside a file:// model under probestream.model.file-roots");

    serve("/external.onnx", x -> reply(x, 200, external));
    refused(
        () -> web().readUri(base + "/external.onnx"),
        DlqReason.URI_NOT_ALLOWED,
        "external data is read only beside a file:// model");
  }

  // http(s)://

  @Test
  void anAllowedHostServesTheModel() throws Exception {
    assertThat(web().readUri(base + "/ncb.onnx").bytes()).isEqualTo(NCB);
    // A bare host allows every port of it.
    assertThat(source("model.allowed-hosts", "127.0.0.1").readUri(base + "/ncb.onnx").bytes())
        .isEqualTo(NCB);
  }

  @Test
  void aHostOrPortNotAllowedIsRefusedBeforeAnyConnection() {
    int other = server.getAddress().getPort() == 1 ? 2 : 1;
    refused(
        () -> source("model.allowed-hosts", "127.0.0.1:" + other).checkUri(base + "/ncb.onnx"),
        DlqReason.URI_NOT_ALLOWED,
        "host '127.0.0.1:"
            + server.getAddress().getPort()
            + "' is not in probestream.model.allowed-hosts = [127.0.0.1:"
            + other
            + "]");
    refused(
        () -> source().readUri(base + "/ncb.onnx"),
        DlqReason.URI_NOT_ALLOWED,
        "http(s) URIs are refused while probestream.model.allowed-hosts is empty");
  }

  @Test
  void aStatusOtherThan2xxIsUnloadable() {
    refused(
        () -> web().readUri(base + "/missing.onnx"),
        DlqReason.MODEL_UNLOADABLE,
        "': HTTP status 404 from " + base + "/missing.onnx");
  }

  @Test
  void aContentLengthOverTheLimitIsTooLargeWithoutReadingTheBody() {
    serve("/big.onnx", x -> reply(x, 200, new byte[2000]));
    refused(
        () -> web("limits.max-model-bytes", Long.toString(LIMIT)).readUri(base + "/big.onnx"),
        DlqReason.PAYLOAD_TOO_LARGE,
        "has Content-Length 2000; limit probestream.limits.max-model-bytes = 1024");
  }

  @Test
  void aChunkedBodyOverTheLimitIsCutOff() {
    serve(
        "/chunked.onnx",
        x -> {
          x.sendResponseHeaders(200, 0); // chunked: no Content-Length to check up front
          try (OutputStream out = x.getResponseBody()) {
            for (int i = 0; i < 4; i++) {
              out.write(new byte[600]);
              out.flush();
            }
          } catch (IOException e) {
            // the client hung up once past the limit, as it should
          }
        });
    refused(
        () -> web("limits.max-model-bytes", Long.toString(LIMIT)).readUri(base + "/chunked.onnx"),
        DlqReason.PAYLOAD_TOO_LARGE,
        "sent more than 1024 bytes; limit probestream.limits.max-model-bytes = 1024");
  }

  @Test
  void redirectsAreFollowedOnTheSameHostOnly() throws Exception {
    serve(
        "/moved",
        x -> {
          x.getResponseHeaders().add("Location", "/ncb.onnx");
          reply(x, 302, new byte[0]);
        });
    serve(
        "/away",
        x -> {
          x.getResponseHeaders().add("Location", "http://models.invalid/ncb.onnx");
          reply(x, 301, new byte[0]);
        });
    assertThat(web().readUri(base + "/moved").bytes()).isEqualTo(NCB);
    refused(
        () -> web().readUri(base + "/away"),
        DlqReason.URI_NOT_ALLOWED,
        "redirects to 'http://models.invalid/ncb.onnx'; redirects to another host or scheme are"
            + " refused");
  }

  @Test
  void noResponseWithinTheTimeoutIsATransientIoError() {
    serve("/slow.onnx", x -> sleep());
    assertThatThrownBy(() -> web("model.http-timeout-ms", "300").readUri(base + "/slow.onnx"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(
            "nothing arrived from "
                + base
                + "/slow.onnx within probestream.model.http-timeout-ms = 300");
  }

  @Test
  void aBodyThatStallsPastTheTimeoutIsATransientIoError() {
    serve(
        "/stall.onnx",
        x -> {
          x.sendResponseHeaders(200, NCB.length);
          OutputStream out = x.getResponseBody();
          out.write(NCB, 0, 10);
          out.flush();
          sleep();
        });
    assertThatThrownBy(() -> web("model.http-timeout-ms", "300").readUri(base + "/stall.onnx"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining(
            "nothing arrived from "
                + base
                + "/stall.onnx within probestream.model.http-timeout-ms = 300");
  }

  @Test
  void aRefusedConnectionIsATransientIoError() throws Exception {
    int closed;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closed = s.getLocalPort();
    }
    assertThatThrownBy(
            () ->
                source("model.allowed-hosts", "127.0.0.1")
                    .readUri("http://127.0.0.1:" + closed + "/ncb.onnx"))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("cannot fetch http://127.0.0.1:" + closed + "/ncb.onnx");
  }

  private static void sleep() {
    try {
      Thread.sleep(10_000); // ended by shutdownNow in tearDown
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
