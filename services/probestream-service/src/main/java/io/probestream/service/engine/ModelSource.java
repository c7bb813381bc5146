package io.probestream.service.engine;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.onnx.OnnxFormatException;
import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.inference.InferenceException;
import io.probestream.inference.ModelBytes;
import io.probestream.service.record.PoisonException;
import io.probestream.service.store.BlobStore;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Where a checkpoint's model comes from: the blob store, a {@code file://} URI under {@code
 * probestream.model.file-roots} (with ONNX external data beside it), or an {@code http(s)://} URI
 * on {@code probestream.model.allowed-hosts}. {@link #checkUri} does no I/O and may run on the
 * event loop; {@link #load} blocks and runs on workers only. Refusals are {@link PoisonException}s
 * (an {@link InferenceException} for bytes that are not ONNX, as the evaluator reports them); I/O
 * failures (connection refused, timeouts) are {@link IOException}s, which workers retry.
 * Thread-safe.
 */
public final class ModelSource {
  private static final int MAX_REDIRECTS = 5;

  private final ProbestreamConfig.Model config;
  private final long maxModelBytes;
  private final BlobStore blobs;
  private HttpClient http; // created on the first download; guarded by this

  public ModelSource(
      ProbestreamConfig.Model config, ProbestreamConfig.Limits limits, BlobStore blobs) {
    this.config = config;
    this.maxModelBytes = limits.maxModelBytes();
    this.blobs = blobs;
  }

  /** Refuses a model URI that is never allowed: its scheme, an empty root list, its host. */
  public void checkUri(String uri) {
    URI u = parse(uri);
    String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
    switch (scheme) {
      case "file" -> {
        if (config.fileRoots().isEmpty()) {
          throw new PoisonException(
              DlqReason.URI_NOT_ALLOWED,
              "model.uri = '"
                  + uri
                  + "': file URIs are refused while probestream.model.file-roots is empty");
        }
      }
      case "http", "https" -> requireAllowedHost(u, uri);
      default ->
          throw new PoisonException(
              DlqReason.URI_NOT_ALLOWED,
              "model.uri = '"
                  + uri
                  + "': only file:// URIs under probestream.model.file-roots and http(s):// URIs"
                  + " to probestream.model.allowed-hosts are allowed");
    }
  }

  /** Most bytes of recently loaded blob models kept for the next load (live batches). */
  static final long RECENT_BYTES = 256L << 20;

  // sha256 → the model bytes of a blob loaded lately, least recently used first; blobs are
  // content-addressed, so the bytes stay right even after the store evicted the file
  private final java.util.LinkedHashMap<String, ModelBytes> recent =
      new java.util.LinkedHashMap<>(16, 0.75f, true);
  private long recentBytes;

  /**
   * Blocking: the checkpoint's model, from the blob store or its URI. A blob's bytes are kept
   * (within {@link #RECENT_BYTES}) and the same instance is returned for it again, so that a
   * checkpoint's live batches read and prepare its model once.
   */
  public ModelBytes load(CheckpointManifest m) throws IOException {
    if (m.model() instanceof CheckpointManifest.Blob b) {
      synchronized (recent) {
        ModelBytes hit = recent.get(b.sha256());
        if (hit != null) {
          return hit;
        }
      }
      byte[] bytes = blobs.read(b.sha256());
      refuseExternalData(bytes, "model blob " + b.sha256());
      ModelBytes loaded = ModelBytes.inline(bytes);
      synchronized (recent) {
        ModelBytes raced = recent.putIfAbsent(b.sha256(), loaded);
        if (raced != null) {
          return raced;
        }
        recentBytes += bytes.length;
        java.util.Iterator<ModelBytes> oldest = recent.values().iterator();
        while (recentBytes > RECENT_BYTES && recent.size() > 1) {
          recentBytes -= oldest.next().bytes().length;
          oldest.remove();
        }
      }
      return loaded;
    }
    return readUri(((CheckpointManifest.Uri) m.model()).uri());
  }

  /** Blocking: the model a {@code file://} or {@code http(s)://} URI names. */
  ModelBytes readUri(String uri) throws IOException {
    checkUri(uri);
    URI u = parse(uri);
    if ("file".equalsIgnoreCase(u.getScheme())) {
      return readFile(u, uri);
    }
    byte[] bytes = download(u, uri);
    refuseExternalData(bytes, "model.uri = '" + uri + "'");
    return ModelBytes.inline(bytes);
  }

  private static URI parse(String uri) {
    try {
      return new URI(uri);
    } catch (URISyntaxException e) {
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED, "model.uri = '" + uri + "' is not a URI: " + e.getMessage());
    }
  }

  private ModelBytes readFile(URI u, String uri) throws IOException {
    Path p;
    try {
      p = Path.of(u).toAbsolutePath().normalize();
    } catch (IllegalArgumentException e) {
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED, "model.uri = '" + uri + "': " + e.getMessage());
    }
    Path real;
    try {
      real = p.toRealPath();
    } catch (NoSuchFileException e) {
      throw new PoisonException(
          DlqReason.MODEL_UNLOADABLE, "model.uri = '" + uri + "': no such file");
    }
    boolean allowed = false;
    for (Path root : config.fileRoots()) {
      Path r = Files.exists(root) ? root.toRealPath() : root;
      allowed |= real.startsWith(r);
    }
    if (!allowed) {
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED,
          "model.uri = '"
              + uri
              + "' is outside probestream.model.file-roots = "
              + config.fileRoots());
    }
    long size = Files.size(real);
    if (size > maxModelBytes) {
      throw tooLarge("model file is " + size + " bytes");
    }
    byte[] bytes = Files.readAllBytes(real);
    List<OnnxGraph.ExternalData> external = externalData(bytes, "model.uri = '" + uri + "'");
    if (external.isEmpty()) {
      return ModelBytes.inline(bytes);
    }
    Path dir = real.getParent();
    for (OnnxGraph.ExternalData e : external) {
      String where =
          "model.uri = '"
              + uri
              + "': tensor '"
              + e.tensor()
              + "' has external data location '"
              + e.location()
              + "'";
      String escape = e.escape();
      if (escape != null) {
        throw new PoisonException(
            DlqReason.URI_NOT_ALLOWED,
            where + ", which is refused: " + escape + " (it must name a file beside the model)");
      }
      Path file;
      try {
        file = dir.resolve(e.location()).toRealPath();
      } catch (NoSuchFileException x) {
        throw new PoisonException(
            DlqReason.MODEL_UNLOADABLE, where + ", which does not exist in " + dir);
      }
      if (!file.startsWith(dir)) {
        throw new PoisonException(
            DlqReason.URI_NOT_ALLOWED,
            where + ", which resolves to " + file + ", outside the model's directory " + dir);
      }
    }
    return new ModelBytes(bytes, dir);
  }

  /**
   * A model without a directory of its own must keep every tensor inline: ORT would otherwise
   * resolve its external data against the process's working directory.
   */
  private static void refuseExternalData(byte[] bytes, String what) {
    List<OnnxGraph.ExternalData> external = externalData(bytes, what);
    if (!external.isEmpty()) {
      OnnxGraph.ExternalData e = external.get(0);
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED,
          what
              + ": tensor '"
              + e.tensor()
              + "' has external data location '"
              + e.location()
              + "'; external data is read only beside a file:// model under"
              + " probestream.model.file-roots");
    }
  }

  private static List<OnnxGraph.ExternalData> externalData(byte[] bytes, String what) {
    try {
      return OnnxGraph.externalData(bytes);
    } catch (OnnxFormatException e) {
      // Fails closed, and as the evaluator would: these bytes are no model ORT can load.
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, what + ": " + e.getMessage(), e);
    }
  }

  private PoisonException tooLarge(String what) {
    return new PoisonException(
        DlqReason.PAYLOAD_TOO_LARGE,
        what + "; limit probestream.limits.max-model-bytes = " + maxModelBytes);
  }

  // http(s)

  private void requireAllowedHost(URI u, String uri) {
    String host = u.getHost();
    if (host == null) {
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED, "model.uri = '" + uri + "' names no host");
    }
    if (config.allowedHosts().isEmpty()) {
      throw new PoisonException(
          DlqReason.URI_NOT_ALLOWED,
          "model.uri = '"
              + uri
              + "': http(s) URIs are refused while probestream.model.allowed-hosts is empty");
    }
    String h = host.toLowerCase(Locale.ROOT);
    int port = u.getPort() >= 0 ? u.getPort() : "https".equalsIgnoreCase(u.getScheme()) ? 443 : 80;
    for (String entry : config.allowedHosts()) {
      int colon = entry.lastIndexOf(':');
      boolean hasPort = colon > entry.lastIndexOf(']');
      String entryHost = hasPort ? entry.substring(0, colon) : entry;
      if (entryHost.equals(h)
          && (!hasPort || Integer.parseInt(entry.substring(colon + 1)) == port)) {
        return;
      }
    }
    throw new PoisonException(
        DlqReason.URI_NOT_ALLOWED,
        "model.uri = '"
            + uri
            + "': host '"
            + h
            + ":"
            + port
            + "' is not in probestream.model.allowed-hosts = "
            + config.allowedHosts());
  }

  private synchronized HttpClient http() {
    if (http == null) {
      http =
          HttpClient.newBuilder()
              .followRedirects(HttpClient.Redirect.NEVER) // followed here, to the same host only
              .connectTimeout(Duration.ofMillis(config.httpTimeoutMs()))
              .executor(
                  Executors.newCachedThreadPool(
                      r -> {
                        Thread t = new Thread(r, "probestream-model-http");
                        t.setDaemon(true);
                        return t;
                      }))
              .build();
    }
    return http;
  }

  private byte[] download(URI first, String uri) throws IOException {
    URI at = first;
    for (int hop = 0; ; hop++) {
      HttpResponse<Body> r = get(at, uri);
      int status = r.statusCode();
      if (status / 100 == 2) {
        long declared = r.headers().firstValueAsLong("content-length").orElse(-1);
        if (declared > maxModelBytes) {
          throw tooLarge("model.uri = '" + uri + "' has Content-Length " + declared);
        }
        if (r.body().overflow()) {
          throw tooLarge("model.uri = '" + uri + "' sent more than " + maxModelBytes + " bytes");
        }
        return r.body().bytes();
      }
      String location = r.headers().firstValue("location").orElse(null);
      boolean redirect =
          status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
      if (status == 429 || status == 502 || status == 503 || status == 504) {
        // The server is busy or a proxy failed: worth the bounded retries, not a verdict on the
        // model.
        throw new IOException("model.uri = '" + uri + "': HTTP status " + status + " from " + at);
      }
      if (!redirect || location == null) {
        throw new PoisonException(
            DlqReason.MODEL_UNLOADABLE,
            "model.uri = '" + uri + "': HTTP status " + status + " from " + at);
      }
      if (hop == MAX_REDIRECTS) {
        throw new PoisonException(
            DlqReason.MODEL_UNLOADABLE,
            "model.uri = '" + uri + "': more than " + MAX_REDIRECTS + " redirects");
      }
      URI next;
      try {
        next = at.resolve(location);
      } catch (IllegalArgumentException e) {
        throw new PoisonException(
            DlqReason.MODEL_UNLOADABLE,
            "model.uri = '" + uri + "' redirects to '" + location + "', which is not a URI");
      }
      String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
      boolean downgrade = "https".equalsIgnoreCase(at.getScheme()) && !scheme.equals("https");
      if (downgrade
          || !(scheme.equals("http") || scheme.equals("https"))
          || next.getHost() == null
          || !next.getHost().equalsIgnoreCase(first.getHost())) {
        throw new PoisonException(
            DlqReason.URI_NOT_ALLOWED,
            "model.uri = '"
                + uri
                + "' redirects to '"
                + next
                + "'; redirects to another host or scheme are refused");
      }
      requireAllowedHost(next, uri);
      at = next;
    }
  }

  /** The body of a response: its bytes, or {@code overflow} when it passed the size limit. */
  private record Body(byte[] bytes, boolean overflow) {}

  /**
   * One GET. The request times out by itself until the headers arrive; after that the body must
   * keep arriving: a stall longer than the timeout cancels it.
   */
  private HttpResponse<Body> get(URI at, String uri) throws IOException {
    long timeoutNs = TimeUnit.MILLISECONDS.toNanos(config.httpTimeoutMs());
    AtomicLong progress = new AtomicLong(System.nanoTime());
    AtomicReference<Flow.Subscription> body = new AtomicReference<>();
    HttpRequest request =
        HttpRequest.newBuilder(at).timeout(Duration.ofMillis(config.httpTimeoutMs())).GET().build();
    CompletableFuture<HttpResponse<Body>> response =
        http()
            .sendAsync(
                request,
                info -> {
                  long declared = info.headers().firstValueAsLong("content-length").orElse(-1);
                  boolean read = info.statusCode() / 100 == 2 && declared <= maxModelBytes;
                  return new LimitedBody(read ? maxModelBytes : -1, declared, progress, body);
                });
    while (true) {
      long left = timeoutNs - (System.nanoTime() - progress.get());
      if (left <= 0) {
        response.cancel(true);
        Flow.Subscription s = body.get();
        if (s != null) {
          s.cancel();
        }
        throw timeout(at, uri);
      }
      try {
        return response.get(left, TimeUnit.NANOSECONDS);
      } catch (TimeoutException e) {
        // the body may have moved on since; the loop looks again
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        response.cancel(true);
        throw new InterruptedIOException("model.uri = '" + uri + "': interrupted");
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        while (cause instanceof CompletionException && cause.getCause() != null) {
          cause = cause.getCause();
        }
        if (cause instanceof HttpTimeoutException) {
          throw timeout(at, uri);
        }
        if (cause instanceof IOException io) {
          throw new IOException("model.uri = '" + uri + "': cannot fetch " + at + ": " + io, io);
        }
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        throw new IOException("model.uri = '" + uri + "': " + cause, cause);
      }
    }
  }

  private HttpTimeoutException timeout(URI at, String uri) {
    return new HttpTimeoutException(
        "model.uri = '"
            + uri
            + "': nothing arrived from "
            + at
            + " within probestream.model.http-timeout-ms = "
            + config.httpTimeoutMs());
  }

  /**
   * Collects a body up to {@code max} bytes (-1: discards it unread), noting progress for the stall
   * timeout; past the limit it cancels the stream and reports an overflow.
   */
  private static final class LimitedBody implements HttpResponse.BodySubscriber<Body> {
    private final long max;
    private final AtomicLong progress;
    private final AtomicReference<Flow.Subscription> subscription;
    private final CompletableFuture<Body> result = new CompletableFuture<>();
    private byte[] buf;
    private int size;

    LimitedBody(
        long max,
        long declared,
        AtomicLong progress,
        AtomicReference<Flow.Subscription> subscription) {
      this.max = max;
      this.progress = progress;
      this.subscription = subscription;
      this.buf = new byte[(int) Math.min(Math.max(max, 0), declared >= 0 ? declared : 1 << 16)];
    }

    @Override
    public CompletionStage<Body> getBody() {
      return result;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
      subscription.set(s);
      if (max < 0) {
        s.cancel();
        result.complete(new Body(new byte[0], false));
      } else {
        s.request(1);
      }
    }

    @Override
    public void onNext(List<ByteBuffer> items) {
      progress.set(System.nanoTime());
      if (result.isDone()) {
        return;
      }
      for (ByteBuffer b : items) {
        int n = b.remaining();
        if (size + (long) n > max) {
          subscription.get().cancel();
          result.complete(new Body(null, true));
          return;
        }
        if (size + n > buf.length) {
          buf = Arrays.copyOf(buf, (int) Math.min(max, Math.max(2L * buf.length, size + n)));
        }
        b.get(buf, size, n);
        size += n;
      }
      subscription.get().request(1);
    }

    @Override
    public void onError(Throwable t) {
      result.completeExceptionally(t);
    }

    @Override
    public void onComplete() {
      result.complete(new Body(size == buf.length ? buf : Arrays.copyOf(buf, size), false));
    }
  }
}
