package io.probestream.service.infra;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.introspect.Annotated;
import com.fasterxml.jackson.databind.introspect.JacksonAnnotationIntrospector;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvFromSource;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HTTPGetAction;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.probestream.contracts.config.ConfigKey;
import io.probestream.contracts.config.ConfigSource;
import io.probestream.contracts.config.ProbestreamConfig;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.kafka.KafkaSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checks k8s/ without a cluster: every core-kind manifest (Deployment, Service, ConfigMap,
 * PodDisruptionBudget) parses into fabric8's typed model with unknown fields rejected; the CRD
 * kinds (ServiceMonitor, ScaledObject, KafkaTopic) use only allow-listed fields; probes, ports,
 * environment variables, topic names and the consumer group are the service's real ones; and every
 * file kustomization.yaml lists exists.
 */
class KubernetesManifestsIT {
  /** Failsafe runs with the module directory as working directory. */
  private static final Path ROOT = Path.of("../..").toAbsolutePath().normalize();

  private static final Path K8S = ROOT.resolve("k8s");
  private static final Path HTTP_VERTICLE =
      ROOT.resolve(
          "services/probestream-service/src/main/java/io/probestream/service/web/HttpVerticle.java");

  /** Applied on its own (needs GPU nodes), so deliberately not in kustomization.yaml. */
  private static final String GPU_DEPLOYMENT = "deployment-gpu.yaml";

  private static final String GPU = "nvidia.com/gpu";

  /**
   * The defaults of every configuration key (the README's configuration table); a cluster has to be
   * named, so that one key is set.
   */
  private static final ProbestreamConfig DEFAULTS =
      ProbestreamConfig.load(
          ConfigSource.of(
              null, Map.of("PROBESTREAM_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"), Map.of()));

  /** Plain YAML trees. */
  private static final YAMLMapper YAML = new YAMLMapper();

  /**
   * fabric8's model classes collect unknown fields in an any-setter ({@code additionalProperties}),
   * which would make FAIL_ON_UNKNOWN_PROPERTIES a no-op; this mapper turns any-setters off, so an
   * unknown or misspelt field fails the parse.
   */
  private static final YAMLMapper STRICT = strictMapper();

  /** Fields of the CRD kinds this directory uses (the CRDs' schemas, restricted to what we use). */
  private static final Map<String, Set<String>> CRD_FIELDS =
      Map.of(
          "monitoring.coreos.com/v1/ServiceMonitor",
          Set.of(
              "apiVersion",
              "kind",
              "metadata.name",
              "metadata.namespace",
              "metadata.labels.*",
              "spec.selector.matchLabels.*",
              "spec.jobLabel",
              "spec.endpoints[].port",
              "spec.endpoints[].path",
              "spec.endpoints[].interval",
              "spec.endpoints[].scrapeTimeout",
              "spec.endpoints[].scheme"),
          "keda.sh/v1alpha1/ScaledObject",
          Set.of(
              "apiVersion",
              "kind",
              "metadata.name",
              "metadata.namespace",
              "metadata.labels.*",
              "spec.scaleTargetRef.apiVersion",
              "spec.scaleTargetRef.kind",
              "spec.scaleTargetRef.name",
              "spec.pollingInterval",
              "spec.cooldownPeriod",
              "spec.minReplicaCount",
              "spec.maxReplicaCount",
              "spec.idleReplicaCount",
              "spec.triggers[].type",
              "spec.triggers[].name",
              "spec.triggers[].metadata.*"),
          "kafka.strimzi.io/v1beta2/KafkaTopic",
          Set.of(
              "apiVersion",
              "kind",
              "metadata.name",
              "metadata.namespace",
              "metadata.labels.*",
              "spec.topicName",
              "spec.partitions",
              "spec.replicas",
              "spec.config.*"));

  /** Maps whose keys are free (labels, string maps); their keys are checked separately. */
  private static final Set<String> OPEN_MAPS =
      Set.of(
          "metadata.labels",
          "metadata.annotations",
          "spec.selector.matchLabels",
          "spec.triggers[].metadata",
          "spec.config");

