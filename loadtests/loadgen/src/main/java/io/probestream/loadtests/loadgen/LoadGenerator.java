package io.probestream.loadtests.loadgen;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.topics.Headers;
import io.probestream.contracts.topics.Topics;
import io.probestream.service.publish.Publisher;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * Publishes a {@link Job} to a running Probestream the way training jobs would (blob chunks, the
 * reference set, then per run a warm-up checkpoint, C checkpoints at an interval and live {@code
 * train} batches at a rate, all runs concurrently), reads the results back with a read_committed
 * consumer and records with HdrHistogram, in milliseconds of Kafka CreateTime:
 *
 * <ul>
 *   <li>each result of a measured checkpoint − its manifest's CreateTime ({@code result});
 *   <li>the last of them − the manifest's CreateTime ({@code completion});
 *   <li>per run, the k-th live batch completed (all its layers' results) − the send time of the
 *       k-th live batch sent ({@code live}; results carry no batch id, so completions are paired
 *       with sends in order);
 * </ul>
 *
 * and the live throughput: completed live batches (and their samples) per second, from the first
 * live batch sent to the last one completed. The warm-up checkpoint (step 0) is not counted.
 */
public final class LoadGenerator {
  private final Job job;
  private final PrintStream log;

  public LoadGenerator(Job job, PrintStream log) {
    this.job = job;
    this.log = log;
  }

  public static void main(String[] args) throws Exception {
    Job job;
    try {
      job = Job.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("loadgen: " + e.getMessage());
      System.exit(2);
      return;
    }
    Summary s = new LoadGenerator(job, System.err).run();
    s.print(System.out);
    s.writeHgrm(job.out());
    System.exit(s.complete() ? 0 : 1);
  }

  /** What one job measured. */
  public record Summary(
      Job job,
      Histogram result,
      Histogram completion,
      Histogram live,
      long liveBatchesBack,
      double liveWindowS,
      boolean complete) {

    public double liveBatchesPerS() {
      return liveWindowS > 0 ? liveBatchesBack / liveWindowS : 0;
    }

    public double liveSamplesPerS() {
      return liveBatchesPerS() * job.batchSize();
    }

    public void print(PrintStream out) {
      out.printf(
          Locale.ROOT,
          "experiment %s: MLP %s, N=%d, R=%d, C=%d every %d ms, live %d × %d samples per run%s%n",
          job.experiment(),
          widthsText(job.widths()),
          job.referenceSamples(),
          job.runs(),
          job.checkpoints(),
          job.checkpointIntervalMs(),
          job.liveBatches(),
          job.batchSize(),
          job.liveRate() > 0 ? " at " + job.liveRate() + "/s" : " (unpaced)");
      out.printf(
          Locale.ROOT,
          "%-42s %7s %8s %8s %8s %8s%n",
          "latency (ms, Kafka CreateTime)",
          "count",
          "p50",
          "p90",
          "p99",
          "max");
      row(out, "manifest -> each result", result);
      row(out, "manifest -> last result (completion)", completion);
      row(out, "live batch sent -> its results", live);
      out.printf(
          Locale.ROOT,
          "live throughput: %d batches back in %.2f s = %.1f batches/s, %.0f samples/s%n",
          liveBatchesBack,
          liveWindowS,
          liveBatchesPerS(),
          liveSamplesPerS());
      if (!complete) {
        out.println("INCOMPLETE: not every expected result arrived before --timeout-s");
      }
    }

    private static void row(PrintStream out, String name, Histogram h) {
      if (h.getTotalCount() == 0) {
        out.printf(Locale.ROOT, "%-42s %7d %8s %8s %8s %8s%n", name, 0, "-", "-", "-", "-");
        return;
      }
      out.printf(
          Locale.ROOT,
          "%-42s %7d %8d %8d %8d %8d%n",
          name,
          h.getTotalCount(),
          h.getValueAtPercentile(50),
          h.getValueAtPercentile(90),
          h.getValueAtPercentile(99),
          h.getMaxValue());
    }

    /**
     * {@code <out>-completion.hgrm}, {@code -result.hgrm} and {@code -live.hgrm} (values in ms).
     */
    public List<Path> writeHgrm(Path out) throws IOException {
      List<Path> files = new ArrayList<>();
      Map<String, Histogram> all = new LinkedHashMap<>();
      all.put("completion", completion);
      all.put("result", result);
      all.put("live", live);
      for (Map.Entry<String, Histogram> e : all.entrySet()) {
        if (e.getValue().getTotalCount() == 0) {
          continue;
        }
        Path p = Path.of(out + "-" + e.getKey() + ".hgrm");
        if (p.getParent() != null) {
          Files.createDirectories(p.getParent());
        }
        try (PrintStream ps = new PrintStream(Files.newOutputStream(p), true, "UTF-8")) {
          e.getValue().outputPercentileDistribution(ps, 1.0);
        }
        files.add(p);
      }
      return files;
    }
  }

  static String widthsText(int[] w) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < w.length; i++) {
      b.append(i == 0 ? "" : "-").append(w[i]);
    }
    return b.toString();
  }

  private static Histogram histogram() {
    return new Histogram(3_600_000L, 3); // ms, up to an hour, 3 significant digits
  }

  /** Publishes the job and waits for its results (at most {@code timeoutS} after the last send). */
  public Summary run() throws Exception {
    Topics topics = new Topics(job.topicPrefix());
    Workload work = new Workload(job.widths(), job.seed());
    List<String> runs = new ArrayList<>();
    for (int r = 0; r < job.runs(); r++) {
      runs.add("run-" + r);
    }
    log.printf(Locale.ROOT, "loadgen: experiment %s, building data and models%n", job.experiment());
    List<byte[]> reference = new ArrayList<>();
    for (int from = 0; from < job.referenceSamples(); from += job.referenceBatch()) {
      reference.add(
          work.batch(Math.min(job.referenceBatch(), job.referenceSamples() - from), from));
    }
    // a few distinct live batches, sent in turn (their content does not change the work)
    List<byte[]> live = new ArrayList<>();
    for (int i = 0; i < Math.min(8, job.liveBatches()); i++) {
      live.add(work.batch(job.batchSize(), 1_000_000_000L + (long) i * job.batchSize()));
    }
    Map<String, byte[]> models = new LinkedHashMap<>(); // run|step → model, or "" → the one model
    if (job.distinctModels()) {
      for (int r = 0; r < runs.size(); r++) {
        for (int s = 0; s <= job.checkpoints(); s++) {
          models.put(ResultWatcher.key(runs.get(r), s), work.model(r * 1_000_003L + s));
        }
      }
    } else {
      models.put("", work.model(0));
    }
    long maxRecord = Math.max(reference.get(0).length, live.isEmpty() ? 0 : live.get(0).length);
    Map<String, List<Long>> liveSent = new LinkedHashMap<>();
    runs.forEach(r -> liveSent.put(r, new ArrayList<>()));
    Histogram result = histogram();
    Histogram completion = histogram();
    Histogram liveLatency = histogram();
    try (ResultWatcher watcher =
            new ResultWatcher(
                job.bootstrapServers(), topics, job.experiment(), job.layers().size());
        Publisher pub =
            new Publisher(
                job.bootstrapServers(), topics, maxRecord + (4 << 20), "probestream-loadgen")) {
      Map<String, CheckpointManifest.Blob> oneBlob = new LinkedHashMap<>();
      if (!job.distinctModels()) {
        oneBlob.put("", pub.blob(job.experiment(), models.get(""), Publisher.DEFAULT_CHUNK_BYTES));
      }
      pub.reference(job.experiment(), reference);
      log.printf(
          Locale.ROOT,
          "loadgen: reference set sent (%d samples in %d batches); %d run(s) start%n",
          job.referenceSamples(),
          reference.size(),
          runs.size());
      ExecutorService pool = Executors.newCachedThreadPool();
      try {
        List<Future<?>> tasks = new ArrayList<>();
        for (String run : runs) {
          tasks.add(
              pool.submit(
                  () -> {
                    runCheckpoints(pub, watcher, run, models, oneBlob, pool, live, liveSent);
                    return null;
                  }));
        }
        for (Future<?> t : tasks) {
          t.get(); // live senders are submitted by the checkpoint tasks and joined there
        }
      } finally {
        pool.shutdownNow();
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(job.timeoutS());
      boolean complete =
          watcher.awaitAll(
              runs, job.checkpoints(), job.resultsPerCheckpoint(), job.liveBatches(), deadline);
      if (!complete) {
        for (String run : runs) {
          List<Long> missing = new ArrayList<>();
          for (int st = 0; st <= job.checkpoints(); st++) {
            if (watcher.manifestTime(run, st) == null
                || watcher.resultTimes(run, st).size() < job.resultsPerCheckpoint()) {
              missing.add((long) st);
            }
          }
          log.printf(
              Locale.ROOT,
              "loadgen: %s incomplete: checkpoints without all results %s, live batches back %d"
                  + " of %d sent%n",
              run,
              missing,
              watcher.liveCompletions(run).size(),
              liveSent.get(run).size());
        }
      }
      long firstSent = Long.MAX_VALUE;
      long lastDone = Long.MIN_VALUE;
      long back = 0;
      for (String run : runs) {
        for (int s = 1; s <= job.checkpoints(); s++) {
          Long t0 = watcher.manifestTime(run, s);
          List<Long> ts = watcher.resultTimes(run, s);
          if (t0 == null || ts.size() < job.resultsPerCheckpoint()) {
            continue; // counted as incomplete above
          }
          long last = Long.MIN_VALUE;
          for (long t : ts.subList(0, job.resultsPerCheckpoint())) {
            result.recordValue(Math.max(0, t - t0));
            last = Math.max(last, t);
          }
          completion.recordValue(Math.max(0, last - t0));
        }
        List<Long> sent = new ArrayList<>(liveSent.get(run));
        sent.sort(null);
        List<Long> done = watcher.liveCompletions(run);
        for (int i = 0; i < Math.min(sent.size(), done.size()); i++) {
          liveLatency.recordValue(Math.max(0, done.get(i) - sent.get(i)));
          back++;
        }
        if (!sent.isEmpty()) {
          firstSent = Math.min(firstSent, sent.get(0));
        }
        if (!done.isEmpty()) {
          lastDone = Math.max(lastDone, done.get(done.size() - 1));
        }
      }
      double window = back > 0 ? (lastDone - firstSent) / 1000.0 : 0;
      return new Summary(job, result, completion, liveLatency, back, window, complete);
    }
  }

  /** One run: warm-up checkpoint, then live batches (own task) and the measured checkpoints. */
  private void runCheckpoints(
      Publisher pub,
      ResultWatcher watcher,
      String run,
      Map<String, byte[]> models,
      Map<String, CheckpointManifest.Blob> oneBlob,
      ExecutorService pool,
      List<byte[]> live,
      Map<String, List<Long>> liveSent)
      throws Exception {
    checkpoint(pub, run, 0, models, oneBlob);
    long warmDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(job.timeoutS());
    if (!watcher.awaitCheckpoint(run, 0, job.resultsPerCheckpoint(), warmDeadline)) {
      throw new IllegalStateException(
          "the warm-up checkpoint of "
              + run
              + " got no "
              + job.resultsPerCheckpoint()
              + " results in "
              + job.timeoutS()
              + " s; is the service reading topics '"
              + job.topicPrefix()
              + "*'?");
    }
    log.printf(Locale.ROOT, "loadgen: %s warm-up checkpoint evaluated%n", run);
    Future<?> liveTask =
        job.liveBatches() == 0
            ? null
            : pool.submit(
                () -> {
                  sendLive(pub, run, live, liveSent.get(run), pool);
                  return null;
                });
    long start = System.nanoTime();
    for (int s = 1; s <= job.checkpoints(); s++) {
      long due = start + TimeUnit.MILLISECONDS.toNanos((s - 1) * job.checkpointIntervalMs());
      sleepUntil(due);
      checkpoint(pub, run, s, models, oneBlob);
    }
    if (liveTask != null) {
      liveTask.get();
    }
  }

  private void checkpoint(
      Publisher pub,
      String run,
      long step,
      Map<String, byte[]> models,
      Map<String, CheckpointManifest.Blob> oneBlob)
      throws Exception {
    CheckpointManifest.Blob blob = oneBlob.get("");
    if (blob == null) {
      blob =
          pub.blob(
              job.experiment(),
              models.get(ResultWatcher.key(run, step)),
              Publisher.DEFAULT_CHUNK_BYTES);
    }
    Map<String, String> layers = new LinkedHashMap<>();
    job.layers().forEach(l -> layers.put(l, l));
    pub.checkpoint(
        new CheckpointManifest(
            job.experiment(),
            run,
            step,
            null,
            Map.of(),
            blob,
            "input",
            layers,
            "logits",
            "classifier.weight",
            job.classes()));
  }

  private void sendLive(
      Publisher pub, String run, List<byte[]> live, List<Long> sent, ExecutorService pool)
      throws Exception {
    long start = System.nanoTime();
    java.util.concurrent.atomic.AtomicInteger next =
        new java.util.concurrent.atomic.AtomicInteger();
    List<Future<?>> senders = new ArrayList<>();
    for (int t = 0; t < job.liveSenders(); t++) {
      senders.add(
          pool.submit(
              () -> {
                for (int i = next.getAndIncrement();
                    i < job.liveBatches();
                    i = next.getAndIncrement()) {
                  if (job.liveRate() > 0) {
                    sleepUntil(start + (long) (i * 1e9 / job.liveRate()));
                  }
                  synchronized (sent) {
                    sent.add(System.currentTimeMillis()); // the producer stamps CreateTime next
                  }
                  pub.batch(
                      job.experiment(),
                      Headers.SPLIT_TRAIN,
                      i,
                      false,
                      live.get(i % live.size()),
                      run,
                      null);
                }
                return null;
              }));
    }
    for (Future<?> f : senders) {
      f.get();
    }
  }

  private static void sleepUntil(long nanos) throws InterruptedException {
    long left = nanos - System.nanoTime();
    if (left > 0) {
      TimeUnit.NANOSECONDS.sleep(left);
    }
  }
}
