package io.probestream.loadtests.sidebyside;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.probestream.probes.FeatureBatch;
import io.probestream.probes.ProbeOutput;
import io.probestream.probes.collapse.CollapseMoments;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Timings for loadtests/side-by-side.sh, on arrays written by reference/side_by_side.py (raw
 * little-endian: int32 rank, int32 dims, then the data).
 *
 * <ul>
 *   <li>{@code kernel DIR REPS BATCH}: the neural_collapse kernels of the probes module on the
 *       features DIR/h1.f32, DIR/h2.f32 (labels DIR/labels.i32, logits DIR/logits.f32, classifier
 *       weight DIR/w.f32): pass 1 ({@code CollapseMoments.of} per batch of BATCH rows, merged),
 *       pass 2 ({@code Frozen.pass2} per batch, merged) and the whole computation (pass 1, freeze,
 *       pass 2, finish) on both layers; prints timings (best and median of REPS after warm-up) and
 *       the metrics.
 *   <li>{@code ort MODEL DIR REPS BATCH}: bare ONNX Runtime inference of DIR/input.f32 in batches
 *       of BATCH rows, fetching h1, h2 and logits, with the session options of ModelSession
 *       (intra-op threads = available processors, inter-op 1, ALL_OPT).
 * </ul>
 */
public final class SideBySide {
  private SideBySide() {}

  record Array(int[] shape, float[] f, int[] i) {}