  /** KEDA's kafka scaler parameters (keda.sh/docs/scalers/apache-kafka). */
  private static final Set<String> KEDA_KAFKA_METADATA =
      Set.of(
          "bootstrapServers",
          "consumerGroup",
          "topic",
          "lagThreshold",
          "activationLagThreshold",
          "offsetResetPolicy",
          "allowIdleConsumers",
          "scaleToZeroOnInvalidOffset",
          "excludePersistentLag",
          "limitToPartitionsWithLag",
          "version");

  /** Topic-level Kafka configs the KafkaTopics may set. */
  private static final Set<String> TOPIC_CONFIGS =
      Set.of(
          "cleanup.policy",
          "max.message.bytes",
          "retention.ms",
          "retention.bytes",
          "min.insync.replicas",
          "segment.bytes",
          "min.compaction.lag.ms");

  private record Doc(Path file, JsonNode tree) {
    String kind() {
      return tree.path("kind").asText();
    }

    String name() {
      return tree.path("metadata").path("name").asText();
    }

    @Override
    public String toString() {
      return K8S.relativize(file) + " " + kind() + "/" + name();
    }
  }

  private static List<Doc> docs;

  @BeforeAll
  static void readManifests() throws IOException {
    docs = new ArrayList<>();
    for (Path f : manifestFiles()) {
      try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(f.toFile())) {
        while (it.hasNext()) {
          JsonNode n = it.next();
          if (n != null && !n.isNull() && !n.isMissingNode()) {
            docs.add(new Doc(f, n));
          }
        }
      }
    }
    assertThat(docs).isNotEmpty();
  }

  // ------------------------------------------------------------------------------ kustomize

  @Test
  void kustomizationListsFilesThatExistAndEveryManifestButTheGpuVariant() throws IOException {
    JsonNode k = YAML.readTree(K8S.resolve("kustomization.yaml").toFile());
    assertThat(k.path("apiVersion").asText()).isEqualTo("kustomize.config.k8s.io/v1beta1");
    assertThat(k.path("kind").asText()).isEqualTo("Kustomization");
    List<String> resources = new ArrayList<>();
    k.path("resources").forEach(r -> resources.add(r.asText()));
    assertThat(resources).isNotEmpty().doesNotHaveDuplicates();
    for (String r : resources) {
      assertThat(K8S.resolve(r)).as("kustomization.yaml lists %s", r).isRegularFile();
    }
    Set<String> files = new TreeSet<>();
    for (Path f : manifestFiles()) {
      files.add(K8S.relativize(f).toString());
    }
    Set<String> expected = new TreeSet<>(resources);
    expected.add(GPU_DEPLOYMENT);
    assertThat(files).as("manifests in k8s/").isEqualTo(expected);
    // the README explains every file
    String readme = Files.readString(K8S.resolve("README.md"));
    for (String f : expected) {
      assertThat(readme).as("k8s/README.md mentions %s", f).contains(f);
    }
  }

  // ------------------------------------------------------------------------------ typed model

  @Test
  void everyManifestIsAKnownKindAndCoreKindsParseStrictly() throws IOException {
    Map<String, Integer> kinds = new TreeMap<>();
    for (Doc d : docs) {
      kinds.merge(d.kind(), 1, Integer::sum);
      String api = d.tree.path("apiVersion").asText();
      switch (d.kind()) {
        case "Deployment" -> {
          assertThat(api).as(d.toString()).isEqualTo("apps/v1");
          assertThat(parse(d, Deployment.class).getSpec().getTemplate()).isNotNull();
        }
        case "Service" -> {
          assertThat(api).as(d.toString()).isEqualTo("v1");
          parse(d, Service.class);
        }
        case "ConfigMap" -> {
          assertThat(api).as(d.toString()).isEqualTo("v1");
          parse(d, ConfigMap.class);
        }
        case "PodDisruptionBudget" -> {
          assertThat(api).as(d.toString()).isEqualTo("policy/v1");
          parse(d, PodDisruptionBudget.class);
        }
        case "ServiceMonitor", "ScaledObject", "KafkaTopic" -> assertCrdFields(d);
        default -> throw new AssertionError(d + ": a kind this test does not check");
      }
      assertThat(d.name()).as(d + ": metadata.name is a DNS-1123 name").matches(DNS_1123);
    }
    assertThat(kinds)
        .containsEntry("Deployment", 2)
        .containsEntry("Service", 1)
        .containsEntry("ConfigMap", 1)
        .containsEntry("PodDisruptionBudget", 1)
        .containsEntry("ServiceMonitor", 1)
        .containsEntry("ScaledObject", 1)
        .containsEntry("KafkaTopic", 6);
  }

  @Test
  void theStrictParseRejectsUnknownFields() {
    Doc dep = one("Deployment", "probestream");
    ObjectNode typo = dep.tree.deepCopy();
    ObjectNode container =
        (ObjectNode) typo.path("spec").path("template").path("spec").path("containers").get(0);
    container.putObject("readinessprobe").putObject("httpGet").put("path", "/health/ready");
    assertThatThrownBy(() -> STRICT.treeToValue(typo, Deployment.class))
        .isInstanceOf(UnrecognizedPropertyException.class)
        .hasMessageContaining("readinessprobe");
    ObjectNode top = dep.tree.deepCopy();
    ((ObjectNode) top.get("spec")).put("replica", 2);
    assertThatThrownBy(() -> STRICT.treeToValue(top, Deployment.class))
        .isInstanceOf(UnrecognizedPropertyException.class);
    // and the allow-list rejects an unknown CRD field
    ObjectNode so = one("ScaledObject", "probestream").tree.deepCopy();
    ((ObjectNode) so.get("spec")).put("maxReplicas", 3);
    assertThat(unknownFields(new Doc(K8S.resolve("scaledobject.yaml"), so)))
        .containsExactly("spec.maxReplicas");
  }

  // ------------------------------------------------------------------------------ Deployments

  @Test
  void deploymentsRunServeWithRealProbesPortsResourcesAndDataVolume() throws IOException {
    String routes = Files.readString(HTTP_VERTICLE);
    for (String path : List.of("/health/ready", "/health/live", "/metrics")) {
      assertThat(routes).as("HttpVerticle serves %s", path).contains("get(\"" + path + "\")");
    }
    int httpPort = DEFAULTS.http().port();
    assertThat(httpPort).isEqualTo(8080);
    String configMap = one("ConfigMap", null).name();

    for (Doc d : docs("Deployment")) {
      Deployment dep = parse(d, Deployment.class);
      var pod = dep.getSpec().getTemplate().getSpec();
      assertThat(dep.getSpec().getTemplate().getMetadata().getLabels())
          .as("%s: template labels match the selector", d)
          .containsAllEntriesOf(dep.getSpec().getSelector().getMatchLabels());
      assertThat(pod.getContainers()).as(d.toString()).hasSize(1);
      Container c = pod.getContainers().get(0);
      boolean gpu = d.name().endsWith("-gpu");
      assertThat(c.getImage()).as(d.toString()).startsWith("probestream:latest");

      // serve --bootstrap-servers … --http-port 8080 --data-dir <the emptyDir mount>
      List<String> args = c.getArgs();
      assertThat(args).as(d.toString()).startsWith("serve").contains("--bootstrap-servers");
      assertThat(flag(args, "--bootstrap-servers")).isNotBlank();
      assertThat(flag(args, "--http-port")).isEqualTo(Integer.toString(httpPort));
      String dataDir = flag(args, "--data-dir");
      VolumeMount mount =
          c.getVolumeMounts().stream()
              .filter(m -> m.getMountPath().equals(dataDir))
              .findFirst()
              .orElseThrow(() -> new AssertionError(d + ": nothing mounted at " + dataDir));
      Volume vol =
          pod.getVolumes().stream()
              .filter(v -> v.getName().equals(mount.getName()))
              .findFirst()
              .orElseThrow();
      assertThat(vol.getEmptyDir()).as("%s: data volume is an emptyDir", d).isNotNull();

      // port 8080 named http, probes on the real health endpoints
      assertThat(c.getPorts())
          .as(d.toString())
          .anySatisfy(
              p -> {
                assertThat(p.getName()).isEqualTo("http");
                assertThat(p.getContainerPort()).isEqualTo(httpPort);
              });
      assertProbe(d, c.getReadinessProbe().getHttpGet(), "/health/ready", httpPort);
      assertProbe(d, c.getLivenessProbe().getHttpGet(), "/health/live", httpPort);

      // requests and limits, requests within limits
      Map<String, Quantity> req = c.getResources().getRequests();
      Map<String, Quantity> lim = c.getResources().getLimits();
      assertThat(req).as(d.toString()).containsKeys("cpu", "memory");
      assertThat(lim).as(d.toString()).containsKeys("cpu", "memory");
      for (String r : List.of("cpu", "memory")) {
        assertThat(req.get(r).getNumericalAmount())
            .as("%s: %s request within its limit", d, r)
            .isLessThanOrEqualTo(lim.get(r).getNumericalAmount());
      }

      // env: the ConfigMap, plus real PROBESTREAM_* names
      assertThat(c.getEnvFrom())
          .extracting(EnvFromSource::getConfigMapRef)
          .anySatisfy(ref -> assertThat(ref.getName()).isEqualTo(configMap));
      Map<String, String> env = new LinkedHashMap<>();
      for (EnvVar e : c.getEnv()) {
        env.put(e.getName(), e.getValue());
      }
      for (String name : env.keySet()) {
        if (name.startsWith("PROBESTREAM_")) {
          assertThat(environmentVariables()).as("%s: env %s", d, name).contains(name);
        }
      }
      if (gpu) {
        assertThat(lim.get(GPU)).as(d.toString()).isEqualTo(new Quantity("1"));
        assertThat(env).containsEntry("PROBESTREAM_MODEL_DEVICE", "cuda");
      } else {
        assertThat(lim).as(d.toString()).doesNotContainKey(GPU);
        assertThat(req).as(d.toString()).doesNotContainKey(GPU);
        assertThat(env).doesNotContainKey("PROBESTREAM_MODEL_DEVICE");
      }
    }
    assertThat(docs("Deployment")).extracting(Doc::name).contains("probestream", "probestream-gpu");
  }

  // ------------------------------------------------------------------------------ ConfigMap

  @Test
  void configMapHoldsRealVariablesWithValidValues() {
    ConfigMap cm = parse(one("ConfigMap", null), ConfigMap.class);
    Map<String, String> data = cm.getData();
    assertThat(data).isNotEmpty();
    Set<String> real = environmentVariables();
    assertThat(data.keySet())
        .as("every ConfigMap key is a configuration key's environment variable")
        .allMatch(real::contains, "one of " + real);
    // the values load: the configuration validates them as it would in the pod
    ProbestreamConfig c = configMapConfig();
    assertThat(c.kafka().groupId()).isEqualTo(DEFAULTS.kafka().groupId());
    assertThat(c.topics().prefix()).isEqualTo(Topics.DEFAULT_PREFIX);
    assertThat(c.http().port()).isEqualTo(8080);
    assertThat(c.model().device()).isEqualTo("cpu");
  }

  // ------------------------------------------------------------------------------ Service & co

  @Test
  void serviceServiceMonitorAndPdbSelectTheWorkers() {
    Service svc = parse(one("Service", null), Service.class);
    assertThat(svc.getSpec().getPorts()).hasSize(1);
    ServicePort port = svc.getSpec().getPorts().get(0);
    assertThat(port.getName()).isEqualTo("http");
    assertThat(port.getPort()).isEqualTo(DEFAULTS.http().port());
    assertThat(port.getTargetPort()).isIn(new IntOrString("http"), new IntOrString(8080));

    Map<String, String> selector = svc.getSpec().getSelector();
    PodDisruptionBudget pdb = parse(one("PodDisruptionBudget", null), PodDisruptionBudget.class);
    for (Doc d : docs("Deployment")) {
      Map<String, String> labels =
          parse(d, Deployment.class).getSpec().getTemplate().getMetadata().getLabels();
      assertThat(labels).as("Service selects %s", d).containsAllEntriesOf(selector);
      assertThat(labels)
          .as("PDB selects %s", d)
          .containsAllEntriesOf(pdb.getSpec().getSelector().getMatchLabels());
    }
    assertThat(pdb.getSpec().getMaxUnavailable() != null || pdb.getSpec().getMinAvailable() != null)
        .isTrue();

    JsonNode sm = one("ServiceMonitor", null).tree;
    assertThat(sm.path("apiVersion").asText()).isEqualTo("monitoring.coreos.com/v1");
    Map<String, String> smSelector =
        stringMap(sm.path("spec").path("selector").path("matchLabels"));
    assertThat(svc.getMetadata().getLabels()).containsAllEntriesOf(smSelector);
    JsonNode endpoints = sm.path("spec").path("endpoints");
    assertThat(endpoints.size()).isEqualTo(1);
    assertThat(endpoints.get(0).path("port").asText()).isEqualTo(port.getName());
    assertThat(endpoints.get(0).path("path").asText()).isEqualTo("/metrics");
  }

  // ------------------------------------------------------------------------------ KEDA

  @Test
  void scaledObjectScalesTheDeploymentOnTheServicesConsumerLag() {
    JsonNode so = one("ScaledObject", null).tree;
    assertThat(so.path("apiVersion").asText()).isEqualTo("keda.sh/v1alpha1");
    JsonNode target = so.path("spec").path("scaleTargetRef");
    assertThat(target.path("kind").asText("Deployment")).isEqualTo("Deployment");
    Deployment cpu = parse(one("Deployment", target.path("name").asText()), Deployment.class);

    JsonNode triggers = so.path("spec").path("triggers");
    assertThat(triggers.size()).isEqualTo(1);
    JsonNode t = triggers.get(0);
    assertThat(t.path("type").asText()).isEqualTo("kafka");
    JsonNode meta = t.path("metadata");
    meta.fields()
        .forEachRemaining(
            e -> {
              assertThat(KEDA_KAFKA_METADATA).as("kafka trigger parameter").contains(e.getKey());
              assertThat(e.getValue().isTextual())
                  .as("KEDA trigger metadata values are strings: %s", e.getKey())
                  .isTrue();
            });
    ProbestreamConfig c = configMapConfig();
    assertThat(meta.path("consumerGroup").asText())
        .isEqualTo(DEFAULTS.kafka().groupId())
        .isEqualTo(c.kafka().groupId())
        .isEqualTo("probestream");
    assertThat(meta.path("topic").asText())
        .isEqualTo(c.topicNames().checkpoints())
        .isEqualTo("probestream.checkpoints");
    assertThat(meta.path("bootstrapServers").asText())
        .isEqualTo(
            flag(
                cpu.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs(),
                "--bootstrap-servers"));
    Long.parseLong(meta.path("lagThreshold").asText());

    int min = so.path("spec").path("minReplicaCount").asInt();
    int max = so.path("spec").path("maxReplicaCount").asInt();
    assertThat(min).isPositive().isLessThanOrEqualTo(max);
    int partitions = topics().get(c.topicNames().checkpoints()).path("partitions").asInt();
    assertThat(max)
        .as("more replicas than checkpoint partitions would sit idle")
        .isLessThanOrEqualTo(partitions);
  }

  // ------------------------------------------------------------------------------ Strimzi

  @Test
  void kafkaTopicsAreTheServicesTopics() {
    ProbestreamConfig c = configMapConfig();
    Topics names = c.topicNames();
    assertThat(names).isEqualTo(new Topics(Topics.DEFAULT_PREFIX));
    Map<String, JsonNode> topics = topics();
    List<String> expected = new ArrayList<>(names.all());
    assertThat(topics.keySet())
        .containsExactlyInAnyOrderElementsOf(expected)
        .contains(
            "probestream.checkpoints",
            "probestream.blobs",
            "probestream.batches",
            "probestream.results",
            "probestream.dlq",
            "probestream.state");

    String cluster = null;
    for (Doc d : docs("KafkaTopic")) {
      assertThat(d.tree.path("apiVersion").asText()).isEqualTo("kafka.strimzi.io/v1beta2");
      String label = d.tree.path("metadata").path("labels").path("strimzi.io/cluster").asText();
      assertThat(label).as("%s: strimzi.io/cluster", d).isNotBlank();
      if (cluster != null) {
        assertThat(label).as("%s: one Kafka cluster", d).isEqualTo(cluster);
      }
      cluster = label;
    }
    for (Map.Entry<String, JsonNode> e : topics.entrySet()) {
      JsonNode spec = e.getValue();
      assertThat(spec.path("partitions").asInt())
          .as("%s partitions = probestream.topics.partitions", e.getKey())
          .isEqualTo(c.topics().partitions());
      assertThat(spec.path("replicas").asInt())
          .as("%s replicas = probestream.topics.replication", e.getKey())
          .isEqualTo(c.topics().replication());
      spec.path("config")
          .fieldNames()
          .forEachRemaining(k -> assertThat(TOPIC_CONFIGS).as(e.getKey()).contains(k));
    }
    assertThat(topics.get(names.state()).path("config").path("cleanup.policy").asText())
        .isEqualTo("compact");
    long maxMessage = c.limits().maxBatchBytes() + KafkaSettings.SLACK_BYTES;
    assertThat(maxMessage).isEqualTo(DEFAULTS.limits().maxBatchBytes() + (1 << 20));
    for (String t : List.of(names.batches(), names.dlq())) {
      assertThat(topics.get(t).path("config").path("max.message.bytes").asLong())
          .as("%s max.message.bytes = limits.max-batch-bytes + 1 MiB", t)
          .isEqualTo(maxMessage);
    }
  }

  // ------------------------------------------------------------------------------ helpers

  private static final String DNS_1123 = "[a-z0-9]([-a-z0-9.]*[a-z0-9])?";

  private static YAMLMapper strictMapper() {
    YAMLMapper m = new YAMLMapper();
    m.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    m.setAnnotationIntrospector(new NoAnySetter());
    return m;
  }

  /** Ignores {@code @JsonAnySetter}, so unknown fields are unknown properties. */
  private static final class NoAnySetter extends JacksonAnnotationIntrospector {
    private static final long serialVersionUID = 1L;

    @Override
    public Boolean hasAnySetter(Annotated a) {
      return Boolean.FALSE;
    }
  }

  private static List<Path> manifestFiles() throws IOException {
    try (Stream<Path> s = Files.list(K8S)) {
      return s.filter(p -> p.getFileName().toString().matches(".*\\.ya?ml"))
          .filter(p -> !p.getFileName().toString().equals("kustomization.yaml"))
          .sorted()
          .toList();
    }
  }

  private static <T> T parse(Doc d, Class<T> type) {
    try {
      return STRICT.treeToValue(d.tree, type);
    } catch (IOException e) {
      throw new AssertionError(d + " does not parse as " + type.getName() + ": " + e, e);
    }
  }

  private static List<Doc> docs(String kind) {
    return docs.stream().filter(d -> d.kind().equals(kind)).toList();
  }

  /** The one manifest of a kind (with that name, when name is not null). */
  private static Doc one(String kind, String name) {
    List<Doc> found =
        docs(kind).stream().filter(d -> name == null || d.name().equals(name)).toList();
    assertThat(found).as("%s %s", kind, name == null ? "" : name).hasSize(1);
    return found.get(0);
  }

  private static String flag(List<String> args, String flag) {
    int i = args.indexOf(flag);
    assertThat(i).as("%s in %s", flag, args).isNotNegative().isLessThan(args.size() - 1);
    return args.get(i + 1);
  }

  private static void assertProbe(Doc d, HTTPGetAction get, String path, int port) {
    assertThat(get).as("%s: httpGet probe on %s", d, path).isNotNull();
    assertThat(get.getPath()).as(d.toString()).isEqualTo(path);
    assertThat(get.getPort()).as(d.toString()).isIn(new IntOrString("http"), new IntOrString(port));
  }

  private static Set<String> environmentVariables() {
    return ProbestreamConfig.keys().stream()
        .map(ConfigKey::environmentVariable)
        .collect(Collectors.toCollection(TreeSet::new));
  }

  /**
   * The configuration the CPU pod gets: the ConfigMap as its environment, plus the bootstrap
   * servers of its args.
   */
  private static ProbestreamConfig configMapConfig() {
    Map<String, String> env =
        new LinkedHashMap<>(parse(one("ConfigMap", null), ConfigMap.class).getData());
    List<String> args =
        parse(one("Deployment", "probestream"), Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getArgs();
    env.put("PROBESTREAM_KAFKA_BOOTSTRAP_SERVERS", flag(args, "--bootstrap-servers"));
    return ProbestreamConfig.load(ConfigSource.of(null, env, Map.of()));
  }

  /** KafkaTopic spec by topic name (spec.topicName, else metadata.name). */
  private static Map<String, JsonNode> topics() {
    Map<String, JsonNode> byName = new TreeMap<>();
    for (Doc d : docs("KafkaTopic")) {
      JsonNode spec = d.tree.path("spec");
      String name = spec.path("topicName").asText(d.name());
      assertThat(byName.put(name, spec)).as("topic %s declared twice", name).isNull();
    }
    return byName;
  }

  private static Map<String, String> stringMap(JsonNode object) {
    Map<String, String> m = new LinkedHashMap<>();
    object.fields().forEachRemaining(e -> m.put(e.getKey(), e.getValue().asText()));
    return m;
  }

  private static void assertCrdFields(Doc d) {
    String key = d.tree.path("apiVersion").asText() + "/" + d.kind();
    assertThat(CRD_FIELDS).as("%s: known apiVersion/kind", d).containsKey(key);
    assertThat(unknownFields(d)).as("%s: fields outside the allow-list", d).isEmpty();
    assertThat(d.tree.path("spec").isObject()).as("%s has a spec", d).isTrue();
  }

  /** The field paths of a CRD manifest that its allow-list does not name. */
  private static List<String> unknownFields(Doc d) {
    Set<String> allowed = CRD_FIELDS.get(d.tree.path("apiVersion").asText() + "/" + d.kind());
    List<String> paths = new ArrayList<>();
    fieldPaths(d.tree, "", paths);
    return paths.stream().filter(p -> !allowed.contains(p)).toList();
  }

  private static void fieldPaths(JsonNode n, String path, List<String> out) {
    if (OPEN_MAPS.contains(path)) {
      assertThat(n.isObject()).as("%s is a map", path).isTrue();
      n.fields()
          .forEachRemaining(
              e -> assertThat(e.getValue().isValueNode()).as("%s.%s", path, e.getKey()).isTrue());
      out.add(path + ".*");
    } else if (n.isObject()) {
      n.fields()
          .forEachRemaining(
              e ->
                  fieldPaths(
                      e.getValue(), path.isEmpty() ? e.getKey() : path + "." + e.getKey(), out));
    } else if (n.isArray()) {
      n.forEach(x -> fieldPaths(x, path + "[]", out));
    } else {
      out.add(path);
    }
  }
}
