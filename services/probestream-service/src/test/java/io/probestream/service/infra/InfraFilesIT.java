package io.probestream.service.infra;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.probestream.service.metrics.ServiceMetrics;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checks infra/ (Prometheus configuration and rules, Grafana provisioning and dashboard, compose
 * stack) without Docker: promtool validates the configuration, the rules and their unit tests;
 * every PromQL expression of the dashboard parses; every metric name in the dashboard and the rules
 * is one the service really exposes (read from a {@link ServiceMetrics} scrape fed with every
 * PROBES.md key); and every file compose mounts or builds from exists. Needs promtool (Debian's
 * prometheus package) on the PATH, or its location in PROMTOOL.
 */
class InfraFilesIT {
  /** Failsafe runs with the module directory as working directory. */
  private static final Path ROOT = Path.of("../..").toAbsolutePath().normalize();

  private static final Path INFRA = ROOT.resolve("infra");
  private static final Path PROMETHEUS_YML = INFRA.resolve("prometheus/prometheus.yml");
  private static final Path RULES = INFRA.resolve("prometheus/rules/probestream.rules.yml");
  private static final Path RULES_TEST =
      INFRA.resolve("prometheus/rules/probestream.rules.test.yml");
  private static final Path DASHBOARD = INFRA.resolve("grafana/dashboards/probestream.json");
  private static final Path COMPOSE = INFRA.resolve("compose.yaml");

  /** Series Prometheus makes itself (up) or the blackbox exporter exposes (probe_success). */
  private static final Set<String> NOT_FROM_SERVICE = Set.of("up", "probe_success");

  /** Metric keys per probe, PROBES.md §1.2, §2 and §3.2. */
  private static final Map<String, List<String>> PROBE_KEYS =
      Map.of(
          "neural_collapse",
          List.of(
              "nc1",
              "nc1_trace",
              "nc2_equinorm",
              "nc2_equiangular",
              "nc2_etf_distance",
              "cdnv",
              "nc3_self_duality",
              "nc4_ncc_mismatch",
              "sb_rank",
              "samples",
              "classes_seen",
              "nonfinite"),
          "feature_complexity",
          List.of(
              "ifm_units",
              "ifm_ratio",
              "ifm_data_units",
              "ifm_data_ratio",
              "effective_rank",
              "vinfo_r2",
              "width",
              "samples",
              "nonfinite",
              "vinfo_complexity",
              "vinfo_directions"),
          "predictive_multiplicity",
          List.of(
              "ambiguity",
              "discrepancy",
              "vpr_mean",
              "rashomon_capacity_mean",
              "disagreement_mean",
              "rashomon_set_size",
              "models_seen",
              "models_nonfinite",
              "samples",
              "baseline_loss"));

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final YAMLMapper YAML = new YAMLMapper();

  private static Set<String> serviceNames;

