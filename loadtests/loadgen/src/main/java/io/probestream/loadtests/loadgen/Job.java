package io.probestream.loadtests.loadgen;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the load generator publishes, and where. Built from {@code --key value} arguments by {@link
 * #parse(String[])}; every field has a default except the bootstrap servers.
 *
 * @param bootstrapServers the Kafka cluster the service reads
 * @param topicPrefix the service's topic prefix
 * @param experiment the experiment's id (default: {@code loadgen-<epoch ms>}, new for every run)
 * @param widths MLP widths d, h1, …, K; each hidden layer is probed
 * @param referenceSamples N, samples in the reference set
 * @param referenceBatch samples per reference batch record
 * @param runs R, runs of the experiment, published concurrently
 * @param checkpoints C, measured checkpoints per run (after the warm-up checkpoint, step 0)
 * @param checkpointIntervalMs time between the checkpoints of one run
 * @param liveBatches live {@code train} batches per run
 * @param liveRate live batches per second per run; 0 sends the next as soon as the last is acked
 * @param liveSenders threads per run sending live batches, each waiting for its own acks (more than
 *     one keeps batches in flight, so unpaced sending outruns the service)
 * @param batchSize samples per live batch
 * @param resultsPerCheckpoint results (with the checkpoint's run) that complete a checkpoint;
 *     default: one per probed layer (the service with {@code probes.enabled=neural_collapse})
 * @param distinctModels a new model (new weights, new blob) for every checkpoint, as a training job
 *     does; false sends one blob that every manifest names
 * @param seed the seed of the data and the weights
 * @param out file prefix of the .hgrm percentile files
 * @param timeoutS how long to wait for results once everything is sent
 */
public record Job(
    String bootstrapServers,
    String topicPrefix,
    String experiment,
    int[] widths,
    int referenceSamples,
    int referenceBatch,
    int runs,
    int checkpoints,
    long checkpointIntervalMs,
    int liveBatches,
    double liveRate,
    int liveSenders,
    int batchSize,
    int resultsPerCheckpoint,
    boolean distinctModels,
    long seed,
    Path out,
    int timeoutS) {

  static final String USAGE =
      """
      usage: loadgen.sh --bootstrap-servers HOST:PORT [--topic-prefix probestream.]
                        [--experiment ID] [--widths 784,512,256,10] [--reference-samples 10000]
                        [--reference-batch 1000] [--runs 1] [--checkpoints 10]
                        [--checkpoint-interval-ms 2000] [--live-batches 0] [--live-rate 0]
                        [--live-senders 4] [--batch-size 256] [--results-per-checkpoint LAYERS]
                        [--distinct-models true] [--seed 1] [--out loadgen] [--timeout-s 300]
      """;

  public Job {
    if (widths.length < 3) {
      throw new IllegalArgumentException(
          "--widths needs an input, at least one hidden layer and the classes, e.g. 784,512,10");
    }
    if (referenceSamples < 1 || referenceBatch < 1 || runs < 1 || checkpoints < 0) {
      throw new IllegalArgumentException(
          "--reference-samples, --reference-batch and --runs must be ≥ 1, --checkpoints ≥ 0");
    }
    if (liveBatches < 0
        || liveRate < 0
        || liveSenders < 1
        || batchSize < 1
        || resultsPerCheckpoint < 1) {
      throw new IllegalArgumentException(
          "--live-batches and --live-rate must be ≥ 0, --live-senders, --batch-size and"
              + " --results-per-checkpoint ≥ 1");
    }
    widths = widths.clone();
  }

  @Override
  public int[] widths() {
    return widths.clone();
  }

  /** Probed (hidden) layers: h1 … h(L-1). */
  public List<String> layers() {
    List<String> l = new ArrayList<>();
    for (int i = 1; i < widths.length - 1; i++) {
      l.add("h" + i);
    }
    return l;
  }

  public int classes() {
    return widths[widths.length - 1];
  }

  /** Parses {@code --key value} pairs; unknown keys are an error. */
  public static Job parse(String[] args) {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String k = args[i];
      if (!k.startsWith("--") || i + 1 >= args.length) {
        throw new IllegalArgumentException("expected --key value, got '" + k + "'\n" + USAGE);
      }
      a.put(k.substring(2), args[++i]);
    }
    String bootstrap = a.remove("bootstrap-servers");
    if (bootstrap == null) {
      throw new IllegalArgumentException("--bootstrap-servers is required\n" + USAGE);
    }
    int[] widths =
        Arrays.stream(a.getOrDefault("widths", "784,512,256,10").split(","))
            .mapToInt(s -> Integer.parseInt(s.trim()))
            .toArray();
    a.remove("widths");
    String experiment = a.remove("experiment");
    if (experiment == null) {
      experiment = "loadgen-" + System.currentTimeMillis();
    }
    String layersDefault = Integer.toString(widths.length - 2);
    Job job =
        new Job(
            bootstrap,
            take(a, "topic-prefix", "probestream."),
            experiment,
            widths,
            Integer.parseInt(take(a, "reference-samples", "10000")),
            Integer.parseInt(take(a, "reference-batch", "1000")),
            Integer.parseInt(take(a, "runs", "1")),
            Integer.parseInt(take(a, "checkpoints", "10")),
            Long.parseLong(take(a, "checkpoint-interval-ms", "2000")),
            Integer.parseInt(take(a, "live-batches", "0")),
            Double.parseDouble(take(a, "live-rate", "0")),
            Integer.parseInt(take(a, "live-senders", "4")),
            Integer.parseInt(take(a, "batch-size", "256")),
            Integer.parseInt(take(a, "results-per-checkpoint", layersDefault)),
            Boolean.parseBoolean(take(a, "distinct-models", "true")),
            Long.parseLong(take(a, "seed", "1")),
            Path.of(take(a, "out", "loadgen")),
            Integer.parseInt(take(a, "timeout-s", "300")));
    if (!a.isEmpty()) {
      throw new IllegalArgumentException("unknown option(s) " + a.keySet() + "\n" + USAGE);
    }
    return job;
  }

  private static String take(Map<String, String> a, String key, String dflt) {
    String v = a.remove(key);
    return v == null ? dflt : v;
  }
}
