package io.probestream.trainer;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.safetensors.Safetensors;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A simulated training job: several seeds of one experiment trained side by side on one thread, in
 * rounds of {@code checkpointEvery} steps; after each run's share of a round it exports the run's
 * model to ONNX and publishes it as an external job would: the reference set once, first, then per
 * checkpoint the model blob and its manifest (layers h1 and h2, logits, classifier.weight, training
 * metrics). {@link #run} returns when every run has taken {@code steps} steps and throws {@link
 * InterruptedException} when its thread is interrupted. Not thread-safe: one thread runs it.
 */
public final class SimulatedTrainer {
  /** Rows per reference batch. */
  public static final int REFERENCE_BATCH_ROWS = 250;

  private final Options options;

  public SimulatedTrainer(Options options) {
    this.options = options;
  }

  /**
   * What to train and how fast.
   *
   * @param experiment experiment id, never blank
   * @param seeds runs {@code seed-1} … {@code seed-<seeds>}, 1..64
   * @param steps optimiser steps per run, at least 1
   * @param checkpointEvery steps between checkpoints, 1..steps; the last step is always a
   *     checkpoint
   * @param stepsPerSecond pace of each run in optimiser steps per second; 0 trains without pauses
   * @param task the data, the same for every run
   * @param hidden hidden-layer widths
   * @param batchSize mini-batch rows
   * @param learningRate Adam's step size
   * @param weightDecay decoupled weight decay
   */
  public record Options(
      String experiment,
      int seeds,
      long steps,
      long checkpointEvery,
      double stepsPerSecond,
      SyntheticTask task,
      int[] hidden,
      int batchSize,
      double learningRate,
      double weightDecay) {
    public Options {
      if (experiment == null || experiment.isBlank()) {
        throw new IllegalArgumentException("experiment must not be blank");
      }
      if (seeds < 1 || seeds > 64) {
        throw new IllegalArgumentException("seeds = " + seeds + ": must be 1..64");
      }
      if (steps < 1) {
        throw new IllegalArgumentException("steps = " + steps + ": must be at least 1");
      }
      if (checkpointEvery < 1 || checkpointEvery > steps) {
        throw new IllegalArgumentException(
            "checkpoint-every = " + checkpointEvery + ": must be 1..steps (" + steps + ")");
      }
      if (!(stepsPerSecond >= 0) || Double.isInfinite(stepsPerSecond)) {
        throw new IllegalArgumentException(
            "steps per second = " + stepsPerSecond + ": must be finite and ≥ 0 (0: no pauses)");
      }
      hidden = hidden.clone();
    }

    /**
     * The standard recipe on {@link SyntheticTask#standard()}: hidden widths 64 and 32, batches of
     * 32, Adam at 3e-3 with decoupled weight decay 0.05.
     */
    public static Options standard(
        String experiment, int seeds, long steps, long checkpointEvery, double stepsPerSecond) {
      return new Options(
          experiment,
          seeds,
          steps,
          checkpointEvery,
          stepsPerSecond,
          SyntheticTask.standard(),
          new int[] {64, 32},
          32,
          3e-3,
          0.05);
    }

    /** Checkpoints per run. */
    public long checkpointsPerRun() {
      return (steps + checkpointEvery - 1) / checkpointEvery;
    }

    @Override
    public int[] hidden() {
      return hidden.clone();
    }
  }

  /** Where the job's records go: in production a Kafka publisher, in tests a list. */
  public interface Sink {
    /** Sends the experiment's reference set, batches in index order, the last final. */
    void reference(String experiment, List<byte[]> batches) throws Exception;

    /** Sends the model bytes; returns the reference a manifest names them by. */
    CheckpointManifest.Blob blob(String experiment, byte[] model) throws Exception;

    /** Sends a checkpoint manifest (after its blob). */
    void checkpoint(CheckpointManifest manifest) throws Exception;
  }

  /**
   * A published checkpoint, as the progress report sees it.
   *
   * @param run run id
   * @param step optimiser steps taken
   * @param train loss and accuracy on the whole training set
   * @param reference loss and accuracy on the reference set
   * @param model the ONNX bytes published
   * @param last whether it is the job's last checkpoint
   */
  public record Checkpoint(
      String run,
      long step,
      ReluMlp.Evaluation train,
      ReluMlp.Evaluation reference,
      byte[] model,
      boolean last) {}

