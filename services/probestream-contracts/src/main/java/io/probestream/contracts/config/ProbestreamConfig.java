package io.probestream.contracts.config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The whole configuration of a Probestream process, one immutable record per feature. Load it once
 * in {@code main} with {@link #load} and pass the parts through constructors; nothing else reads
 * the environment.
 */
public record ProbestreamConfig(
    Kafka kafka,
    KafkaSecurity kafkaSecurity,
    Http http,
    TopicsConfig topics,
    Workers workers,
    Limits limits,
    Pending pending,
    Model model,
    Retries retries,
    Probes probes,
    Multiplicity multiplicity,
    State state,
    Experiments experiments,
    Blobs blobs,
    Path dataDir) {

  static final ConfigKey DATA_DIR =
      ConfigKey.of(
          "probestream.data-dir",
          "probestream-data",
          "Where assembled model blobs, reference sets and the embedded broker's log live.");

  /** Kafka connection. */
  public record Kafka(
      String bootstrapServers,
      boolean embedded,
      int port,
      String groupId,
      String delivery,
      int sessionTimeoutMs) {
    public static final String AT_LEAST_ONCE = "at-least-once";
    public static final String EXACTLY_ONCE = "exactly-once";

    static final ConfigKey BOOTSTRAP =
        ConfigKey.of(
            "probestream.kafka.bootstrap-servers",
            "",
            "Kafka cluster to use (host:port,…); empty with kafka.embedded=true.");
    static final ConfigKey EMBEDDED =
        ConfigKey.of(
            "probestream.kafka.embedded",
            "false",
            "Run a single-node KRaft broker inside this process (data under data-dir/kafka).");
    static final ConfigKey PORT =
        ConfigKey.of(
            "probestream.kafka.port", "0", "Port of the embedded broker; 0 picks a free one.");
    static final ConfigKey GROUP =
        ConfigKey.of("probestream.kafka.group-id", "probestream", "Consumer group of the service.");
    static final ConfigKey SESSION_TIMEOUT =
        ConfigKey.of(
            "probestream.kafka.session-timeout-ms",
            "10000",
            "How long the group waits for a silent instance (a crash, kill -9) before its"
                + " partitions move; the brokers' group.min/max.session.timeout.ms bound it.");
    static final ConfigKey DELIVERY =
        ConfigKey.of(
            "probestream.kafka.delivery",
            AT_LEAST_ONCE,
            "at-least-once (results deduplicable by id) or exactly-once (Kafka transactions:"
                + " results, state and input offsets commit together; read results with"
                + " isolation.level=read_committed).");

    public Kafka {
      if (!delivery.equals(AT_LEAST_ONCE) && !delivery.equals(EXACTLY_ONCE)) {
        throw new ConfigException(
            DELIVERY.name()
                + " = '"
                + delivery
                + "': must be "
                + AT_LEAST_ONCE
                + " or "
                + EXACTLY_ONCE);
      }
      if (!embedded && bootstrapServers.isBlank()) {
        throw new ConfigException(
            BOOTSTRAP.name()
                + " is empty and "
                + EMBEDDED.name()
                + " = false: name a cluster (--bootstrap-servers) or use --embedded-kafka");
      }
      if (embedded && !bootstrapServers.isBlank()) {
        throw new ConfigException(
            BOOTSTRAP.name()
                + " = "
                + bootstrapServers
                + " and "
                + EMBEDDED.name()
                + " = true: choose one");
      }
    }

    static Kafka take(ConfigSource s) {
      return new Kafka(
          s.take(BOOTSTRAP),
          s.takeBoolean(EMBEDDED),
          s.takeInt(PORT, 0, 65535),
          s.take(GROUP),
          s.take(DELIVERY),
          s.takeInt(SESSION_TIMEOUT, 1000, 3_600_000));
    }

    /** Whether results, state and offsets commit in Kafka transactions. */
    public boolean exactlyOnce() {
      return delivery.equals(EXACTLY_ONCE);
    }
  }

  /**
   * How the Kafka clients authenticate and encrypt (every client of the service: consumer,
   * producer, admin, readers). Secrets are read once from files; {@link #toString} never shows
   * them. {@code clientProperties} are extra Kafka client settings from a properties file, applied
   * last.
   */
  public record KafkaSecurity(
      String protocol,
      String saslMechanism,
      String saslUsername,
      String saslPassword,
      String truststoreFile,
      String truststorePassword,
      Map<String, String> clientProperties) {
    static final ConfigKey PROTOCOL =
        ConfigKey.of(
            "probestream.kafka.security-protocol",
            "PLAINTEXT",
            "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.");
    static final ConfigKey SASL_MECHANISM =
        ConfigKey.of(
            "probestream.kafka.sasl-mechanism",
            "SCRAM-SHA-512",
            "SASL mechanism with a SASL_* protocol: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.");
    static final ConfigKey SASL_USERNAME =
        ConfigKey.of("probestream.kafka.sasl-username", "", "SASL user name.");
    static final ConfigKey SASL_PASSWORD_FILE =
        ConfigKey.of("probestream.kafka.sasl-password-file", "", "File holding the SASL password.");
    static final ConfigKey TRUSTSTORE =
        ConfigKey.of(
            "probestream.kafka.ssl-truststore-file",
            "",
            "CA certificates trusted for the brokers' TLS, typed by extension: .pem or .crt (PEM),"
                + " .p12 or .pfx (PKCS12), .jks (JKS); empty: the JVM's default trust.");
    static final ConfigKey TRUSTSTORE_PASSWORD_FILE =
        ConfigKey.of(
            "probestream.kafka.ssl-truststore-password-file",
            "",
            "File holding the PKCS12/JKS truststore's password.");
    static final ConfigKey CLIENT_PROPERTIES =
        ConfigKey.of(
            "probestream.kafka.client-properties-file",
            "",
            "Kafka client properties file applied to every client last (e.g. ssl.keystore.* for"
                + " mutual TLS).");

    static final List<String> PROTOCOLS = List.of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL");
    static final List<String> MECHANISMS = List.of("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN");

    public KafkaSecurity {
      clientProperties = Map.copyOf(clientProperties);
      if (!PROTOCOLS.contains(protocol)) {
        throw new ConfigException(
            PROTOCOL.name() + " = '" + protocol + "': must be one of " + PROTOCOLS);
      }
      if (sasl(protocol)) {
        if (!MECHANISMS.contains(saslMechanism)) {
          throw new ConfigException(
              SASL_MECHANISM.name() + " = '" + saslMechanism + "': must be one of " + MECHANISMS);
        }
        if (saslUsername.isBlank() || saslPassword.isEmpty()) {
          throw new ConfigException(
              PROTOCOL.name()
                  + " = "
                  + protocol
                  + " needs "
                  + SASL_USERNAME.name()
                  + " and "
                  + SASL_PASSWORD_FILE.name());
        }
      }
      if (storeType(truststoreFile).equals("PEM") && !truststorePassword.isEmpty()) {
        throw new ConfigException(
            TRUSTSTORE_PASSWORD_FILE.name()
                + " is for PKCS12 and JKS stores; the PEM truststore "
                + truststoreFile
                + " takes no password");
      }
    }

    private static boolean sasl(String protocol) {
      return protocol.startsWith("SASL_");
    }

    /**
     * The Kafka {@code ssl.truststore.type} of {@link #truststoreFile}, by its extension: PEM for
     * .pem and .crt, PKCS12 for .p12 and .pfx, JKS for .jks; empty without a truststore.
     *
     * @throws ConfigException for any other extension
     */
    public String truststoreType() {
      return storeType(truststoreFile);
    }

    // Static: the compact constructor checks the parameter before the fields are set.
    private static String storeType(String truststoreFile) {
      if (truststoreFile.isEmpty()) {
        return "";
      }
      String name = truststoreFile.toLowerCase(Locale.ROOT);
      if (name.endsWith(".pem") || name.endsWith(".crt")) {
        return "PEM";
      }
      if (name.endsWith(".p12") || name.endsWith(".pfx")) {
        return "PKCS12";
      }
      if (name.endsWith(".jks")) {
        return "JKS";
      }
      throw new ConfigException(
          TRUSTSTORE.name()
              + " = "
              + truststoreFile
              + ": cannot tell the store type; name it .pem or .crt (PEM), .p12 or .pfx (PKCS12),"
              + " or .jks (JKS)");
    }

    /** Whether the clients authenticate with SASL. */
    public boolean usesSasl() {
      return sasl(protocol);
    }

    /** Whether the clients speak TLS to the brokers. */
    public boolean usesTls() {
      return protocol.equals("SSL") || protocol.equals("SASL_SSL");
    }

    @Override
    public String toString() {
      return "KafkaSecurity[protocol="
          + protocol
          + (usesSasl() ? ", sasl=" + saslMechanism + ", user=" + saslUsername : "")
          + (truststoreFile.isEmpty() ? "" : ", truststore=" + truststoreFile)
          + ", clientProperties="
          + clientProperties.keySet()
          + "]";
    }

    static KafkaSecurity take(ConfigSource s) {
      String protocol = s.take(PROTOCOL).toUpperCase(Locale.ROOT);
      String mechanism = s.take(SASL_MECHANISM).toUpperCase(Locale.ROOT);
      String user = s.take(SASL_USERNAME);
      String password = readSecret(SASL_PASSWORD_FILE, s.take(SASL_PASSWORD_FILE), "password file");
      String truststore = s.take(TRUSTSTORE);
      String truststorePassword =
          readSecret(TRUSTSTORE_PASSWORD_FILE, s.take(TRUSTSTORE_PASSWORD_FILE), "password file");
      String propsFile = s.take(CLIENT_PROPERTIES);
      Map<String, String> props = new java.util.TreeMap<>();
      if (!propsFile.isBlank()) {
        java.util.Properties p = new java.util.Properties();
        try (java.io.Reader r = Files.newBufferedReader(Path.of(propsFile.trim()))) {
          p.load(r);
        } catch (IOException | RuntimeException e) {
          throw new ConfigException(
              CLIENT_PROPERTIES.name() + " = " + propsFile + ": cannot read it (" + e + ")");
        }
        p.stringPropertyNames().forEach(k -> props.put(k, p.getProperty(k).trim()));
      }
      return new KafkaSecurity(
          protocol, mechanism, user, password, truststore.trim(), truststorePassword, props);
    }
  }

  /** The trimmed content of a secret file (empty name: empty); never puts it in a message. */
  static String readSecret(ConfigKey key, String file, String what) {
    if (file.isBlank()) {
      return "";
    }
    String v;
    try {
      v = Files.readString(Path.of(file.trim()), StandardCharsets.UTF_8).trim();
    } catch (IOException | RuntimeException e) {
      throw new ConfigException(
          key.name() + " = " + file + ": cannot read the " + what + " (" + e + ")");
    }
    if (v.isEmpty()) {
      throw new ConfigException(key.name() + " = " + file + ": the " + what + " is empty");
    }
    return v;
  }

  /**
   * Experiment state snapshots on the compacted state topic (DESIGN.md §3): written after each
   * evaluated checkpoint, read when a partition is assigned.
   */
  public record State(boolean enabled) {
    static final ConfigKey ENABLED =
        ConfigKey.of(
            "probestream.state.enabled",
            "true",
            "Snapshot each experiment's state to the compacted state topic and restore it when a"
                + " partition moves or the service restarts.");

    static State take(ConfigSource s) {
      return new State(s.takeBoolean(ENABLED));
    }
  }

  /** How long experiments are kept and how many (state, metric series, API entries). */
  public record Experiments(long idleTtlMs, int max) {
    static final ConfigKey IDLE_TTL =
        ConfigKey.of(
            "probestream.experiments.idle-ttl-ms",
            "604800000",
            "An experiment with no input for this long is removed (state, metric series, API"
                + " entries); 0 keeps experiments forever.");
    static final ConfigKey MAX =
        ConfigKey.of(
            "probestream.experiments.max",
            "1000",
            "Most experiments kept; past it the one idle longest is removed.");

    static Experiments take(ConfigSource s) {
      return new Experiments(
          s.takeLong(IDLE_TTL, 0, Long.MAX_VALUE / 4), s.takeInt(MAX, 1, 1_000_000));
    }
  }

  /** The local content-addressed blob store. */
  public record Blobs(long storeBytes) {
    static final ConfigKey STORE_BYTES =
        ConfigKey.of(
            "probestream.blobs.store-bytes",
            "21474836480",
            "Disk budget of assembled and partial model blobs under data-dir; past it the least"
                + " recently used blob no waiting checkpoint names is deleted.");

    static Blobs take(ConfigSource s) {
      return new Blobs(s.takeLong(STORE_BYTES, 1 << 20, Long.MAX_VALUE));
    }
  }

  /**
   * The HTTP server: metrics, health, API. {@code authToken} is the bearer token read once from
   * {@code auth-token-file} (empty: no authentication); {@link #toString} never shows it.
   */
  public record Http(
      String host,
      int port,
      String authToken,
      List<String> openPaths,
      String tlsCertFile,
      String tlsKeyFile) {
    /** Shortest token accepted, in characters. */
    public static final int MIN_TOKEN_LENGTH = 16;

    static final ConfigKey HOST =
        ConfigKey.of("probestream.http.host", "0.0.0.0", "Address the HTTP server binds.");
    static final ConfigKey PORT =
        ConfigKey.of(
            "probestream.http.port",
            "8080",
            "HTTP port (/metrics, /health, /api); 0 picks a free one.");
    static final ConfigKey AUTH_TOKEN_FILE =
        ConfigKey.of(
            "probestream.http.auth-token-file",
            "",
            "File holding the bearer token (at least 16 characters) every path outside open-paths"
                + " needs; empty serves everything without a token.");
    static final ConfigKey OPEN_PATHS =
        ConfigKey.of(
            "probestream.http.open-paths",
            "/health/,/metrics",
            "Path prefixes served without a token when auth-token-file is set (comma-separated).");
    static final ConfigKey TLS_CERT =
        ConfigKey.of(
            "probestream.http.tls-cert-file",
            "",
            "PEM certificate chain: with tls-key-file the server speaks HTTPS only.");
    static final ConfigKey TLS_KEY =
        ConfigKey.of(
            "probestream.http.tls-key-file", "", "PEM private key (PKCS#8) of tls-cert-file.");

    public Http {
      if (tlsCertFile.isBlank() != tlsKeyFile.isBlank()) {
        throw new ConfigException(
            TLS_CERT.name() + " and " + TLS_KEY.name() + " go together: set both or neither");
      }
      openPaths = List.copyOf(openPaths);
      for (String p : openPaths) {
        if (!p.startsWith("/")) {
          throw new ConfigException(
              OPEN_PATHS.name() + " entry '" + p + "': must be a path prefix starting with /");
        }
      }
    }

    /** Whether the server speaks HTTPS. */
    public boolean tlsEnabled() {
      return !tlsCertFile.isBlank();
    }

    /** Whether a token is configured. */
    public boolean authEnabled() {
      return !authToken.isEmpty();
    }

    @Override
    public String toString() {
      return "Http[host="
          + host
          + ", port="
          + port
          + ", authToken="
          + (authEnabled() ? "(set)" : "(none)")
          + ", openPaths="
          + openPaths
          + ", tls="
          + (tlsEnabled() ? tlsCertFile : "(none)")
          + "]";
    }

    static Http take(ConfigSource s) {
      return new Http(
          s.take(HOST),
          s.takeInt(PORT, 0, 65535),
          readToken(s.take(AUTH_TOKEN_FILE)),
          s.takeList(OPEN_PATHS),
          s.take(TLS_CERT).trim(),
          s.take(TLS_KEY).trim());
    }

    /** The trimmed token in {@code file}; never puts the token itself in a message. */
    static String readToken(String file) {
      String token = readSecret(AUTH_TOKEN_FILE, file, "token file");
      if (!token.isEmpty() && token.length() < MIN_TOKEN_LENGTH) {
        throw new ConfigException(
            AUTH_TOKEN_FILE.name()
                + " = "
                + file
                + ": the token is "
                + token.length()
                + " characters; use at least "
                + MIN_TOKEN_LENGTH);
      }
      return token;
    }
  }

  /** Topic names and how the service creates missing topics. */
  public record TopicsConfig(String prefix, int partitions, short replication) {
    static final ConfigKey PREFIX =
        ConfigKey.of("probestream.topics.prefix", "probestream.", "Prefix of every topic name.");
    static final ConfigKey PARTITIONS =
        ConfigKey.of(
            "probestream.topics.partitions", "3", "Partitions of the topics the service creates.");
    static final ConfigKey REPLICATION =
        ConfigKey.of(
            "probestream.topics.replication",
            "1",
            "Replication factor of the topics the service creates.");

    static TopicsConfig take(ConfigSource s) {
      return new TopicsConfig(
          s.take(PREFIX), s.takeInt(PARTITIONS, 1, 10_000), (short) s.takeInt(REPLICATION, 1, 32));
    }
  }

  /** The worker pool that runs ONNX Runtime and the probe math. */
  public record Workers(int threads, int maxInFlight) {
    static final ConfigKey THREADS =
        ConfigKey.of("probestream.workers.threads", "", "Worker threads (default: CPU cores).");
    static final ConfigKey MAX_IN_FLIGHT =
        ConfigKey.of(
            "probestream.workers.max-in-flight",
            "",
            "Tasks in flight before intake pauses (default: 2 × threads).");

    public Workers {
      if (maxInFlight < threads) {
        throw new ConfigException(
            MAX_IN_FLIGHT.name()
                + " = "
                + maxInFlight
                + " is below "
                + THREADS.name()
                + " = "
                + threads
                + ", so threads would sit idle; raise the first or lower the second");
      }
    }

    static Workers take(ConfigSource s) {
      int cores = Runtime.getRuntime().availableProcessors();
      String t = s.take(THREADS);
      int threads = t.isEmpty() ? cores : parse(THREADS, t, 1, 256);
      String m = s.take(MAX_IN_FLIGHT);
      return new Workers(threads, m.isEmpty() ? 2 * threads : parse(MAX_IN_FLIGHT, m, 1, 4096));
    }
  }

  /** Size limits of inputs (DESIGN.md §7). */
  public record Limits(
      long maxBatchBytes,
      long maxModelBytes,
      int maxReferenceSamples,
      int maxFeatureWidth,
      long maxStateBytes) {
    static final ConfigKey MAX_BATCH =
        ConfigKey.of(
            "probestream.limits.max-batch-bytes",
            "67108864",
            "Largest batch record; topics the service creates allow it.");
    static final ConfigKey MAX_MODEL =
        ConfigKey.of(
            "probestream.limits.max-model-bytes",
            "2147483639",
            "Largest model (blob, file or download); ONNX external data beside a file:// model is"
                + " not counted.");
    static final ConfigKey MAX_REFERENCE =
        ConfigKey.of(
            "probestream.limits.max-reference-samples",
            "50000",
            "Most samples in one experiment's reference set.");

    static final ConfigKey MAX_WIDTH =
        ConfigKey.of(
            "probestream.limits.max-feature-width",
            "65536",
            "Widest probed layer (features per sample after reduction).");
    static final ConfigKey MAX_STATE =
        ConfigKey.of(
            "probestream.limits.max-state-bytes",
            "1073741824",
            "Probe state one checkpoint evaluation may allocate (class means and bases of every layer).");

    static Limits take(ConfigSource s) {
      return new Limits(
          s.takeLong(MAX_BATCH, 1024, 1L << 30),
          s.takeLong(MAX_MODEL, 1024, Integer.MAX_VALUE - 8),
          s.takeInt(MAX_REFERENCE, 1, 10_000_000),
          s.takeInt(MAX_WIDTH, 1, 1 << 24),
          s.takeLong(MAX_STATE, 1024, Long.MAX_VALUE));
    }
  }

  /** How long a checkpoint may wait for its blob or reference set. */
  public record Pending(int maxCheckpoints, long maxAgeMs) {
    static final ConfigKey MAX =
        ConfigKey.of(
            "probestream.pending.max-checkpoints",
            "16",
            "Checkpoints one experiment may hold waiting for its blob or reference set; at it the"
                + " checkpoints partition pauses until they drain, and past four times it the oldest"
                + " goes to the DLQ.");
    static final ConfigKey AGE =
        ConfigKey.of(
            "probestream.pending.max-age-ms",
            "600000",
            "How long a checkpoint may wait for its blob or reference set.");

    static Pending take(ConfigSource s) {
      return new Pending(s.takeInt(MAX, 1, 100_000), s.takeLong(AGE, 1, 7L * 24 * 3600 * 1000));
    }
  }

  /** Model loading and inference. */
  public record Model(
      List<Path> fileRoots,
      List<String> allowedHosts,
      long httpTimeoutMs,
      String device,
      int batchSize,
      long featureCacheBytes,
      long sessionCacheBytes) {
    static final ConfigKey SESSIONS =
        ConfigKey.of(
            "probestream.model.session-cache-bytes",
            "536870912",
            "Estimated native memory of idle ONNX Runtime sessions kept for reuse (LRU); 0 keeps none.");
    static final ConfigKey FILE_ROOTS =
        ConfigKey.of(
            "probestream.model.file-roots",
            "",
            "Directories a file:// model URI may point into (comma-separated); empty refuses file URIs.");
    static final ConfigKey ALLOWED_HOSTS =
        ConfigKey.of(
            "probestream.model.allowed-hosts",
            "",
            "Hosts an http(s):// model URI may name (comma-separated host, any port, or host:port);"
                + " empty refuses http(s) URIs.");
    static final ConfigKey HTTP_TIMEOUT =
        ConfigKey.of(
            "probestream.model.http-timeout-ms",
            "30000",
            "Longest wait of an http(s) model fetch to connect, for the response, or for the next"
                + " bytes of the body; past it the fetch is retried.");
    static final ConfigKey DEVICE =
        ConfigKey.of("probestream.model.device", "auto", "auto, cpu or cuda[:N].");
    static final ConfigKey BATCH_SIZE =
        ConfigKey.of("probestream.model.batch-size", "256", "Samples per inference run.");
    static final ConfigKey CACHE =
        ConfigKey.of(
            "probestream.model.feature-cache-bytes",
            "536870912",
            "Features kept between the two probe passes of one checkpoint; above it inference runs twice.");

    // host name or IPv4 literal, or a bracketed IPv6 literal, then an optional :port
    private static final Pattern HOST_PORT =
        Pattern.compile("([a-z0-9.-]+|\\[[0-9a-f:.]+\\])(?::([0-9]{1,5}))?");

    public Model {
      fileRoots = List.copyOf(fileRoots);
      List<String> hosts = new ArrayList<>();
      for (String h : allowedHosts) {
        String entry = h.trim().toLowerCase(Locale.ROOT);
        Matcher m = HOST_PORT.matcher(entry);
        if (!m.matches()
            || entry.startsWith(".")
            || (m.group(2) != null
                && (Integer.parseInt(m.group(2)) < 1 || Integer.parseInt(m.group(2)) > 65535))) {
          throw new ConfigException(
              ALLOWED_HOSTS.name()
                  + " entry '"
                  + h
                  + "': must be a host or host:port (port 1..65535), without scheme, path or"
                  + " wildcard");
        }
        hosts.add(entry);
      }
      allowedHosts = List.copyOf(hosts);
    }

    static Model take(ConfigSource s) {
      List<Path> roots = new ArrayList<>();
      for (String r : s.takeList(FILE_ROOTS)) {
        roots.add(Path.of(r).toAbsolutePath().normalize());
      }
      return new Model(
          roots,
          s.takeList(ALLOWED_HOSTS),
          s.takeLong(HTTP_TIMEOUT, 1, 3_600_000),
          s.take(DEVICE),
          s.takeInt(BATCH_SIZE, 1, 1 << 20),
          s.takeLong(CACHE, 0, Long.MAX_VALUE),
          s.takeLong(SESSIONS, 0, Long.MAX_VALUE));
    }
  }

  /** Bounded retries of transient failures (file I/O) before a record is dead-lettered. */
  public record Retries(int maxAttempts, long backoffMs) {
    static final ConfigKey ATTEMPTS =
        ConfigKey.of(
            "probestream.retries.max-attempts",
            "3",
            "Attempts of a transient failure (I/O) before the record goes to the DLQ as retries_exhausted.");
    static final ConfigKey BACKOFF =
        ConfigKey.of(
            "probestream.retries.backoff-ms",
            "200",
            "First retry delay; doubles with each attempt.");

    static Retries take(ConfigSource s) {
      return new Retries(s.takeInt(ATTEMPTS, 1, 100), s.takeLong(BACKOFF, 0, 600_000));
    }
  }

  /**
   * Which probes run on every checkpoint's reference set, and the settings of {@code
   * feature_complexity} (PROBES.md §0 defaults).
   */
  public record Probes(
      List<String> enabled,
      double beta,
      double tau,
      int k,
      double alpha,
      int maxWidth,
      int ifmDataMaxUnits) {
    /** The probes a checkpoint's reference set can run, in result order. */
    public static final List<String> KNOWN =
        List.of("neural_collapse", "feature_complexity", "predictive_multiplicity");

    static final ConfigKey ENABLED =
        ConfigKey.of(
            "probestream.probes.enabled",
            "neural_collapse,feature_complexity,predictive_multiplicity",
            "Probes run on each checkpoint's reference set (comma-separated; 'all' for every one).");
    static final ConfigKey BETA =
        ConfigKey.of(
            "probestream.probes.ifm-beta",
            "0.1",
            "Iterative Feature Merging stop rule: merge while dmin ≤ beta·dmax (PROBES.md §2.1).");
    static final ConfigKey TAU =
        ConfigKey.of(
            "probestream.probes.ifm-tau",
            "0.01",
            "Data-aware IFM: largest relative change of the layer's output (PROBES.md §2.2).");
    static final ConfigKey K =
        ConfigKey.of(
            "probestream.probes.vinfo-k",
            "8",
            "V-information: principal directions of the classifier-feeding layer (PROBES.md §2.4).");
    static final ConfigKey ALPHA =
        ConfigKey.of("probestream.probes.vinfo-alpha", "0.001", "V-information: ridge strength.");
    static final ConfigKey MAX_WIDTH =
        ConfigKey.of(
            "probestream.probes.max-width",
            "4096",
            "Widest layer given a d×d state (effective_rank, vinfo); wider layers get null with a note.");
    static final ConfigKey IFM_DATA_MAX_UNITS =
        ConfigKey.of(
            "probestream.probes.ifm-data-max-units",
            "1024",
            "Widest layer given data-aware IFM; wider layers get null with a note.");

    public Probes {
      enabled = List.copyOf(enabled);
      if (enabled.isEmpty()) {
        throw new ConfigException(ENABLED.name() + " is empty; choose from " + KNOWN);
      }
      for (String p : enabled) {
        if (!KNOWN.contains(p)) {
          throw new ConfigException(
              ENABLED.name()
                  + " entry '"
                  + p
                  + "': unknown probe; choose from "
                  + KNOWN
                  + " or all");
        }
      }
    }

    static Probes take(ConfigSource s) {
      List<String> enabled = s.takeList(ENABLED);
      if (enabled.equals(List.of("all"))) {
        enabled = KNOWN;
      }
      return new Probes(
          enabled,
          s.takeDouble(BETA, 0, 1e9),
          s.takeDouble(TAU, 0, 1e9),
          s.takeInt(K, 1, 1024),
          s.takeDouble(ALPHA, Double.MIN_NORMAL, 1e9),
          s.takeInt(MAX_WIDTH, 1, 65_536),
          s.takeInt(IFM_DATA_MAX_UNITS, 1, 65_536));
    }
  }

  /** The experiment-wide state of {@code predictive_multiplicity} (PROBES.md §3). */
  public record Multiplicity(double epsilon, int maxModels, String scope, int window) {
    static final ConfigKey EPSILON =
        ConfigKey.of(
            "probestream.multiplicity.epsilon",
            "0.05",
            "Rashomon set: checkpoints whose reference loss is within epsilon nats of the best.");
    static final ConfigKey MAX_MODELS =
        ConfigKey.of(
            "probestream.multiplicity.max-models",
            "32",
            "Members kept per experiment (their probabilities, N·K float32 each); past it the one"
                + " with the highest loss is dropped and results say so.");
    static final ConfigKey SCOPE =
        ConfigKey.of(
            "probestream.multiplicity.scope",
            "experiment",
            "experiment: one set across runs; run: per run, over its last 'window' checkpoints.");
    static final ConfigKey WINDOW =
        ConfigKey.of(
            "probestream.multiplicity.window",
            "5",
            "With scope run: how many of a run's latest checkpoints form its candidates.");

    public Multiplicity {
      if (!scope.equals("experiment") && !scope.equals("run")) {
        throw new ConfigException(SCOPE.name() + " = '" + scope + "': must be experiment or run");
      }
    }

    static Multiplicity take(ConfigSource s) {
      return new Multiplicity(
          s.takeDouble(EPSILON, 0, 1e6),
          s.takeInt(MAX_MODELS, 1, 10_000),
          s.take(SCOPE),
          s.takeInt(WINDOW, 1, 10_000));
    }
  }

  /** Every record takes its keys from {@code source}; leftover keys are an error. */
  public static ProbestreamConfig load(ConfigSource source) {
    ProbestreamConfig c =
        new ProbestreamConfig(
            Kafka.take(source),
            KafkaSecurity.take(source),
            Http.take(source),
            TopicsConfig.take(source),
            Workers.take(source),
            Limits.take(source),
            Pending.take(source),
            Model.take(source),
            Retries.take(source),
            Probes.take(source),
            Multiplicity.take(source),
            State.take(source),
            Experiments.take(source),
            Blobs.take(source),
            Path.of(source.take(DATA_DIR)).toAbsolutePath().normalize());
    source.rejectUnknown();
    if (c.kafka().embedded() && !c.kafkaSecurity().protocol().equals("PLAINTEXT")) {
      throw new ConfigException(
          KafkaSecurity.PROTOCOL.name()
              + " = "
              + c.kafkaSecurity().protocol()
              + " and "
              + Kafka.EMBEDDED.name()
              + " = true: the embedded broker speaks PLAINTEXT on 127.0.0.1 only");
    }
    return c;
  }

  /** Convenience for tests and embedded use: flags only, no file, no environment. */
  public static ProbestreamConfig of(Map<String, String> flags) {
    return load(ConfigSource.of(null, Map.of(), flags));
  }

  /** Every key, in declaration order, for documentation. */
  public static List<ConfigKey> keys() {
    return List.of(
        Kafka.BOOTSTRAP,
        Kafka.EMBEDDED,
        Kafka.PORT,
        Kafka.GROUP,
        Kafka.DELIVERY,
        Kafka.SESSION_TIMEOUT,
        KafkaSecurity.PROTOCOL,
        KafkaSecurity.SASL_MECHANISM,
        KafkaSecurity.SASL_USERNAME,
        KafkaSecurity.SASL_PASSWORD_FILE,
        KafkaSecurity.TRUSTSTORE,
        KafkaSecurity.TRUSTSTORE_PASSWORD_FILE,
        KafkaSecurity.CLIENT_PROPERTIES,
        Http.HOST,
        Http.PORT,
        Http.AUTH_TOKEN_FILE,
        Http.OPEN_PATHS,
        Http.TLS_CERT,
        Http.TLS_KEY,
        DATA_DIR,
        TopicsConfig.PREFIX,
        TopicsConfig.PARTITIONS,
        TopicsConfig.REPLICATION,
        Workers.THREADS,
        Workers.MAX_IN_FLIGHT,
        Limits.MAX_BATCH,
        Limits.MAX_MODEL,
        Limits.MAX_REFERENCE,
        Limits.MAX_WIDTH,
        Limits.MAX_STATE,
        Pending.MAX,
        Pending.AGE,
        Model.FILE_ROOTS,
        Model.ALLOWED_HOSTS,
        Model.HTTP_TIMEOUT,
        Model.DEVICE,
        Model.BATCH_SIZE,
        Model.CACHE,
        Model.SESSIONS,
        Retries.ATTEMPTS,
        Retries.BACKOFF,
        Probes.ENABLED,
        Probes.BETA,
        Probes.TAU,
        Probes.K,
        Probes.ALPHA,
        Probes.MAX_WIDTH,
        Probes.IFM_DATA_MAX_UNITS,
        Multiplicity.EPSILON,
        Multiplicity.MAX_MODELS,
        Multiplicity.SCOPE,
        Multiplicity.WINDOW,
        State.ENABLED,
        Experiments.IDLE_TTL,
        Experiments.MAX,
        Blobs.STORE_BYTES);
  }

  /** The README's configuration table, generated from the key declarations. */
  public static String markdownTable() {
    StringBuilder sb =
        new StringBuilder("| key | environment | default | description |\n|---|---|---|---|\n");
    for (ConfigKey k : keys()) {
      sb.append("| `")
          .append(k.name())
          .append("` | `")
          .append(k.environmentVariable())
          .append("` | ")
          .append(k.defaultValue().isEmpty() ? "" : "`" + k.defaultValue() + "`")
          .append(" | ")
          .append(k.description())
          .append(" |\n");
    }
    return sb.toString();
  }

  private static int parse(ConfigKey key, String text, int min, int max) {
    int v;
    try {
      v = Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(key.name() + " = '" + text + "': must be an integer");
    }
    if (v < min || v > max) {
      throw new ConfigException(key.name() + " = " + v + ": must be " + min + ".." + max);
    }
    return v;
  }

  /** The topic names of this configuration. */
  public io.probestream.contracts.topics.Topics topicNames() {
    return new io.probestream.contracts.topics.Topics(topics.prefix());
  }
}
