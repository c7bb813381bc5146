package io.probestream.loadtests.loadgen;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.probestream.contracts.safetensors.Safetensors;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The baseline of the live-batch throughput: ONNX Runtime alone on the same batches and the same
 * model as {@link LoadGenerator} (same widths, seed and batch size), asking for the same outputs as
 * the service (every hidden layer and the logits) in runs of {@code --chunk} rows (the service's
 * {@code model.batch-size}, 256). {@code --threads T --intra-op 1} runs T sessions side by side,
 * one intra-op thread each, as the service's T workers do; {@code --threads 1 --intra-op 0} is one
 * session on every core. Prints batches/s and samples/s of each repeat.
 *
 * <pre>
 * usage: loadgen.sh bare-ort [--widths 784,512,256,10] [--batch-size 256] [--batches 400]
 *                            [--threads 2] [--intra-op 1] [--chunk 256] [--repeat 3] [--seed 1]
 * </pre>
 */
public final class BareOrt {
  private BareOrt() {}

  public static void main(String[] args) throws Exception {
    java.util.Map<String, String> a = new java.util.HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    int[] widths =
        Arrays.stream(a.getOrDefault("widths", "784,512,256,10").split(","))
            .mapToInt(Integer::parseInt)
            .toArray();
    int batchSize = Integer.parseInt(a.getOrDefault("batch-size", "256"));
    int batches = Integer.parseInt(a.getOrDefault("batches", "400"));
    int threads =
        Integer.parseInt(
            a.getOrDefault(
                "threads", Integer.toString(Runtime.getRuntime().availableProcessors())));
    int intraOp = Integer.parseInt(a.getOrDefault("intra-op", "1"));
    int chunk = Integer.parseInt(a.getOrDefault("chunk", "256"));
    int repeat = Integer.parseInt(a.getOrDefault("repeat", "3"));
    long seed = Long.parseLong(a.getOrDefault("seed", "1"));

    Workload work = new Workload(widths, seed);
    byte[] model = work.model(0);
    List<float[]> inputs = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      inputs.add(
          Safetensors.parse(work.batch(batchSize, 1_000_000_000L + (long) i * batchSize))
              .floats("input"));
    }
    Set<String> outputs = new LinkedHashSet<>();
    for (int l = 1; l < widths.length - 1; l++) {
      outputs.add("h" + l);
    }
    outputs.add("logits");
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    List<OrtSession> sessions = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      OrtSession.SessionOptions so = new OrtSession.SessionOptions();
      so.setIntraOpNumThreads(intraOp);
      so.setInterOpNumThreads(1);
      so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      sessions.add(env.createSession(model, so));
    }
    System.out.printf(
        Locale.ROOT,
        "bare ORT: MLP %s, %d batches of %d samples, runs of %d rows, %d session(s) × %s intra-op"
            + " thread(s)%n",
        LoadGenerator.widthsText(widths),
        batches,
        batchSize,
        chunk,
        threads,
        intraOp == 0 ? "all" : Integer.toString(intraOp));
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      // warm-up: half the batches, not timed (ORT's first runs and the JIT)
      pass(env, sessions, pool, inputs, Math.max(threads, batches / 2), batchSize, chunk, widths);
      for (int r = 0; r < repeat; r++) {
        long t0 = System.nanoTime();
        long cpu = pass(env, sessions, pool, inputs, batches, batchSize, chunk, widths);
        double s = (System.nanoTime() - t0) / 1e9;
        System.out.printf(
            Locale.ROOT,
            "repeat %d: %.2f s, %.1f batches/s, %.0f samples/s, %.2f ms CPU per batch (calling"
                + " threads)%n",
            r + 1,
            s,
            batches / s,
            batches * (double) batchSize / s,
            cpu / 1e6 / batches);
      }
    } finally {
      pool.shutdownNow();
      for (OrtSession s : sessions) {
        s.close();
      }
    }
  }

  /** Runs {@code batches} batches over the sessions; returns the calling threads' CPU ns. */
  private static long pass(
      OrtEnvironment env,
      List<OrtSession> sessions,
      ExecutorService pool,
      List<float[]> inputs,
      int batches,
      int batchSize,
      int chunk,
      int[] widths)
      throws Exception {
    AtomicInteger next = new AtomicInteger();
    List<Future<Long>> tasks = new ArrayList<>();
    java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
    Set<String> outputs = new LinkedHashSet<>();
    for (int l = 1; l < widths.length - 1; l++) {
      outputs.add("h" + l);
    }
    outputs.add("logits");
    for (OrtSession session : sessions) {
      tasks.add(
          pool.submit(
              () -> {
                long cpu0 = mx.getCurrentThreadCpuTime();
                for (int b = next.getAndIncrement(); b < batches; b = next.getAndIncrement()) {
                  float[] x = inputs.get(b % inputs.size());
                  for (int from = 0; from < batchSize; from += chunk) {
                    int rows = Math.min(chunk, batchSize - from);
                    run(env, session, x, from, rows, widths[0], outputs);
                  }
                }
                return mx.getCurrentThreadCpuTime() - cpu0;
              }));
    }
    long cpu = 0;
    for (Future<Long> f : tasks) {
      cpu += f.get();
    }
    return cpu;
  }

  private static void run(
      OrtEnvironment env,
      OrtSession session,
      float[] x,
      int from,
      int rows,
      int d,
      Set<String> outputs)
      throws OrtException {
    FloatBuffer buf = FloatBuffer.wrap(x, from * d, rows * d).slice();
    try (OnnxTensor in = OnnxTensor.createTensor(env, buf, new long[] {rows, d});
        OrtSession.Result out = session.run(java.util.Map.of("input", in), outputs)) {
      // copy every output to the heap, as the service does before its statistics
      for (var e : out) {
        ((OnnxTensor) e.getValue()).getFloatBuffer();
      }
    }
  }
}
