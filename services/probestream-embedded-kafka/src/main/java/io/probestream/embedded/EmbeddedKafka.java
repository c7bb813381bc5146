package io.probestream.embedded;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.function.IntSupplier;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.ApiMessageAndVersion;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * A single-node Kafka, one KRaft process that is both broker and controller, running inside this
 * JVM and listening on 127.0.0.1 only. Thread-safe: the accessors return values fixed at start, and
 * {@link #close()} may be called from any thread, any number of times; close Kafka clients first.
 */
public final class EmbeddedKafka implements AutoCloseable {
  private static final String HOST = "127.0.0.1";
  private static final int NODE_ID = 1;
  private static final int START_ATTEMPTS = 3;
  private static final String META_PROPERTIES = "meta.properties";
  // Kafka's default socket.request.max.bytes; raised only when a produce request would not fit.
  private static final long DEFAULT_SOCKET_REQUEST_MAX_BYTES = 100L * 1024 * 1024;
  private static final long PRODUCE_REQUEST_HEADROOM_BYTES = 1024 * 1024;

  /**
   * How to start the broker. Immutable; the constructor rejects invalid values, so start with
   * {@link #defaults()} and change fields with the {@code with*} methods.
   *
   * @param brokerPort the client port on 127.0.0.1, or 0 to pick a free one
   * @param dataDir the log and metadata directory, or null for a temp dir deleted on close; a
   *     non-null dir is created if missing, kept on close, and reused by a later start
   * @param maxMessageBytes the broker's {@code message.max.bytes}, the largest record batch a topic
   *     accepts unless its own {@code max.message.bytes} is lower
   * @param overrides further broker settings, applied last; never null, and may not set the keys
   *     that the other fields or the single-node layout own
   * @param scramUsers SCRAM-SHA-512 users (name to password); never null. Non-empty adds a second
   *     client listener, SASL_PLAINTEXT on 127.0.0.1 ({@link #saslBootstrapServers()}), that
   *     accepts these users only; the PLAINTEXT listener stays as it is. Empty (the default): no
   *     SASL listener.
   */
  public record Options(
      int brokerPort,
      Path dataDir,
      int maxMessageBytes,
      Map<String, String> overrides,
      Map<String, String> scramUsers) {
    /** 64 MiB of payload plus 1 MiB for the batch and record overhead. */
    public static final int DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024 + 1024 * 1024;

    // Keys EmbeddedKafka derives itself, with where to change them instead.
    private static final Map<String, String> OWNED_KEYS =
        Map.of(
            "process.roles", "it is always broker,controller",
            "node.id", "it is always " + NODE_ID,
            "controller.quorum.voters", "the controller port is always picked free",
            "listeners", "use Options.brokerPort",
            "advertised.listeners", "use Options.brokerPort",
            "log.dirs", "use Options.dataDir",
            "log.dir", "use Options.dataDir",
            "metadata.log.dir", "use Options.dataDir",
            "message.max.bytes", "use Options.maxMessageBytes",
            "replica.fetch.max.bytes", "it follows Options.maxMessageBytes");

    public Options {
      if (brokerPort < 0 || brokerPort > 65535) {
        throw new IllegalArgumentException(
            "brokerPort = " + brokerPort + ": must be 0 (pick a free port) or 1..65535");
      }
      if (maxMessageBytes < 1) {
        throw new IllegalArgumentException(
            "maxMessageBytes = " + maxMessageBytes + ": must be at least 1");
      }
      overrides = Map.copyOf(Objects.requireNonNull(overrides, "overrides"));
      for (String key : overrides.keySet()) {
        if (OWNED_KEYS.containsKey(key)) {
          throw new IllegalArgumentException(
              "override '" + key + "' is managed by EmbeddedKafka: " + OWNED_KEYS.get(key));
        }
      }
      scramUsers = Map.copyOf(Objects.requireNonNull(scramUsers, "scramUsers"));
      for (Map.Entry<String, String> u : scramUsers.entrySet()) {
        if (u.getKey().isBlank() || u.getValue().isEmpty()) {
          throw new IllegalArgumentException(
              "scramUsers: user '" + u.getKey() + "' needs a non-blank name and a password");
        }
      }
    }

    /** As the canonical constructor, without SCRAM users (no SASL listener). */
    public Options(
        int brokerPort, Path dataDir, int maxMessageBytes, Map<String, String> overrides) {
      this(brokerPort, dataDir, maxMessageBytes, overrides, Map.of());
    }

    /** Shows the SCRAM user names, never their passwords. */
    @Override
    public String toString() {
      return "Options[brokerPort="
          + brokerPort
          + ", dataDir="
          + dataDir
          + ", maxMessageBytes="
          + maxMessageBytes
          + ", overrides="
          + overrides
          + ", scramUsers="
          + new java.util.TreeSet<>(scramUsers.keySet())
          + "]";
    }

    /** A free port, a temp dir and {@link #DEFAULT_MAX_MESSAGE_BYTES}, with no overrides. */
    public static Options defaults() {
      return new Options(0, null, DEFAULT_MAX_MESSAGE_BYTES, Map.of());
    }

    /** These options with the given client port; 0 picks a free one. */
    public Options withBrokerPort(int port) {
      return new Options(port, dataDir, maxMessageBytes, overrides, scramUsers);
    }

    /** These options with a persistent data dir, or a temp one if {@code dir} is null. */
    public Options withDataDir(Path dir) {
      return new Options(brokerPort, dir, maxMessageBytes, overrides, scramUsers);
    }

    /** These options with the broker's {@code message.max.bytes} set to {@code bytes}. */
    public Options withMaxMessageBytes(int bytes) {
      return new Options(brokerPort, dataDir, bytes, overrides, scramUsers);
    }

    /** These options with {@code settings} replacing all earlier overrides. */
    public Options withOverrides(Map<String, String> settings) {
      return new Options(brokerPort, dataDir, maxMessageBytes, settings, scramUsers);
    }

    /**
     * These options with a SASL_PLAINTEXT listener that accepts these SCRAM-SHA-512 users (name to
     * password); an empty map removes the listener. On a reused data dir the users are created or
     * updated after start; users of an earlier start stay.
     */
    public Options withScramUsers(Map<String, String> users) {
      return new Options(brokerPort, dataDir, maxMessageBytes, overrides, users);
    }
  }

  private final KafkaRaftServer server;
  private final int port;
  private final int saslPort; // 0: no SASL listener
  private final Path dataDir;
  private final boolean temporary;
  private final String clusterId;
  private boolean closed; // guarded by this

  private EmbeddedKafka(
      KafkaRaftServer server,
      int port,
      int saslPort,
      Path dataDir,
      boolean temporary,
      String clusterId) {
    this.server = server;
    this.port = port;
    this.saslPort = saslPort;
    this.dataDir = dataDir;
    this.temporary = temporary;
    this.clusterId = clusterId;
  }

  /** Starts a broker with {@link Options#defaults()}; see {@link #start(Options)}. */
  public static EmbeddedKafka start() throws IOException {
    return start(Options.defaults());
  }

  /**
   * Formats the data dir if it is new, then starts the broker and returns once it is registered and
   * unfenced, so clients can use it at once. Blocks for about 2 s on a cold JVM.
   *
   * @throws IllegalStateException if {@code options.brokerPort()} is fixed and already in use
   */
  public static EmbeddedKafka start(Options options) throws IOException {
    return start(options, EmbeddedKafka::freePort);
  }

  // Ports we pick are free when probed but may be taken before Kafka binds them; only then do we
  // pick again. A fixed port that is taken is the caller's to change, so that fails at once.
  static EmbeddedKafka start(Options options, IntSupplier freePorts) throws IOException {
    int fixedPort = options.brokerPort();
    if (fixedPort != 0 && !isFree(fixedPort)) {
      throw portInUse(fixedPort, null);
    }
    for (int attempt = 1; ; attempt++) {
      int brokerPort = fixedPort != 0 ? fixedPort : freePorts.getAsInt();
      int controllerPort = freePorts.getAsInt();
      int saslPort = options.scramUsers().isEmpty() ? 0 : freePorts.getAsInt();
      try {
        return startOnce(options, brokerPort, controllerPort, saslPort);
      } catch (RuntimeException e) {
        if (!failedToBind(e)) {
          throw e;
        }
        if (fixedPort != 0 && mentionsPort(e, fixedPort)) {
          throw portInUse(fixedPort, e);
        }
        if (attempt == START_ATTEMPTS) {
          throw new IllegalStateException(
              "could not bind free ports on " + HOST + " in " + START_ATTEMPTS + " attempts", e);
        }
      }
    }
  }

  private static EmbeddedKafka startOnce(
      Options options, int brokerPort, int controllerPort, int saslPort) throws IOException {
    boolean temporary = options.dataDir() == null;
    Path dir =
        temporary
            ? Files.createTempDirectory("probestream-kafka-")
            : Files.createDirectories(options.dataDir().toAbsolutePath());
    KafkaRaftServer server = null;
    try {
      boolean formatted = Files.exists(dir.resolve(META_PROPERTIES));
      String clusterId = formatIfNew(dir, ScramUsers.records(options.scramUsers()));
      server =
          new KafkaRaftServer(
              new KafkaConfig(
                  brokerConfig(options, dir, brokerPort, controllerPort, saslPort), false),
              Time.SYSTEM);
      server.startup(); // returns once the broker is registered and unfenced
      if (formatted && !options.scramUsers().isEmpty()) {
        // The users went into the bootstrap metadata only if this start formatted the dir.
        ScramUsers.upsert(HOST + ":" + brokerPort, HOST + ":" + saslPort, options.scramUsers());
      }
      return new EmbeddedKafka(server, brokerPort, saslPort, dir, temporary, clusterId);
    } catch (IOException | RuntimeException e) {
      if (server != null) {
        server.shutdown();
        server.awaitShutdown();
      }
      if (temporary) {
        Utils.delete(dir.toFile());
      }
      throw e;
    }
  }

  private static Map<String, Object> brokerConfig(
      Options options, Path dir, int brokerPort, int controllerPort, int saslPort) {
    Map<String, Object> p = new HashMap<>();
    p.put("process.roles", "broker,controller");
    p.put("node.id", String.valueOf(NODE_ID));
    // A static quorum needs the controller's real port, which is why port 0 cannot be used here.
    p.put("controller.quorum.voters", NODE_ID + "@" + HOST + ":" + controllerPort);
    // 127.0.0.1 rather than localhost, which may resolve to ::1 where nothing listens.
    p.put(
        "listeners",
        "PLAINTEXT://" + HOST + ":" + brokerPort + ",CONTROLLER://" + HOST + ":" + controllerPort);
    p.put("advertised.listeners", "PLAINTEXT://" + HOST + ":" + brokerPort);
    p.put("controller.listener.names", "CONTROLLER");
    p.put("inter.broker.listener.name", "PLAINTEXT");
    p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
    if (saslPort != 0) {
      // A second client listener that takes SCRAM-SHA-512 logins only; brokers and controller
      // keep talking PLAINTEXT among themselves (one node, 127.0.0.1 only).
      String sasl = "SASL_PLAINTEXT://" + HOST + ":" + saslPort;
      p.put("listeners", p.get("listeners") + "," + sasl);
      p.put("advertised.listeners", p.get("advertised.listeners") + "," + sasl);
      p.put(
          "listener.security.protocol.map",
          p.get("listener.security.protocol.map") + ",SASL_PLAINTEXT:SASL_PLAINTEXT");
      p.put("listener.name.sasl_plaintext.sasl.enabled.mechanisms", ScramUsers.MECHANISM);
      p.put(
          "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
          "org.apache.kafka.common.security.scram.ScramLoginModule required;");
    }
    p.put("log.dirs", dir.toString());
    // One node: internal topics default to RF 3 / min ISR 2, and then transactions time out and
    // groups never get an assignment.
    p.put("offsets.topic.replication.factor", "1");
    p.put("offsets.topic.num.partitions", "1");
    p.put("transaction.state.log.replication.factor", "1");
    p.put("transaction.state.log.min.isr", "1");
    p.put("transaction.state.log.num.partitions", "1");
    p.put("share.coordinator.state.topic.replication.factor", "1");
    p.put("share.coordinator.state.topic.min.isr", "1");
    p.put("share.coordinator.state.topic.num.partitions", "1");
    p.put("default.replication.factor", "1");
    p.put("num.partitions", "1");
    p.put("auto.create.topics.enable", "true");
    p.put("group.initial.rebalance.delay.ms", "0"); // default: every first join waits 3 s
    // The default 128 MiB buffer alone makes the broker's live heap 4x larger, and an OOM in the
    // broker halts this whole JVM.
    p.put("log.cleaner.dedupe.buffer.size", String.valueOf(2 * 1024 * 1024));
    p.put("num.network.threads", "2");
    p.put("num.io.threads", "2");
    p.put("num.recovery.threads.per.data.dir", "1");
    int maxMessageBytes = options.maxMessageBytes();
    p.put("message.max.bytes", String.valueOf(maxMessageBytes));
    p.put("replica.fetch.max.bytes", String.valueOf(maxMessageBytes));
    long requestBytes =
        Math.max(
            DEFAULT_SOCKET_REQUEST_MAX_BYTES, maxMessageBytes + PRODUCE_REQUEST_HEADROOM_BYTES);
    p.put("socket.request.max.bytes", String.valueOf(Math.min(requestBytes, Integer.MAX_VALUE)));
    p.putAll(options.overrides());
    return p;
  }

  // Equivalent of `kafka-storage format -t <random uuid>`, unless the dir already holds a node
  // (a persistent dir from an earlier start): formatting again with a new id would be refused.
  private static String formatIfNew(Path dir, List<ApiMessageAndVersion> bootstrapRecords)
      throws IOException {
    Path meta = dir.resolve(META_PROPERTIES);
    if (Files.exists(meta)) {
      Properties properties = new Properties();
      try (InputStream in = Files.newInputStream(meta)) {
        properties.load(in);
      }
      String nodeId = properties.getProperty("node.id");
      String clusterId = properties.getProperty("cluster.id");
      if (!String.valueOf(NODE_ID).equals(nodeId) || clusterId == null) {
        throw new IllegalStateException(
            meta
                + " has node.id = "
                + nodeId
                + " and cluster.id = "
                + clusterId
                + "; EmbeddedKafka needs node.id = "
                + NODE_ID
                + " and a cluster.id; choose an empty data dir");
      }
      return clusterId;
    }
    String clusterId = Uuid.randomUuid().toString();
    try {
      new Formatter()
          .setPrintStream(new PrintStream(OutputStream.nullOutputStream()))
          .setNodeId(NODE_ID)
          .setClusterId(clusterId)
          .setDirectories(List.of(dir.toString()))
          .setMetadataLogDirectory(dir.toString())
          .setControllerListenerName("CONTROLLER")
          .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
          .setAdditionalBootstrapRecords(bootstrapRecords)
          .run();
    } catch (IOException | RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("formatting Kafka storage in " + dir + " failed", e);
    }
    return clusterId;
  }

  private static boolean isFree(int port) {
    try (ServerSocket socket = new ServerSocket()) {
      socket.setReuseAddress(true); // as Kafka's acceptor: a TIME_WAIT leftover is not "in use"
      socket.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException("no free port on " + HOST, e);
    }
  }

  private static boolean failedToBind(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof BindException) {
        return true;
      }
    }
    return false;
  }

  // Kafka reports "Socket server failed to bind to 127.0.0.1:<port>: Address already in use."
  private static boolean mentionsPort(Throwable e, int port) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t.getMessage() != null && t.getMessage().contains(HOST + ":" + port + ":")) {
        return true;
      }
    }
    return false;
  }

  private static IllegalStateException portInUse(int port, Throwable cause) {
    return new IllegalStateException(
        "port " + port + " is in use; choose another --kafka-port", cause);
  }

  /** The client address, {@code 127.0.0.1:<port>}; never null. */
  public String bootstrapServers() {
    return HOST + ":" + port;
  }

  /**
   * The SASL_PLAINTEXT client address, {@code 127.0.0.1:<port>}, where only {@link
   * Options#scramUsers()} log in, with SCRAM-SHA-512.
   *
   * @throws IllegalStateException if the broker was started without SCRAM users
   */
  public String saslBootstrapServers() {
    if (saslPort == 0) {
      throw new IllegalStateException(
          "no SASL listener: start the broker with Options.withScramUsers(...)");
    }
    return HOST + ":" + saslPort;
  }

  /** The client port on 127.0.0.1. */
  public int port() {
    return port;
  }

  /** The absolute log and metadata directory; never null, and gone after close if temporary. */
  public Path dataDir() {
    return dataDir;
  }

  /** The cluster id in the data dir's {@code meta.properties}; never null. */
  public String clusterId() {
    return clusterId;
  }

  /**
   * Stops the broker and waits until it has stopped, then deletes the data dir if it was a temp
   * dir. Close clients first: one still connected waits for its own close timeout. A second call
   * waits for the first and then does nothing.
   */
  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    server.shutdown();
    server.awaitShutdown();
    if (temporary) {
      Utils.delete(dataDir.toFile());
    }
  }
}
