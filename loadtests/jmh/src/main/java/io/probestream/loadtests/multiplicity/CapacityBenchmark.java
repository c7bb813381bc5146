package io.probestream.loadtests.multiplicity;

import io.probestream.probes.multiplicity.RashomonCapacity;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Rashomon capacity of every sample (PROBES.md §3.3) for 10,000 samples × 32 near-agreeing members
 * × 100 classes on a 2-thread pool, the target (under 2 s on a 2-core machine). Member m's
 * logits are base + noise·ε (standard normal), softmax in float64 stored float32 as the probe keeps
 * them.
 *
 * <p>Run: {@code java -jar loadtests/jmh/target/benchmarks.jar Capacity} (loadtests/README.md).
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 2)
@Measurement(iterations = 5)
public class CapacityBenchmark {
  @Param({"10000"})
  int samples;

  @Param({"32"})
  int members;

  @Param({"100"})
  int classes;

  @Param({"0.05"})
  double noise;

  @Param({"2"})
  int threads;

  private List<float[]> probs;
  private ForkJoinPool pool;

  @Setup(Level.Trial)
  public void members() {
    Random rnd = new Random(7);
    double[] base = new double[samples * classes];
    for (int i = 0; i < base.length; i++) {
      base[i] = rnd.nextGaussian();
    }
    probs = new ArrayList<>();
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
    pool = new ForkJoinPool(threads);
  }

  @TearDown(Level.Trial)
  public void stop() {
    pool.shutdown();
  }

  @Benchmark
  public RashomonCapacity.BatchResult capacity() {
    return RashomonCapacity.batch(probs, samples, classes, pool);
  }
}
