package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distribution {@code target/probestream-<version>.tar.gz} that {@code mvn package} builds
 * (src/assembly/dist.xml): unpacked with {@code tar} into a temporary directory, its launcher runs
 * from a working directory outside the repository and gives the bundled example's numbers.
 */
class DistributionIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Failsafe runs with the module directory as working directory. */
  private static final Path MODULE = Path.of("").toAbsolutePath();

  private static final Path EXAMPLE = MODULE.resolve("../../examples/mlp").normalize();

  @TempDir static Path tmp;

  private static String version;
  private static Path home;

  /** Exit code, stdout and stderr of one process. */
  record Run(int code, String out, String err) {}

  @BeforeAll
  static void unpack() throws Exception {
    version = System.getProperty("probestream.version");
    assertThat(version).as("failsafe's system property probestream.version").isNotBlank();
    Path tarball = MODULE.resolve("target/probestream-" + version + ".tar.gz");
    assertThat(tarball).as("built by mvn package").isRegularFile();
    Path into = Files.createDirectories(tmp.resolve("unpacked"));
    Run tar = run(into, Map.of(), "tar", "-xzf", tarball.toString(), "-C", into.toString());
    assertThat(tar.code()).as(tar.err()).isEqualTo(0);
    try (Stream<Path> top = Files.list(into)) {
      assertThat(top.map(p -> p.getFileName().toString()))
          .as("one top-level directory")
          .containsExactly("probestream-" + version);
    }
    home = into.resolve("probestream-" + version);
  }

  @Test
  void layoutIsTheLauncherTheJarsAndTheReadme() throws IOException {
    assertThat(home.resolve("bin/probestream")).isRegularFile().isExecutable();
    assertThat(home.resolve("README.md")).isRegularFile();
    TreeSet<String> jars = new TreeSet<>();
    try (Stream<Path> lib = Files.list(home.resolve("lib"))) {
      lib.forEach(p -> jars.add(p.getFileName().toString()));
    }
    assertThat(jars).allMatch(n -> n.endsWith(".jar"));
    assertThat(jars)
        .contains("probestream.jar", "picocli-4.7.7.jar")
        .anyMatch(n -> n.startsWith("onnxruntime-"))
        .anyMatch(n -> n.startsWith("kafka-clients-"))
        .anyMatch(n -> n.startsWith("probestream-service-"));
    // exactly the runtime class path the jar's manifest names: no jars left over from earlier
    // builds
    TreeSet<String> classPath = new TreeSet<>();
    try (JarFile jar = new JarFile(home.resolve("lib/probestream.jar").toFile())) {
      for (String e : jar.getManifest().getMainAttributes().getValue("Class-Path").split(" ")) {
        if (!e.isBlank()) {
          classPath.add(e.substring(e.lastIndexOf('/') + 1));
        }
      }
    }
    classPath.add("probestream.jar");
    assertThat(jars).isEqualTo(classPath);
    String launcher = Files.readString(home.resolve("bin/probestream"), StandardCharsets.UTF_8);
    assertThat(launcher).startsWith("#!/bin/sh\n").doesNotContain("\r");
  }

  @Test
  void versionReportsTheBuild() throws Exception {
    Path cwd = Files.createDirectories(tmp.resolve("cwd-version"));
    Run r = run(cwd, Map.of(), home.resolve("bin/probestream").toString(), "--version");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    String first = r.out().lines().findFirst().orElse("");
    assertThat(first)
        .matches(
            "probestream "
                + java.util.regex.Pattern.quote(version)
                + " \\(built \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\)");
    assertThat(r.out().lines().skip(1).findFirst().orElse("")).startsWith("Java ");

    // through a symbolic link elsewhere, as when linked into /usr/local/bin
    Path link = Files.createSymbolicLink(cwd.resolve("ps"), home.resolve("bin/probestream"));
    Run viaLink = run(cwd, Map.of(), link.toString(), "--version");
    assertThat(viaLink.code()).as(viaLink.err()).isEqualTo(0);
    assertThat(viaLink.out()).startsWith(first);

    // JAVA_OPTS reaches the JVM, and a JAVA_HOME without java is an error that says so
    Run opts =
        run(
            cwd,
            Map.of("JAVA_OPTS", "-XX:+NoSuchProbestreamOption"),
            home.resolve("bin/probestream").toString(),
            "--version");
    assertThat(opts.code()).isNotEqualTo(0);
    assertThat(opts.err()).contains("NoSuchProbestreamOption");
    Run noJava =
        run(
            cwd,
            Map.of("JAVA_HOME", tmp.resolve("no-jdk").toString()),
            home.resolve("bin/probestream").toString(),
            "--version");
    assertThat(noJava.code()).isEqualTo(1);
    assertThat(noJava.err()).startsWith("probestream: JAVA_HOME is ");
  }

  @Test
  void bundledExampleGivesTheNumpyReferenceFromOutsideTheRepository() throws Exception {
    Path cwd = Files.createDirectories(tmp.resolve("cwd-probe"));
    Run r =
        run(
            cwd,
            Map.of(),
            home.resolve("bin/probestream").toString(),
            "probe",
            "--model",
            EXAMPLE.resolve("model.onnx").toString(),
            "--data",
            EXAMPLE.resolve("reference-0.safetensors").toString(),
            "--data",
            EXAMPLE.resolve("reference-1.safetensors").toString(),
            "--layer",
            "h1=h1",
            "--layer",
            "h2=h2",
            "--logits",
            "logits",
            "--classifier-weight",
            "classifier.weight",
            "-q");
    assertThat(r.code()).as(r.err()).isEqualTo(0);
    // as CliTest.bundledExampleMatchesTheIndependentNumpyReference, through the launcher
    JsonNode expected = JSON.readTree(EXAMPLE.resolve("expected.json").toFile()).get("layers");
    List<JsonNode> results = new ArrayList<>();
    for (String line : r.out().split("\n")) {
      if (!line.isBlank()) {
        results.add(JSON.readTree(line));
      }
    }
    assertThat(results).hasSize(2);
    TreeSet<String> layers = new TreeSet<>();
    for (JsonNode result : results) {
      assertThat(result.get("probe").asText()).isEqualTo("neural_collapse");
      String layer = result.get("layer").asText();
      layers.add(layer);
      JsonNode want = expected.get(layer);
      JsonNode got = result.get("metrics");
      for (Iterator<String> it = want.fieldNames(); it.hasNext(); ) {
        String k = it.next();
        double v = want.get(k).asDouble();
        assertThat(got.has(k)).as(layer + "." + k).isTrue();
        assertThat(got.get(k).asDouble())
            .as(layer + "." + k)
            .isCloseTo(v, within(1e-6 * Math.max(1e-3, Math.abs(v))));
      }
    }
    assertThat(layers).containsExactly("h1", "h2");
  }

  /** Runs a command in {@code cwd} with the test's JVM as JAVA_HOME, plus {@code env}. */
  private static Run run(Path cwd, Map<String, String> env, String... command) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command).directory(cwd.toFile());
    pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
    pb.environment().remove("JAVA_OPTS");
    pb.environment().remove("PROBESTREAM_JAVA_OPTS");
    pb.environment().putAll(env);
    Path out = Files.createTempFile(tmp, "out", ".txt");
    Path err = Files.createTempFile(tmp, "err", ".txt");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("timed out: " + String.join(" ", command));
    }
    return new Run(
        p.exitValue(),
        Files.readString(out, StandardCharsets.UTF_8),
        Files.readString(err, StandardCharsets.UTF_8));
  }
}