  @BeforeAll
  static void realMetricNames() {
    ServiceMetrics m = new ServiceMetrics();
    m.consumed("probestream.checkpoints");
    m.deadLettered("invalid_json");
    m.paused();
    m.inFlight(1);
    m.checkpointSeconds(0.3);
    m.inferenceSeconds(0.2);
    m.device("cpu");
    m.lastStep("e", "r", 10);
    PROBE_KEYS.forEach(
        (probe, keys) -> {
          m.published(probe);
          boolean perExperiment = probe.equals("predictive_multiplicity");
          for (String k : keys) {
            m.probeMetric(
                probe,
                k,
                "e",
                perExperiment ? "" : "r",
                perExperiment ? "" : "h1",
                "reference",
                1.0);
          }
        });
    serviceNames = new TreeSet<>();
    for (String line : m.scrape().split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      Matcher name = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)").matcher(line);
      assertThat(name.find()).as(line).isTrue();
      serviceNames.add(name.group(1));
    }
    // the exposition really holds what the rules and the dashboard lean on
    assertThat(serviceNames)
        .contains(
            "probestream_checkpoint_duration_seconds_bucket",
            "probestream_records_consumed_total",
            "probestream_neural_collapse_nc1",
            "probestream_predictive_multiplicity_rashomon_set_size");
  }

  // ------------------------------------------------------------------------------------ promtool

  @Test
  void promtoolAcceptsTheConfigTheRulesAndTheirUnitTests() throws Exception {
    // relative to the repository root, as in infra/README.md; rule_files resolve from the config
    assertPromtool(List.of("check", "config", "infra/prometheus/prometheus.yml"));
    assertPromtool(List.of("check", "rules", "infra/prometheus/rules/probestream.rules.yml"));
    String out =
        assertPromtool(
            List.of("test", "rules", "infra/prometheus/rules/probestream.rules.test.yml"));
    assertThat(out).contains("SUCCESS");
  }

  @Test
  void prometheusLoadsTheRulesButNotTheirTests() throws IOException {
    JsonNode config = YAML.readTree(PROMETHEUS_YML.toFile());
    List<String> globs = new ArrayList<>();
    config.path("rule_files").forEach(g -> globs.add(g.asText()));
    assertThat(globs).isNotEmpty();
    Path dir = PROMETHEUS_YML.getParent();
    boolean rules = false;
    for (String g : globs) {
      PathMatcher pm = FileSystems.getDefault().getPathMatcher("glob:" + g);
      rules |= pm.matches(dir.relativize(RULES));
      assertThat(pm.matches(dir.relativize(RULES_TEST)))
          .as("rule_files %s must not load the unit tests %s", g, RULES_TEST.getFileName())
          .isFalse();
    }
    assertThat(rules).as("rule_files %s load %s", globs, RULES.getFileName()).isTrue();

    // the service's scrape job points at the compose service
    JsonNode job = null;
    for (JsonNode j : config.path("scrape_configs")) {
      if (j.path("job_name").asText().equals("probestream")) {
        job = j;
      }
    }
    assertThat(job).as("scrape job 'probestream'").isNotNull();
    assertThat(job.path("metrics_path").asText()).isEqualTo("/metrics");
    assertThat(job.path("scrape_interval").asText()).isEqualTo("5s");
    assertThat(job.path("static_configs").get(0).path("targets").get(0).asText())
        .isEqualTo("probestream:8080");
  }

  // ------------------------------------------------------------------------------------ rules

  @Test
  void rulesUseOnlyRealMetricNamesAndEveryAlertIsDocumentedAndTested() throws IOException {
    JsonNode rules = YAML.readTree(RULES.toFile());
    Set<String> recorded = new TreeSet<>();
    Map<String, String> exprs = new LinkedHashMap<>();
    List<String> alerts = new ArrayList<>();
    for (JsonNode group : rules.path("groups")) {
      for (JsonNode r : group.path("rules")) {
        if (r.has("record")) {
          recorded.add(r.get("record").asText());
          exprs.put("record " + r.get("record").asText(), r.path("expr").asText());
        } else {
          String alert = r.path("alert").asText();
          alerts.add(alert);
          exprs.put("alert " + alert, r.path("expr").asText());
          assertThat(r.path("annotations").path("summary").asText())
              .as("%s: annotations.summary", alert)
              .isNotBlank();
          assertThat(r.path("annotations").path("description").asText())
              .as("%s: annotations.description", alert)
              .isNotBlank();
          assertThat(r.path("labels").path("severity").asText())
              .as("%s: labels.severity", alert)
              .isIn("critical", "warning", "info");
        }
      }
    }
    assertThat(alerts)
        .contains(
            "ProbestreamDown",
            "ProbestreamNotReady",
            "ProbestreamProbeStalled",
            "ProbestreamDlqRising",
            "ProbestreamNc1Diverging");

    Set<String> allowed = new TreeSet<>(serviceNames);
    allowed.addAll(NOT_FROM_SERVICE);
    allowed.addAll(recorded);
    assertKnownNames(exprs, allowed, "probestream.rules.yml");

    // every alert has a unit test where it fires and one where it must not
    JsonNode tests = YAML.readTree(RULES_TEST.toFile());
    Set<String> fires = new TreeSet<>();
    Set<String> silent = new TreeSet<>();
    for (JsonNode t : tests.path("tests")) {
      for (JsonNode a : t.path("alert_rule_test")) {
        (a.path("exp_alerts").isEmpty() ? silent : fires).add(a.path("alertname").asText());
      }
    }
    assertThat(fires).as("alerts with a firing test").containsAll(alerts);
    assertThat(silent).as("alerts with a not-firing test").containsAll(alerts);
  }

  // ------------------------------------------------------------------------------------ Grafana

  @Test
  void dashboardExpressionsParseAndUseOnlyRealMetricNames() throws Exception {
    JsonNode dash = JSON.readTree(DASHBOARD.toFile());
    Map<String, String> variables = new LinkedHashMap<>();
    variables.put("__rate_interval", "1m");
    variables.put("__interval", "1m");
    variables.put("__range", "1h");
    Map<String, String> exprs = new LinkedHashMap<>();
    for (JsonNode v : dash.path("templating").path("list")) {
      String name = v.path("name").asText();
      variables.put(name, "x-" + name);
      if (!v.path("type").asText().equals("query")) {
        continue;
      }
      JsonNode q = v.path("query");
      String query = q.isObject() ? q.path("query").asText() : q.asText();
      String promql = templatePromql(query);
      if (promql != null) {
        exprs.put("variable " + name, promql);
      }
    }
    assertThat(variables).containsKeys("experiment", "run", "layer");
    List<JsonNode> panels = new ArrayList<>();
    collectPanels(dash.path("panels"), panels);
    for (JsonNode p : panels) {
      int i = 0;
      for (JsonNode t : p.path("targets")) {
        String expr = t.path("expr").asText();
        assertThat(expr).as("panel '%s' target %s has an expr", p.path("title"), i).isNotBlank();
        exprs.put("panel '" + p.path("title").asText() + "' " + t.path("refId").asText(), expr);
        i++;
      }
    }
    assertThat(exprs).hasSizeGreaterThan(10);

    Map<String, String> concrete = new LinkedHashMap<>();
    exprs.forEach((where, e) -> concrete.put(where, substitute(e, variables, where)));

    // each expression as a recording rule: promtool parses them all
    List<Map<String, String>> rules = new ArrayList<>();
    StringBuilder listing = new StringBuilder();
    int n = 0;
    for (Map.Entry<String, String> e : concrete.entrySet()) {
      rules.add(Map.of("record", "dashboard:expr_" + n, "expr", e.getValue()));
      listing.append("\n  dashboard:expr_").append(n).append(" (").append(e.getKey()).append("): ");
      listing.append(e.getValue());
      n++;
    }
    Path tmp = Files.createTempFile("dashboard-exprs", ".rules.yml");
    try {
      YAML.writeValue(
          tmp.toFile(), Map.of("groups", List.of(Map.of("name", "dashboard", "rules", rules))));
      String out = promtool(List.of("check", "rules", tmp.toString()), listing.toString());
      assertThat(out).contains("SUCCESS: " + n + " rules found");
    } finally {
      Files.deleteIfExists(tmp);
    }

    assertKnownNames(concrete, serviceNames, "probestream.json");

    // one panel per probe metric the issue asks for, and the pipeline panels
    String all = String.join("\n", concrete.values());
    for (String metric :
        List.of(
            "probestream_neural_collapse_nc1",
            "probestream_neural_collapse_nc2_etf_distance",
            "probestream_neural_collapse_nc3_self_duality",
            "probestream_feature_complexity_ifm_units",
            "probestream_feature_complexity_effective_rank",
            "probestream_feature_complexity_vinfo_r2",
            "probestream_predictive_multiplicity_ambiguity",
            "probestream_predictive_multiplicity_discrepancy",
            "probestream_predictive_multiplicity_rashomon_capacity_mean",
            "probestream_predictive_multiplicity_rashomon_set_size",
            "probestream_records_consumed_total",
            "probestream_dlq_records_total",
            "probestream_checkpoint_duration_seconds_bucket",
            "probestream_worker_in_flight")) {
      assertThat(all).as("the dashboard shows %s", metric).containsPattern(metric + "\\b");
    }
  }

  @Test
  void grafanaProvisioningPointsAtPrometheusAndTheDashboards() throws IOException {
    JsonNode ds =
        YAML.readTree(INFRA.resolve("grafana/provisioning/datasources/prometheus.yml").toFile());
    JsonNode prom = ds.path("datasources").get(0);
    assertThat(prom.path("type").asText()).isEqualTo("prometheus");
    assertThat(URI.create(prom.path("url").asText()).getHost()).isEqualTo("prometheus");
    // the dashboard refers to the datasource by its uid
    String uid = prom.path("uid").asText();
    JsonNode dash = JSON.readTree(DASHBOARD.toFile());
    List<JsonNode> panels = new ArrayList<>();
    collectPanels(dash.path("panels"), panels);
    for (JsonNode p : panels) {
      if (!p.path("type").asText().equals("row")) {
        assertThat(p.path("datasource").path("uid").asText())
            .as(p.path("title").asText())
            .isEqualTo(uid);
      }
    }
    JsonNode provider =
        YAML.readTree(INFRA.resolve("grafana/provisioning/dashboards/probestream.yml").toFile())
            .path("providers")
            .get(0);
    assertThat(provider.path("type").asText()).isEqualTo("file");
    String path = provider.path("options").path("path").asText();

    JsonNode grafana = YAML.readTree(COMPOSE.toFile()).path("services").path("grafana");
    List<String> targets = new ArrayList<>();
    grafana.path("volumes").forEach(v -> targets.add(v.asText()));
    assertThat(targets)
        .as("compose mounts the dashboards where the provider reads them")
        .anyMatch(v -> v.startsWith("./grafana/dashboards:" + path));
  }

  // ------------------------------------------------------------------------------------ compose

  @Test
  void composeMountsAndBuildsFromFilesThatExist() throws IOException, InterruptedException {
    JsonNode compose = YAML.readTree(COMPOSE.toFile());
    JsonNode services = compose.path("services");
    assertThat(services.fieldNames())
        .toIterable()
        .contains("kafka", "probestream", "prometheus", "grafana");
    Set<String> namedVolumes = new TreeSet<>();
    compose.path("volumes").fieldNames().forEachRemaining(namedVolumes::add);
    List<String> missing = new ArrayList<>();
    int bindMounts = 0;
    for (Map.Entry<String, JsonNode> s : iterable(services)) {
      String service = s.getKey();
      JsonNode build = s.getValue().path("build");
      if (!build.isMissingNode()) {
        String context = build.isTextual() ? build.asText() : build.path("context").asText(".");
        Path ctx = INFRA.resolve(context).normalize();
        if (!Files.isDirectory(ctx)) {
          missing.add(service + ": build context " + ctx);
        }
        String dockerfile = build.path("dockerfile").asText("Dockerfile");
        Path df = ctx.resolve(dockerfile).normalize();
        if (!Files.isRegularFile(df)) {
          missing.add(service + ": dockerfile " + df);
        } else {
          checkDockerfile(ctx, df, s.getValue().path("command"), missing);
        }
      }
      for (JsonNode v : s.getValue().path("volumes")) {
        String source;
        boolean bind;
        if (v.isTextual()) {
          String[] parts = v.asText().split(":");
          assertThat(parts.length).as("%s: volume %s", service, v).isBetween(2, 3);
          source = parts[0];
          bind = source.startsWith(".") || source.startsWith("/") || source.startsWith("~");
        } else {
          source = v.path("source").asText();
          bind = v.path("type").asText().equals("bind");
        }
        if (bind) {
          bindMounts++;
          if (!Files.exists(INFRA.resolve(source).normalize())) {
            missing.add(
                service + ": mount " + source + " (" + INFRA.resolve(source).normalize() + ")");
          }
        } else if (!namedVolumes.contains(source)) {
          missing.add(service + ": named volume " + source + " not declared under volumes");
        }
      }
    }
    assertThat(missing).as("compose.yaml refers to files that do not exist").isEmpty();
    assertThat(bindMounts).isGreaterThanOrEqualTo(4);

    // the service runs `serve` against the compose broker, on the port Prometheus scrapes
    JsonNode ps = services.path("probestream");
    List<String> command = new ArrayList<>();
    ps.path("command").forEach(c -> command.add(c.asText()));
    assertThat(String.join(" ", command))
        .contains("serve", "--bootstrap-servers kafka:9092", "--http-port 8080");
    assertThat(services.path("kafka").path("image").asText()).startsWith("apache/kafka:");
  }

  /**
   * The image installs the CLI module's distribution tarball (src/assembly/dist.xml), the only
   * source its ignore file lets into the context; COPY --from a build stage copies nothing from the
   * context. The entry point is the distribution's launcher and CMD is compose's command.
   */
  private static void checkDockerfile(
      Path ctx, Path dockerfile, JsonNode composeCommand, List<String> missing)
      throws IOException, InterruptedException {
    String ignore = "";
    Path ignoreFile = dockerfile.resolveSibling(dockerfile.getFileName() + ".dockerignore");
    if (Files.exists(ignoreFile)) {
      ignore = Files.readString(ignoreFile);
    }
    Path cli = ROOT.resolve("services/probestream-cli");
    String pom = Files.readString(cli.resolve("pom.xml"));
    assertThat(pom)
        .contains(
            "<finalName>probestream</finalName>",
            "<artifactId>maven-assembly-plugin</artifactId>",
            "<descriptor>src/assembly/dist.xml</descriptor>",
            "<finalName>probestream-${project.version}</finalName>");
    assertThat(Files.readString(cli.resolve("src/assembly/dist.xml")))
        .contains("<format>tar.gz</format>", "<baseDirectory>probestream-${project.version}<");
    assertThat(cli.resolve("src/assembly/bin/probestream")).isRegularFile().isExecutable();
    int copies = 0;
    List<String> lines = Files.readAllLines(dockerfile);
    for (String line : lines) {
      String[] words = line.trim().split("\\s+");
      if (words.length < 3 || !words[0].equals("COPY")) {
        continue;
      }
      copies++;
      if (words[1].startsWith("--from=")) {
        continue;
      }
      for (int i = 1; i < words.length - 1; i++) {
        String src = words[i];
        if (src.startsWith("--")) {
          continue;
        }
        Path p = ctx.resolve(src).normalize();
        // build outputs: on a clean checkout the CLI module is packaged after this module's tests
        if (src.startsWith("services/probestream-cli/target/")) {
          assertThat(src).isEqualTo("services/probestream-cli/target/probestream-*.tar.gz");
        } else if (!Files.exists(p)) {
          missing.add("Dockerfile COPY " + src);
        }
        if (!ignore.isEmpty() && !ignore.contains("!" + src)) {
          missing.add("Dockerfile COPY " + src + " is not re-included in " + ignoreFile);
        }
      }
    }
    assertThat(copies).as("COPY lines in %s", dockerfile).isGreaterThanOrEqualTo(2);
    String text = String.join("\n", lines);
    assertThat(text)
        .contains("ENTRYPOINT [\"/opt/probestream/bin/probestream\"]")
        .containsPattern("(?m)^FROM eclipse-temurin:17-jre$");
    // CMD is compose's command, so `docker run probestream:local` does what compose does
    Matcher cmd = Pattern.compile("(?m)^CMD (\\[.*\\])$").matcher(text);
    assertThat(cmd.find()).as("a CMD [...] line in %s", dockerfile).isTrue();
    List<String> cmdWords = new ArrayList<>();
    JSON.readTree(cmd.group(1)).forEach(w -> cmdWords.add(w.asText()));
    List<String> composeWords = new ArrayList<>();
    composeCommand.forEach(w -> composeWords.add(w.asText()));
    assertThat(cmdWords).as("Dockerfile CMD vs compose command").isEqualTo(composeWords);

    // where the distribution is built, it has the layout the image relies on
    String version = pomVersion(ROOT.resolve("pom.xml"));
    Path tarball = cli.resolve("target/probestream-" + version + ".tar.gz");
    if (Files.exists(tarball)) {
      Process p =
          new ProcessBuilder("tar", "-tzf", tarball.toString()).redirectErrorStream(true).start();
      String listing = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("tar -tzf %s", tarball).isTrue();
      assertThat(p.exitValue()).as(listing).isEqualTo(0);
      String base = "probestream-" + version + "/";
      assertThat(listing.lines().toList())
          .contains(base + "bin/probestream", base + "lib/probestream.jar")
          .allMatch(e -> e.startsWith(base), "under " + base);
    }
  }

  /** The parent pom's own version (the first <version> after the parent's artifactId). */
  private static String pomVersion(Path pom) throws IOException {
    Matcher m =
        Pattern.compile("<artifactId>probestream-parent</artifactId>\\s*<version>([^<]+)</version>")
            .matcher(Files.readString(pom));
    assertThat(m.find()).as("version in %s", pom).isTrue();
    return m.group(1).trim();
  }

  // ------------------------------------------------------------------------------------ helpers

  private static void collectPanels(JsonNode panels, List<JsonNode> into) {
    for (JsonNode p : panels) {
      into.add(p);
      collectPanels(p.path("panels"), into);
    }
  }

  /** The PromQL inside a Grafana Prometheus variable query, or null when it has none. */
  static String templatePromql(String query) {
    String q = query.trim();
    Matcher lv =
        Pattern.compile("^label_values\\((.*),\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\s*\\)$").matcher(q);
    if (lv.matches()) {
      return lv.group(1).trim();
    }
    if (q.matches("^label_values\\(\\s*[a-zA-Z_][a-zA-Z0-9_]*\\s*\\)$")
        || q.startsWith("label_names(")
        || q.startsWith("metrics(")) {
      return null;
    }
    Matcher qr = Pattern.compile("^query_result\\((.*)\\)$").matcher(q);
    return qr.matches() ? qr.group(1).trim() : q;
  }

  private static String substitute(String expr, Map<String, String> variables, String where) {
    Matcher m = Pattern.compile("\\$\\{(\\w+)(?::[^}]*)?\\}|\\$(\\w+)").matcher(expr);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      String name = m.group(1) != null ? m.group(1) : m.group(2);
      String value = variables.get(name);
      assertThat(value).as("%s uses an undefined variable $%s: %s", where, name, expr).isNotNull();
      m.appendReplacement(out, Matcher.quoteReplacement(value));
    }
    m.appendTail(out);
    return out.toString();
  }

  private static void assertKnownNames(Map<String, String> exprs, Set<String> known, String file) {
    List<String> unknown = new ArrayList<>();
    for (Map.Entry<String, String> e : exprs.entrySet()) {
      Set<String> names = metricNames(e.getValue());
      assertThat(names)
          .as("%s %s names no metric: %s", file, e.getKey(), e.getValue())
          .isNotEmpty();
      for (String name : names) {
        if (!known.contains(name)) {
          unknown.add(name + " (" + e.getKey() + ")");
        }
      }
    }
    assertThat(unknown)
        .as("%s uses metrics the service does not expose; it exposes %s", file, known)
        .isEmpty();
  }

  private static final Set<String> KEYWORDS =
      Set.of(
          "and",
          "or",
          "unless",
          "bool",
          "offset",
          "inf",
          "nan",
          "by",
          "without",
          "on",
          "ignoring",
          "group_left",
          "group_right",
          "sum",
          "min",
          "max",
          "avg",
          "group",
          "stddev",
          "stdvar",
          "count",
          "count_values",
          "bottomk",
          "topk",
          "quantile",
          "limitk",
          "limit_ratio");

  private static final Set<String> LABEL_LIST_KEYWORDS =
      Set.of("by", "without", "on", "ignoring", "group_left", "group_right");

  /**
   * The metric names a PromQL expression selects: identifiers outside strings, label matchers,
   * ranges and label lists that are neither functions (followed by a parenthesis) nor keywords.
   */
  static Set<String> metricNames(String expr) {
    Set<String> names = new TreeSet<>();
    int i = 0;
    int n = expr.length();
    while (i < n) {
      char c = expr.charAt(i);
      if (c == '"' || c == '\'' || c == '`') {
        i = skipString(expr, i);
      } else if (c == '{') {
        String matchers = expr.substring(i, expr.indexOf('}', i) + 1);
        assertThat(matchers)
            .as("selector by __name__ cannot be checked: %s", expr)
            .doesNotContain("__name__");
        i = skipString(expr, i, '}');
      } else if (c == '[') {
        i = expr.indexOf(']', i) + 1;
      } else if (Character.isDigit(c)
          || (c == '.' && i + 1 < n && Character.isDigit(expr.charAt(i + 1)))) {
        while (i < n && (Character.isLetterOrDigit(expr.charAt(i)) || expr.charAt(i) == '.')) {
          i++;
        }
      } else if (Character.isLetter(c) || c == '_' || c == ':') {
        int start = i;
        while (i < n
            && (Character.isLetterOrDigit(expr.charAt(i))
                || expr.charAt(i) == '_'
                || expr.charAt(i) == ':')) {
          i++;
        }
        String word = expr.substring(start, i);
        int next = i;
        while (next < n && Character.isWhitespace(expr.charAt(next))) {
          next++;
        }
        boolean paren = next < n && expr.charAt(next) == '(';
        String lower = word.toLowerCase(java.util.Locale.ROOT);
        if (LABEL_LIST_KEYWORDS.contains(lower)) {
          if (paren) {
            i = expr.indexOf(')', next) + 1;
          }
        } else if (!paren && !KEYWORDS.contains(lower)) {
          names.add(word);
        }
      } else {
        i++;
      }
    }
    return names;
  }

  private static int skipString(String s, int start) {
    return skipString(s, start, s.charAt(start));
  }

  /** Index after the closing character, honouring backslash escapes and quoted strings inside. */
  private static int skipString(String s, int start, char close) {
    int i = start + 1;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '\\' && close != '`') {
        i += 2;
      } else if (c == close) {
        return i + 1;
      } else if (close == '}' && (c == '"' || c == '\'' || c == '`')) {
        i = skipString(s, i);
      } else {
        i++;
      }
    }
    return i;
  }

  private static Iterable<Map.Entry<String, JsonNode>> iterable(JsonNode object) {
    List<Map.Entry<String, JsonNode>> fields = new ArrayList<>();
    object.fields().forEachRemaining(fields::add);
    return fields;
  }

  private static String assertPromtool(List<String> args) throws Exception {
    return promtool(args, "");
  }

  private static String promtool(List<String> args, String context) throws Exception {
    List<String> cmd = new ArrayList<>();
    String env = System.getenv("PROMTOOL");
    cmd.add(env == null || env.isBlank() ? "promtool" : env);
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("%s timed out", cmd).isTrue();
    assertThat(p.exitValue()).as("%s:\n%s%s", String.join(" ", cmd), out, context).isZero();
    return out;
  }
}
