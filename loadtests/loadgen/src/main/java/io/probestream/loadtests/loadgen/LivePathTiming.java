package io.probestream.loadtests.loadgen;

import io.probestream.contracts.safetensors.Safetensors;
import io.probestream.inference.CheckpointEvaluator;
import io.probestream.inference.Device;
import io.probestream.inference.EvaluationSpec;
import io.probestream.inference.ModelBytes;
import io.probestream.inference.Reduction;
import io.probestream.inference.ReferenceBatch;
import io.probestream.inference.SessionCache;
import io.probestream.probes.collapse.CollapseMoments;
import io.probestream.probes.collapse.NeuralCollapseProbe;
import io.probestream.service.ingest.ReferenceIngest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where a live batch's time goes in the service, without Kafka: on one thread, the same calls
 * {@code LiveSplits} makes per batch, each timed alone over the same batches and model as {@link
 * BareOrt} — the input checks ({@code ReferenceIngest.inspect}), decoding ({@code
 * Safetensors.parse}, floats, labels), {@code CheckpointEvaluator.passOne} (the session from the
 * cache, ORT, features to the heap, per-class moments) with the service's settings (runs of 256
 * rows, one intra-op thread), and what a worker then does per result ({@code
 * NeuralCollapseProbe.freeze(…).finishPassOne}, per layer, on the merged moments).
 *
 * <pre>
 * usage: loadgen.sh live-path [--widths 784,512,256,10] [--batch-size 256] [--batches 400]
 *                             [--repeat 3] [--seed 1]
 * </pre>
 */
public final class LivePathTiming {
  private LivePathTiming() {}

  public static void main(String[] args) {
    Map<String, String> a = new java.util.HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    int[] widths =
        java.util.Arrays.stream(a.getOrDefault("widths", "784,512,256,10").split(","))
            .mapToInt(Integer::parseInt)
            .toArray();
    int batchSize = Integer.parseInt(a.getOrDefault("batch-size", "256"));
    int batches = Integer.parseInt(a.getOrDefault("batches", "400"));
    int repeat = Integer.parseInt(a.getOrDefault("repeat", "3"));
    long seed = Long.parseLong(a.getOrDefault("seed", "1"));
    Workload work = new Workload(widths, seed);
    ModelBytes model = ModelBytes.inline(work.model(0));
    List<byte[]> payloads = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      payloads.add(work.batch(batchSize, 1_000_000_000L + (long) i * batchSize));
    }
    Map<String, String> layers = new LinkedHashMap<>();
    for (int l = 1; l < widths.length - 1; l++) {
      layers.put("h" + l, "h" + l);
    }
    EvaluationSpec spec =
        new EvaluationSpec(
            "input",
            layers,
            "logits",
            "classifier.weight",
            widths[widths.length - 1],
            Reduction.GAP);
    CheckpointEvaluator evaluator =
        new CheckpointEvaluator(
            new CheckpointEvaluator.Config(256, 512L << 20, Device.CPU, 1),
            new SessionCache(512L << 20));
    System.out.printf(
        Locale.ROOT,
        "live path (one thread, no Kafka): MLP %s, %d batches of %d samples per repeat%n",
        LoadGenerator.widthsText(widths),
        batches,
        batchSize);
    for (int r = -1; r < repeat; r++) { // repeat -1 warms up
      long inspect = 0;
      long decode = 0;
      long passOne = 0;
      long freeze = 0;
      Map<String, CollapseMoments> merged = new LinkedHashMap<>();
      for (int b = 0; b < batches; b++) {
        byte[] bytes = payloads.get(b % payloads.size());
        long t0 = System.nanoTime();
        ReferenceIngest.inspect(bytes);
        long t1 = System.nanoTime();
        Safetensors st = Safetensors.parse(bytes);
        ReferenceBatch batch =
            new ReferenceBatch(
                st.floats("input"), st.tensors().get("input").shape(), st.ints("labels"));
        long t2 = System.nanoTime();
        CheckpointEvaluator.PassOne one = evaluator.passOne(model, spec, batch);
        long t3 = System.nanoTime();
        for (Map.Entry<String, CollapseMoments> e : one.moments().entrySet()) {
          CollapseMoments m = merged.merge(e.getKey(), e.getValue(), CollapseMoments::merge);
          boolean feeds = one.feedsClassifier().get(e.getKey());
          Map<String, Object> params = new LinkedHashMap<>();
          params.put("live_batches", b + 1);
          NeuralCollapseProbe.freeze(m, feeds, feeds ? one.classifierWeight() : null)
              .finishPassOne(params);
        }
        long t4 = System.nanoTime();
        inspect += t1 - t0;
        decode += t2 - t1;
        passOne += t3 - t2;
        freeze += t4 - t3;
      }
      if (r >= 0) {
        System.out.printf(
            Locale.ROOT,
            "repeat %d, ms per batch: inspect %.2f, decode %.2f, passOne %.2f, freeze+finish"
                + " %.2f; total %.2f%n",
            r + 1,
            inspect / 1e6 / batches,
            decode / 1e6 / batches,
            passOne / 1e6 / batches,
            freeze / 1e6 / batches,
            (inspect + decode + passOne + freeze) / 1e6 / batches);
      }
    }
  }
}