  static Array read(Path p, boolean ints) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
    int rank = b.getInt();
    int[] shape = new int[rank];
    long n = 1;
    for (int k = 0; k < rank; k++) {
      shape[k] = b.getInt();
      n *= shape[k];
    }
    if (ints) {
      int[] v = new int[(int) n];
      b.asIntBuffer().get(v);
      return new Array(shape, null, v);
    }
    float[] v = new float[(int) n];
    b.asFloatBuffer().get(v);
    return new Array(shape, v, null);
  }

  interface Task {
    Object run() throws Exception;
  }

  static volatile Object sink;

  /** Seconds of each of REPS calls after WARM unmeasured calls. */
  static double[] time(Task t, int warm, int reps) throws Exception {
    for (int r = 0; r < warm; r++) {
      sink = t.run();
    }
    double[] s = new double[reps];
    for (int r = 0; r < reps; r++) {
      long t0 = System.nanoTime();
      sink = t.run();
      s[r] = (System.nanoTime() - t0) / 1e9;
    }
    return s;
  }

  static void report(String key, double[] s) {
    double[] c = s.clone();
    Arrays.sort(c);
    System.out.printf("time %s best=%.6f median=%.6f%n", key, c[0], c[c.length / 2]);
  }

  static List<FeatureBatch> batches(Array h, int[] labels, Array logits, int batch) {
    int n = h.shape()[0];
    int d = h.shape()[1];
    List<FeatureBatch> out = new ArrayList<>();
    for (int s = 0; s < n; s += batch) {
      int rows = Math.min(batch, n - s);
      float[] f = Arrays.copyOfRange(h.f(), s * d, (s + rows) * d);
      int[] l = Arrays.copyOfRange(labels, s, s + rows);
      float[] z = null;
      int c = 0;
      if (logits != null) {
        c = logits.shape()[1];
        z = Arrays.copyOfRange(logits.f(), s * c, (s + rows) * c);
      }
      out.add(new FeatureBatch(rows, d, f, l, z, c, s));
    }
    return out;
  }

  static CollapseMoments pass1(List<FeatureBatch> bs) {
    CollapseMoments m = CollapseMoments.empty(bs.get(0).width());
    for (FeatureBatch b : bs) {
      m = m.merge(CollapseMoments.of(b));
    }
    return m;
  }

  static NeuralCollapseProbe.SecondPass pass2(NeuralCollapseProbe.Frozen f, List<FeatureBatch> bs) {
    NeuralCollapseProbe.SecondPass s = f.emptyPass2();
    for (FeatureBatch b : bs) {
      s = s.merge(f.pass2(b));
    }
    return s;
  }

  static ProbeOutput whole(List<FeatureBatch> bs, boolean classifier, double[][] w) {
    NeuralCollapseProbe.Frozen f = NeuralCollapseProbe.freeze(pass1(bs), classifier, w);
    return f.finish(pass2(f, bs), Map.of());
  }

  static void kernel(Path dir, int reps, int batch) throws Exception {
    int[] labels = read(dir.resolve("labels.i32"), true).i();
    Array logits = read(dir.resolve("logits.f32"), false);
    Array wa = read(dir.resolve("w.f32"), false);
    double[][] w = new double[wa.shape()[0]][wa.shape()[1]];
    for (int c = 0; c < w.length; c++) {
      for (int j = 0; j < w[c].length; j++) {
        w[c][j] = wa.f()[c * w[c].length + j];
      }
    }
    List<FeatureBatch> h1 = batches(read(dir.resolve("h1.f32"), false), labels, null, batch);
    List<FeatureBatch> h2 = batches(read(dir.resolve("h2.f32"), false), labels, logits, batch);
    // The first call in a fresh JVM (interpreter and JIT warm-up included), as `probestream probe`
    // makes it: one call per layer per run.
    report("nc.cold", time(() -> List.of(whole(h1, false, null), whole(h2, true, w)), 0, 1));
    int warm = 5;
    for (Object[] layer : new Object[][] {{"h1", h1, false}, {"h2", h2, true}}) {
      String name = (String) layer[0];
      @SuppressWarnings("unchecked")
      List<FeatureBatch> bs = (List<FeatureBatch>) layer[1];
      boolean cls = (Boolean) layer[2];
      report(name + ".pass1", time(() -> pass1(bs), warm, reps));
      NeuralCollapseProbe.Frozen f = NeuralCollapseProbe.freeze(pass1(bs), cls, cls ? w : null);
      report(
          name + ".freeze",
          time(() -> NeuralCollapseProbe.freeze(pass1(bs), cls, cls ? w : null), warm, reps));
      report(name + ".pass2", time(() -> pass2(f, bs), warm, reps));
      System.out.println("rank " + name + " " + f.rank());
    }
    report("nc.both", time(() -> List.of(whole(h1, false, null), whole(h2, true, w)), warm, reps));
    printMetrics("h1", whole(h1, false, null));
    printMetrics("h2", whole(h2, true, w));
  }

  static void printMetrics(String layer, ProbeOutput o) {
    StringBuilder s = new StringBuilder("metrics " + layer + " {");
    boolean first = true;
    for (Map.Entry<String, Double> e : o.metrics().entrySet()) {
      s.append(first ? "" : ", ").append('"').append(e.getKey()).append("\": ");
      s.append(e.getValue() == null ? "null" : Double.toString(e.getValue()));
      first = false;
    }
    System.out.println(s.append('}'));
  }

  static void ort(Path model, Path dir, int reps, int batch) throws Exception {
    Array x = read(dir.resolve("input.f32"), false);
    int n = x.shape()[0];
    int din = x.shape()[1];
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    long t0 = System.nanoTime();
    OrtSession.SessionOptions so = new OrtSession.SessionOptions();
    so.setIntraOpNumThreads(Runtime.getRuntime().availableProcessors());
    so.setInterOpNumThreads(1);
    so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
    OrtSession session = env.createSession(Files.readAllBytes(model), so);
    System.out.printf(
        "time ort.session best=%.6f median=%.6f%n",
        (System.nanoTime() - t0) / 1e9, (System.nanoTime() - t0) / 1e9);
    String input = session.getInputNames().iterator().next();
    Set<String> outs = Set.of("h1", "h2", "logits");
    Task all =
        () -> {
          double check = 0;
          for (int s = 0; s < n; s += batch) {
            int rows = Math.min(batch, n - s);
            FloatBuffer fb = FloatBuffer.wrap(x.f(), s * din, rows * din).slice();
            try (OnnxTensor t = OnnxTensor.createTensor(env, fb, new long[] {rows, din});
                OrtSession.Result r = session.run(Map.of(input, t), outs)) {
              for (String o : outs) {
                // copy out, as the evaluator does
                FloatBuffer v = ((OnnxTensor) r.get(o).get()).getFloatBuffer();
                check += v.get(0);
              }
            }
          }
          return check;
        };
    double[] first = time(all, 0, 1);
    report("ort.first", first);
    if (reps > 0) { // REPS = 0: only the first pass (the whole-process figure)
      report("ort.run", time(all, 2, reps));
    }
    session.close();
  }

  public static void main(String[] args) throws Exception {
    switch (args[0]) {
      case "kernel" ->
          kernel(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
      case "ort" ->
          ort(
              Path.of(args[1]),
              Path.of(args[2]),
              Integer.parseInt(args[3]),
              Integer.parseInt(args[4]));
      default ->
          throw new IllegalArgumentException(
              "usage: kernel DIR REPS BATCH | ort MODEL DIR REPS BATCH");
    }
  }
}
