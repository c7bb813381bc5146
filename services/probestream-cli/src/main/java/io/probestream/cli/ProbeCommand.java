package io.probestream.cli;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.contracts.safetensors.SafetensorsException;
import io.probestream.contracts.safetensors.TensorInfo;
import io.probestream.inference.CheckpointEvaluator;
import io.probestream.inference.Device;
import io.probestream.inference.EvaluationSpec;
import io.probestream.inference.InferenceException;
import io.probestream.inference.ModelBytes;
import io.probestream.inference.Reduction;
import io.probestream.inference.ReferenceBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.probes.complexity.FeatureComplexity;
import io.probestream.probes.multiplicity.Candidate;
import io.probestream.probes.multiplicity.PredictiveMultiplicity;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ForkJoinPool;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code probestream probe}: one checkpoint and its reference data in, probe results out. */
@Command(
    name = "probe",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    sortOptions = false,
    description = {
      "Evaluates an ONNX model on reference data (safetensors files) and prints one probe result"
          + " per layer: JSON lines on stdout (the same objects the service publishes), or a table.",
      "Progress and logs go to stderr. Exit codes: 0 ok, 1 failure, 2 usage error."
    },
    footer = {
      "",
      "Example:",
      "  probestream probe --model examples/mlp/model.onnx \\",
      "    --data examples/mlp/reference-0.safetensors --data examples/mlp/reference-1.safetensors \\",
      "    --layer h1=h1 --layer h2=h2 --logits logits --classifier-weight classifier.weight"
    })
