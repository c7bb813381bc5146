package io.probestream.loadtests.complexity;

import io.probestream.probes.complexity.IfmLayer;
import io.probestream.probes.complexity.IterativeFeatureMerging;
import io.probestream.probes.complexity.IterativeFeatureMerging.MergeSequence;
import java.util.Random;
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
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Iterative Feature Merging (PROBES.md §2.1) on a square layer, n0 = d_in = d_out, Gaussian weights
 * with {@link #COPIES} planted duplicate units: the copies merge first at distance 0, and the next
 * step is refused at beta = 0.1. One call is seconds long, so each is timed once (single shot).
 *
 * <p>Run: {@code java -jar loadtests/jmh/target/benchmarks.jar Ifm} (see loadtests/README.md).
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
@Fork(
    value = 1,
    jvmArgsAppend = {"-Xms3g", "-Xmx3g"})
@Warmup(iterations = 1)
@Measurement(iterations = 3)
public class IfmBenchmark {
  /** Units that are exact copies of another unit. */
  static final int COPIES = 8;

  @Param({"1024", "4096"})
  int units;

  private IfmLayer layer;

  @Setup(Level.Trial)
  public void plantCopies() {
    layer = gaussianLayerWithCopies(units, COPIES, new Random(20240607L));
  }

  /**
   * Baseline: copying the layer into the n0 unit vectors f_u = [W_in[u,:], b_in[u], W_out[:,u]],
   * the data movement every run starts with; the merge benchmarks' time beyond it is distances.
   */
  @Benchmark
  public void baselineUnitVectors(Blackhole sink) {
    for (int u = 0; u < layer.units(); u++) {
      sink.consume(layer.unitVector(u));
    }
  }

  /** What {@code ifm_units} at beta = 0.1 costs: the merges up to the first refused one. */
  @Benchmark
  public MergeSequence toFirstRefusal() {
    return IterativeFeatureMerging.mergeSequence(layer, 0.1);
  }

  /** The full merge order (n0 − 1 merges), which the data-aware IFM of PROBES.md §2.2 needs. */
  @Benchmark
  public MergeSequence fullSequence() {
    return IterativeFeatureMerging.mergeSequence(layer);
  }

  /**
   * n0 = d_in = d_out, standard Gaussian weights; the last {@code copies} units copy earlier ones.
   */
  static IfmLayer gaussianLayerWithCopies(int n0, int copies, Random rnd) {
    double[][] wIn = new double[n0][n0];
    double[] bIn = new double[n0];
    double[][] wOut = new double[n0][n0];
    for (int u = 0; u < n0; u++) {
      for (int j = 0; j < n0; j++) {
        wIn[u][j] = rnd.nextGaussian();
        wOut[j][u] = rnd.nextGaussian();
      }
      bIn[u] = rnd.nextGaussian();
    }
    for (int c = 0; c < copies; c++) {
      int copy = n0 - 1 - c;
      int source = rnd.nextInt(n0 - copies);
      wIn[copy] = wIn[source].clone();
      bIn[copy] = bIn[source];
      for (double[] row : wOut) {
        row[copy] = row[source];
      }
    }
    return new IfmLayer(wIn, bIn, wOut);
  }
}
