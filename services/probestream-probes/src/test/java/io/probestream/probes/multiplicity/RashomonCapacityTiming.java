package io.probestream.probes.multiplicity;

import com.sun.management.OperatingSystemMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;

/**
 * Wall and process CPU time of {@link RashomonCapacity#batch} on 10,000 samples × 32 near-agreeing
 * members × 100 classes on a 2-thread pool (target: under 2 s of wall time on a 2-core machine),
 * five runs in one JVM (the first includes JIT warm-up). A measurement, not a test: run it with
 *
 * <pre>
 * mvn -B -o -q test-compile -pl services/probestream-probes
 * java -cp services/probestream-probes/target/classes:services/probestream-probes/target/test-classes \
 *   io.probestream.probes.multiplicity.RashomonCapacityTiming \
 *   [samples members classes noise threads NEWTON|REFERENCE]
 * </pre>
 *
 * <p>REFERENCE runs the loop of PROBES.md §3.3 as written, the baseline.
 */
public final class RashomonCapacityTiming {
  private RashomonCapacityTiming() {}

  /**
   * Member m's logits for sample i are base_i + noise·ε_{m,i} (standard normal base and ε), softmax
   * in float64, stored float32, as the probe keeps them.
   */
  static List<float[]> nearAgreeing(
      int samples, int members, int classes, double noise, long seed) {
    Random rnd = new Random(seed);
    double[] base = new double[samples * classes];
    for (int i = 0; i < base.length; i++) {
      base[i] = rnd.nextGaussian();
    }
    List<float[]> probs = new ArrayList<>();
    double[] z = new double[classes];
    for (int m = 0; m < members; m++) {
      float[] p = new float[samples * classes];
      for (int i = 0; i < samples; i++) {
        double max = Double.NEGATIVE_INFINITY;
        for (int c = 0; c < classes; c++) {
          z[c] = base[i * classes + c] + noise * rnd.nextGaussian();
          max = Math.max(max, z[c]);
        }
        double sum = 0;
        for (int c = 0; c < classes; c++) {
          z[c] = Math.exp(z[c] - max);
          sum += z[c];
        }
        for (int c = 0; c < classes; c++) {
          p[i * classes + c] = (float) (z[c] / sum);
        }
      }
      probs.add(p);
    }
    return probs;
  }

  public static void main(String[] args) {
    int samples = args.length > 0 ? Integer.parseInt(args[0]) : 10_000;
    int members = args.length > 1 ? Integer.parseInt(args[1]) : 32;
    int classes = args.length > 2 ? Integer.parseInt(args[2]) : 100;
    double noise = args.length > 3 ? Double.parseDouble(args[3]) : 0.05;
    int threads = args.length > 4 ? Integer.parseInt(args[4]) : 2;
    CapacitySolver.Method method =
        args.length > 5 ? CapacitySolver.Method.valueOf(args[5]) : CapacitySolver.Method.NEWTON;
    List<float[]> probs = nearAgreeing(samples, members, classes, noise, 7);
    OperatingSystemMXBean os = ManagementFactory.getPlatformMXBean(OperatingSystemMXBean.class);
    ForkJoinPool pool = new ForkJoinPool(threads);
    try {
      for (int run = 0; run < 5; run++) {
        long cpu0 = os.getProcessCpuTime();
        long t0 = System.nanoTime();
        RashomonCapacity.BatchResult r =
            RashomonCapacity.batch(probs, samples, classes, pool, method);
        double seconds = (System.nanoTime() - t0) / 1e9;
        double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
        System.out.printf(
            Locale.ROOT,
            "%s run %d: %d × %d × %d, noise %.3f, %d threads: wall %.3f s, cpu %.3f s;"
                + " mean RC %.9f; iterations median %d, p90 %d, max %d; not converged %d%n",
            method,
            run,
            samples,
            members,
            classes,
            noise,
            threads,
            seconds,
            cpu,
            r.meanRc(),
            r.iterationsMedian(),
            r.iterationsP90(),
            r.iterationsMax(),
            r.notConverged());
      }
    } finally {
      pool.shutdown();
    }
  }
}