final class ProbeCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @CommandLine.Mixin ModelOptions tensors;

  @Option(
      names = "--model",
      required = true,
      paramLabel = "[RUN[@STEP]=]FILE",
      description =
          "ONNX model file; repeat for several checkpoints of one experiment (predictive"
              + " multiplicity compares them). RUN defaults to the file name, STEP to its position.")
  List<String> models;

  @Option(
      names = "--epsilon",
      defaultValue = "0.05",
      description =
          "predictive_multiplicity: the Rashomon set keeps checkpoints within epsilon nats of the"
              + " best reference loss (default: ${DEFAULT-VALUE}).")
  double epsilon;

  @Option(
      names = "--scope",
      defaultValue = "experiment",
      description =
          "predictive_multiplicity: experiment (one set across runs, default) or run (per run,"
              + " over its last --window checkpoints).")
  String scope;

  @Option(
      names = "--window",
      defaultValue = "5",
      description =
          "predictive_multiplicity with --scope run: checkpoints per run (default: ${DEFAULT-VALUE}).")
  int window;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE",
      description =
          "Reference data: safetensors with the input tensor and int64/int32 'labels'. Repeat for"
              + " several batches; their order is the reference-set order.")
  List<Path> data;

  @Option(
      names = "--labels",
      paramLabel = "TENSOR",
      defaultValue = "labels",
      description = "Labels tensor in the data files (default: ${DEFAULT-VALUE}).")
  String labels;

  @Option(
      names = "--probe",
      paramLabel = "PROBE",
      split = ",",
      defaultValue = NeuralCollapseProbe.NAME,
      description =
          "Probes to run: neural_collapse (default), feature_complexity, or all; comma-separated or"
              + " repeated.")
  List<String> probes;

  @Option(
      names = "--ifm-beta",
      defaultValue = "0.1",
      description =
          "feature_complexity: IFM merges while dmin ≤ beta·dmax (default: ${DEFAULT-VALUE}).")
  double ifmBeta;

  @Option(
      names = "--ifm-tau",
      defaultValue = "0.01",
      description =
          "feature_complexity: data-aware IFM's largest relative output change (default: ${DEFAULT-VALUE}).")
  double ifmTau;

  @Option(
      names = "--vinfo-k",
      defaultValue = "8",
      description = "feature_complexity: V-information directions (default: ${DEFAULT-VALUE}).")
  int vinfoK;

  @Option(
      names = "--vinfo-alpha",
      defaultValue = "0.001",
      description = "feature_complexity: V-information ridge strength (default: ${DEFAULT-VALUE}).")
  double vinfoAlpha;

  @Option(
      names = "--max-width",
      defaultValue = "4096",
      description =
          "feature_complexity: widest layer given a d×d state for effective_rank and vinfo"
              + " (default: ${DEFAULT-VALUE}).")
  int maxWidth;

  @Option(
      names = "--format",
      paramLabel = "FORMAT",
      defaultValue = "jsonl",
      description = "Output: jsonl (default) or table.")
  String format;

  @Option(
      names = "--experiment",
      defaultValue = "offline",
      description = "Experiment id in results (default: ${DEFAULT-VALUE}).")
  String experiment;

  @Option(names = "--run", description = "Run id in results (default: the model file's name).")
  String run;

  @Option(
      names = "--step",
      defaultValue = "0",
      description = "Training step in results (default: ${DEFAULT-VALUE}).")
  long step;

  @Option(
      names = "--reduction",
      defaultValue = "gap",
      description = "How rank>2 features become vectors: gap (default) or flatten.")
  String reduction;

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description = "auto, cpu (default) or cuda[:N].")
  String device;

  @Option(
      names = "--batch-size",
      defaultValue = "256",
      description = "Samples per inference run (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--feature-cache-mb",
      defaultValue = "512",
      description =
          "Memory for features kept between the two passes; above it inference runs twice (default: ${DEFAULT-VALUE}).")
  long featureCacheMb;

  @Option(
      names = {"-q", "--quiet"},
      description = "No progress on stderr.")
  boolean quiet;

  @Override
  public Integer call() throws IOException {
    Set<String> chosen = probes();
    FeatureComplexity.Settings settings;
    try {
      settings =
          new FeatureComplexity.Settings(
              ifmBeta,
              ifmTau,
              vinfoK,
              vinfoAlpha,
              maxWidth,
              FeatureComplexity.Settings.DEFAULT_IFM_DATA_MAX_UNITS);
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    if (!format.equals("jsonl") && !format.equals("table")) {
      throw new Main.UsageException("--format " + format + ": expected jsonl or table");
    }
    boolean pm = chosen.contains(PredictiveMultiplicity.NAME);
    boolean perLayer = chosen.size() > (pm ? 1 : 0);
    boolean auto = perLayer ? tensors.auto() : tensors.layersMode != null;
    if (!scope.equals("experiment") && !scope.equals("run")) {
      throw new Main.UsageException("--scope " + scope + ": expected experiment or run");
    }
    if (window < 1 || !(epsilon >= 0) || !Double.isFinite(epsilon)) {
      throw new Main.UsageException(
          "--window must be at least 1 and --epsilon a finite number ≥ 0");
    }
    Device dev;
    Reduction red;
    try {
      dev = Device.parse(device);
      red = Reduction.parse(reduction);
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
    PrintWriter err = spec.commandLine().getErr();
    List<Checkpoint> checkpoints = checkpoints();
    CheckpointEvaluator evaluator =
        new CheckpointEvaluator(
            new CheckpointEvaluator.Config(
                batchSize, featureCacheMb << 20, dev, Runtime.getRuntime().availableProcessors()));
    Map<String, EvaluationSpec.IfmNames> named = new LinkedHashMap<>();
    tensors
        .ifmWeights()
        .forEach((l, w) -> named.put(l, new EvaluationSpec.IfmNames(w[0], w[1], w[2])));

    List<ReferenceBatch> batches = null;
    String referenceSha = null;
    String inputOfData = null;
    Instant now = Instant.now();
    List<ProbeResult> results = new ArrayList<>();
    List<Candidate> candidates = new ArrayList<>();
    long started = System.nanoTime();
    String lastDevice = "cpu";
    for (Checkpoint cp : checkpoints) {
      byte[] modelBytes = read(cp.file(), "--model");
      String modelSha = ProbeResult.sha256Hex(modelBytes);
      String inputName = tensors.input(modelBytes, cp.file());
      if (batches == null || !inputName.equals(inputOfData)) {
        batches = new ArrayList<>();
        MessageDigest reference = sha256();
        for (Path p : data) {
          byte[] bytes = read(p, "--data");
          reference.update(bytes);
          batches.add(batch(p, bytes, inputName));
        }
        referenceSha = HexFormat.of().formatHex(reference.digest());
        inputOfData = inputName;
      }
      Map<String, String> layers = perLayer ? tensors.layers : Map.of();
      if (auto) {
        try {
          layers =
              CheckpointEvaluator.autoLayers(modelBytes, tensors.logits, tensors.classifierWeight);
        } catch (InferenceException e) {
          throw new Main.Failure(cp.file() + ": " + e.getMessage(), e);
        }
        err.println("probestream: layers (auto): " + String.join(", ", layers.keySet()));
      }
      EvaluationSpec evalSpec;
      try {
        evalSpec =
            new EvaluationSpec(
                inputName,
                layers,
                tensors.logits,
                tensors.classifierWeight,
                tensors.classes,
                red,
                chosen,
                settings,
                named);
      } catch (IllegalArgumentException e) {
        throw new Main.UsageException(e.getMessage());
      }
      long start = System.nanoTime();
      CheckpointEvaluator.Evaluation evaluation;
      try {
        // External data (the ONNX way past 2 GiB) is read from beside the model file.
        evaluation =
            evaluator.evaluate(
                new ModelBytes(modelBytes, cp.file().toAbsolutePath().getParent()),
                evalSpec,
                batches,
                progress(err));
      } catch (InferenceException e) {
        throw new Main.Failure(
            (checkpoints.size() > 1 ? cp.file() + ": " : "") + e.getMessage(), e);
      }
      long latency = (System.nanoTime() - start) / 1_000_000;
      lastDevice = evaluation.device();
      if (!quiet) {
        err.printf(
            "probestream: %s%d samples, %d layers, %s, %d ms%s%n",
            checkpoints.size() > 1 ? cp.run() + "@" + cp.step() + ": " : "",
            evaluation.samples(),
            evalSpec.layers().size(),
            evaluation.device(),
            latency,
            evaluation.cachedPass2() ? "" : " (pass 2 re-ran inference: feature cache too small)");
      }
      for (Map.Entry<String, Map<String, ProbeOutput>> p : evaluation.byProbe().entrySet()) {
        for (Map.Entry<String, ProbeOutput> e : p.getValue().entrySet()) {
          ProbeOutput o = e.getValue();
          results.add(
              ProbeResult.of(
                  experiment,
                  cp.run(),
                  cp.step(),
                  modelSha,
                  referenceSha,
                  p.getKey(),
                  e.getKey(),
                  "reference",
                  o.metrics(),
                  o.params(),
                  o.joinedNotes(),
                  evaluation.device(),
                  now,
                  latency));
        }
      }
      if (pm) {
        CheckpointEvaluator.Logits l = evaluation.logits();
        try {
          candidates.add(
              Candidate.ofLogits(
                  cp.run(), cp.step(), modelSha, l.values(), l.columns(), l.labels()));
        } catch (IllegalArgumentException e) {
          throw new Main.Failure(cp.file() + ": " + e.getMessage(), e);
        }
      }
    }
    if (pm) {
      results.addAll(
          multiplicity(
              candidates,
              checkpoints.get(checkpoints.size() - 1),
              referenceSha,
              lastDevice,
              now,
              (System.nanoTime() - started) / 1_000_000));
    }
    PrintWriter out = spec.commandLine().getOut();
    if (format.equals("jsonl")) {
      for (ProbeResult r : results) {
        out.println(r.toJson());
      }
    } else {
      out.print(ResultTable.render(results));
    }
    out.flush();
    return 0;
  }

  /** One {@code --model}: its file, run and step. */
  record Checkpoint(Path file, String run, long step) {}

  /** {@code --model [RUN[@STEP]=]FILE}, each; a single model takes {@code --run}/{@code --step}. */
  private List<Checkpoint> checkpoints() {
    List<Checkpoint> out = new ArrayList<>();
    for (int i = 0; i < models.size(); i++) {
      String arg = models.get(i);
      int eq = arg.indexOf('=');
      String file = eq < 0 ? arg : arg.substring(eq + 1);
      String name = eq < 0 ? null : arg.substring(0, eq);
      String r = null;
      Long st = null;
      if (name != null) {
        int at = name.lastIndexOf('@');
        r = at < 0 ? name : name.substring(0, at);
        if (at >= 0) {
          try {
            st = Long.parseLong(name.substring(at + 1));
          } catch (NumberFormatException e) {
            throw new Main.UsageException(
                "--model " + arg + ": STEP in RUN@STEP=FILE must be an integer");
          }
        }
        if (r.isBlank()) {
          throw new Main.UsageException("--model " + arg + ": RUN in RUN[@STEP]=FILE is empty");
        }
      }
      Path path = Path.of(file);
      if (r == null) {
        r = models.size() == 1 && run != null ? run : stripExtension(path.getFileName().toString());
      }
      if (st == null) {
        st = models.size() == 1 ? step : i;
      }
      out.add(new Checkpoint(path, r, st));
    }
    return out;
  }

  /**
   * PROBES.md §3 over the models in the order given: one result for the experiment, or with {@code
   * --scope run} one per run over its last {@code --window} checkpoints.
   */
  private List<ProbeResult> multiplicity(
      List<Candidate> candidates,
      Checkpoint last,
      String referenceSha,
      String deviceName,
      Instant now,
      long latency) {
    Map<String, List<Candidate>> groups = new LinkedHashMap<>();
    if (scope.equals("run")) {
      for (Candidate c : candidates) {
        groups.computeIfAbsent(c.run(), r -> new ArrayList<>()).add(c);
      }
    } else {
      groups.put("", candidates);
    }
    Map<String, Object> params = new LinkedHashMap<>();
    params.put("epsilon", epsilon);
    params.put("scope", scope);
    if (scope.equals("run")) {
      params.put("window", window);
    }
    List<ProbeResult> out = new ArrayList<>();
    ForkJoinPool pool = new ForkJoinPool(Runtime.getRuntime().availableProcessors());
    try {
      for (Map.Entry<String, List<Candidate>> g : groups.entrySet()) {
        List<Candidate> group = g.getValue();
        // Offline, the order given is the canonical order (PROBES.md §3.1).
        if (scope.equals("run")) {
          group = group.subList(Math.max(0, group.size() - window), group.size());
        }
        long nonfinite = group.stream().filter(c -> !c.finite()).count();
        PredictiveMultiplicity.Result r =
            PredictiveMultiplicity.compute(group, epsilon, group.size(), nonfinite, pool);
        List<ProbeResult.Member> members = new ArrayList<>();
        r.members()
            .forEach(m -> members.add(new ProbeResult.Member(m.run(), m.step(), m.modelSha256())));
        Candidate trigger = group.get(group.size() - 1);
        String run = scope.equals("run") ? g.getKey() : null;
        long at = scope.equals("run") ? trigger.step() : last.step();
        String notes = r.notes().isEmpty() ? null : String.join("; ", r.notes());
        ProbeResult result =
            ProbeResult.ofMembers(
                experiment,
                run,
                at,
                trigger.modelSha256(),
                referenceSha,
                PredictiveMultiplicity.NAME,
                "reference",
                r.metrics(),
                params,
                notes,
                deviceName,
                now,
                latency,
                members,
                r.baseline());
        out.add(result);
      }
    } finally {
      pool.shutdown();
    }
    return out;
  }

  /** {@code --probe}, with {@code all} expanded; unknown names are a usage error. */
  private Set<String> probes() {
    Set<String> out = new LinkedHashSet<>();
    for (String p : probes) {
      String name = p.trim();
      if (name.equals("all")) {
        out.addAll(EvaluationSpec.KNOWN_PROBES);
      } else if (EvaluationSpec.KNOWN_PROBES.contains(name)) {
        out.add(name);
      } else {
        throw new Main.UsageException(
            "--probe "
                + name
                + ": unknown probe; choose from "
                + EvaluationSpec.KNOWN_PROBES
                + " or all");
      }
    }
    return out;
  }

  private ReferenceBatch batch(Path file, byte[] bytes, String inputName) {
    try {
      Safetensors st = Safetensors.parse(bytes);
      TensorInfo x = st.tensor(inputName);
      TensorInfo y = st.tensor(labels);
      if (x.rank() < 1) {
        throw new SafetensorsException(
            "tensor '" + inputName + "' is a scalar; a batch needs a first dimension");
      }
      if (y.rank() != 1 || y.dim(0) != x.dim(0)) {
        throw new SafetensorsException(
            "tensor '"
                + labels
                + "' has shape "
                + java.util.Arrays.toString(y.shape())
                + "; expected ["
                + x.dim(0)
                + "], one label per sample of '"
                + inputName
                + "'");
      }
      return new ReferenceBatch(st.floats(inputName), x.shape(), st.ints(labels));
    } catch (SafetensorsException | InferenceException e) {
      throw new Main.Failure(file + ": " + e.getMessage(), e);
    }
  }

  private CheckpointEvaluator.Progress progress(PrintWriter err) {
    if (quiet) {
      return CheckpointEvaluator.Progress.NONE;
    }
    long[] last = {System.nanoTime()};
    return (phase, done, total) -> {
      long now = System.nanoTime();
      if (now - last[0] > 1_000_000_000L) {
        last[0] = now;
        err.printf(
            "probestream: %s %d/%d %s%n",
            phase, done, total, phase.startsWith("pass") ? "samples" : "layers");
        err.flush();
      }
    };
  }

  private byte[] read(Path p, String option) throws IOException {
    try {
      return Files.readAllBytes(p);
    } catch (NoSuchFileException e) {
      throw new Main.UsageException(option + " " + p + ": no such file");
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String stripExtension(String name) {
    int dot = name.lastIndexOf('.');
    return dot > 0 ? name.substring(0, dot) : name;
  }
}