  /** Called on the trainer's thread after each checkpoint is published. */
  public interface Listener {
    void published(Checkpoint checkpoint);
  }

  /** The runs, seeded 1..seeds (each seed's weights and batch order come from its number). */
  public List<TrainingRun> runs() {
    Dataset train = options.task().train();
    List<TrainingRun> runs = new ArrayList<>();
    for (int s = 1; s <= options.seeds(); s++) {
      runs.add(
          new TrainingRun(
              "seed-" + s,
              s,
              train,
              options.hidden(),
              options.batchSize(),
              options.learningRate(),
              options.weightDecay()));
    }
    return runs;
  }

  /** Trains every run to the end, publishing as it goes. */
  public void run(Sink sink, Listener listener) throws Exception {
    String experiment = options.experiment();
    Dataset train = options.task().train();
    Dataset reference = options.task().reference();
    sink.reference(experiment, referenceBatches(reference, REFERENCE_BATCH_ROWS));
    List<TrainingRun> runs = runs();
    long started = System.nanoTime();
    long done = 0;
    while (done < options.steps()) {
      long chunk = Math.min(options.checkpointEvery(), options.steps() - done);
      for (TrainingRun run : runs) {
        if (Thread.interrupted()) {
          throw new InterruptedException("training interrupted at step " + done);
        }
        run.train(chunk);
      }
      done += chunk;
      pace(started, done);
      for (TrainingRun run : runs) {
        ReluMlp.Evaluation onTrain = run.model().evaluate(train);
        ReluMlp.Evaluation onReference = run.model().evaluate(reference);
        byte[] model = OnnxExport.toOnnx(run.model());
        CheckpointManifest.Blob blob = sink.blob(experiment, model);
        sink.checkpoint(manifest(experiment, run, blob, onTrain, onReference));
        boolean last = done == options.steps() && run == runs.get(runs.size() - 1);
        listener.published(
            new Checkpoint(run.name(), run.step(), onTrain, onReference, model, last));
      }
    }
  }

  // Sleeps so that `done` steps take at least done / stepsPerSecond seconds from the start.
  private void pace(long started, long done) throws InterruptedException {
    if (options.stepsPerSecond() == 0) {
      return;
    }
    long due = started + (long) (done / options.stepsPerSecond() * 1e9);
    long wait = due - System.nanoTime();
    if (wait > 0) {
      Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    }
  }

  private CheckpointManifest manifest(
      String experiment,
      TrainingRun run,
      CheckpointManifest.Blob blob,
      ReluMlp.Evaluation onTrain,
      ReluMlp.Evaluation onReference) {
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("loss", onTrain.loss());
    metrics.put("accuracy", onTrain.accuracy());
    metrics.put("val_loss", onReference.loss());
    metrics.put("val_accuracy", onReference.accuracy());
    Map<String, String> layers = new LinkedHashMap<>();
    for (int l = 1; l <= options.hidden().length; l++) {
      layers.put("h" + l, "h" + l);
    }
    return new CheckpointManifest(
        experiment,
        run.name(),
        run.step(),
        run.epoch(),
        metrics,
        blob,
        "input",
        layers,
        "logits",
        "classifier.weight",
        options.task().classes());
  }

  /**
   * The dataset as safetensors batches of {@code rows} rows: {@code input} F32, {@code labels} I64.
   */
  public static List<byte[]> referenceBatches(Dataset data, int rows) {
    List<byte[]> batches = new ArrayList<>();
    for (int from = 0; from < data.rows(); from += rows) {
      Dataset part = data.slice(from, Math.min(data.rows(), from + rows));
      Map<String, Object> tensors = new LinkedHashMap<>();
      tensors.put("input", part.inputs());
      tensors.put("labels", part.labels());
      batches.add(
          Safetensors.write(
              tensors,
              Map.of(
                  "input",
                  new long[] {part.rows(), part.dims()},
                  "labels",
                  new long[] {part.rows()})));
    }
    return batches;
  }
}
