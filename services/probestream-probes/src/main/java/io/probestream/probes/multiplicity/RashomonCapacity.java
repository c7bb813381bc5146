package io.probestream.probes.multiplicity;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Rashomon capacity of one sample (PROBES.md §3.3; Hsu and Calmon 2022): the capacity in nats of
 * the channel whose rows are the Rashomon set's probability vectors for that sample, certified to
 * 1e-8 nats, and its batch form over a reference set. §3.3 admits any method that certifies; this
 * one takes regularised Newton steps (about 8 per sample where the reference loop takes hundreds)
 * and keeps the reference loop's stopping test, bounds and cap. Stateless; the batch runs on the
 * caller's pool and starts no threads.
 */
public final class RashomonCapacity {
  /** Certified gap: upper − lower ≤ this many nats (PROBES.md §0). */
  public static final double TOLERANCE_NATS = CapacitySolver.TOLERANCE;

  /** Iteration cap (PROBES.md §0). */
  public static final int MAX_ITERATIONS = CapacitySolver.MAX_ITERATIONS;

  /** Samples per task of {@link #batch}; fixed, so the split does not depend on the pool. */
  static final int CHUNK = 256;

  private RashomonCapacity() {}

  /**
   * The capacity of one channel.
   *
   * @param capacityNats the certified lower bound I(r) on C, in nats; 0 ≤ it ≤ {@code upperNats}
   * @param upperNats max_m D_m(r), an upper bound on C, in nats
   * @param iterations accepted steps; 0 when every row is the same or the uniform input already
   *     certifies
   * @param converged whether upper − lower ≤ {@link #TOLERANCE_NATS} within {@link #MAX_ITERATIONS}
   *     steps
   * @param input the input distribution r that attains {@code capacityNats}, one weight per row
   *     (identical rows: all the weight on the first copy); never null, unmodifiable
   */
  public record Result(
      double capacityNats,
      double upperNats,
      int iterations,
      boolean converged,
      List<Double> input) {
    public Result {
      input = List.copyOf(input);
    }

    /** RC = exp(C) in [1, min(K, rows)], from the certified lower bound. */
    public double rc() {
      return Math.exp(capacityNats);
    }
  }

  /**
   * Rashomon capacity of the channel with rows {@code q} (|S| × K; row m = member m's probability
   * vector for the sample). Each row is divided by its sum before use, and entries below 1e-200
   * count as 0. {@code q} is only read.
   *
   * @throws IllegalArgumentException naming the row, if there is no row, the rows differ in length,
   *     an entry is negative or not finite, or a row does not sum to 1 within 1e-6
   */
  public static Result of(double[][] q) {
    if (q.length == 0) {
      throw new IllegalArgumentException("a channel needs at least one row (member); got none");
    }
    int cols = q[0].length;
    if (cols == 0) {
      throw new IllegalArgumentException("row 0 has no entries; a row needs at least one class");
    }
    CapacitySolver solver = new CapacitySolver();
    double[] raw = solver.load(q.length, cols);
    for (int m = 0; m < q.length; m++) {
      if (q[m].length != cols) {
        throw new IllegalArgumentException(
            "row " + m + " has " + q[m].length + " entries; row 0 has " + cols);
      }
      System.arraycopy(q[m], 0, raw, m * cols, cols);
      String problem = solver.checkRow(m, cols);
      if (problem != null) {
        throw new IllegalArgumentException("row " + m + ": " + problem);
      }
    }
    solver.solve(q.length, cols);
    double[] input = new double[q.length];
    solver.inputDistribution(input);
    List<Double> weights = new ArrayList<>(q.length);
    for (double w : input) {
      weights.add(w);
    }
    return new Result(
        solver.lower, solver.upper, solver.iterations, solver.converged, List.copyOf(weights));
  }

  /**
   * RC_i = exp(C_i) of every sample of a reference set, with their mean and how hard they were.
   * Arrays are copied in and out, so the value is immutable.
   *
   * @param rc RC_i in sample order, each ≥ 1
   * @param capacityNats C_i in sample order (the certified lower bounds)
   * @param iterations accepted steps per sample, in sample order
   * @param meanRc (1/N) Σ_i RC_i, summed in sample order; NaN when N = 0
   * @param iterationsMedian nearest-rank median of {@code iterations} (0 when N = 0)
   * @param iterationsP90 nearest-rank 90th percentile of {@code iterations}
   * @param iterationsMax the largest of {@code iterations}
   * @param notConverged samples whose gap was still above {@link #TOLERANCE_NATS} at the cap
   */
  public record BatchResult(
      double[] rc,
      double[] capacityNats,
      int[] iterations,
      double meanRc,
      int iterationsMedian,
      int iterationsP90,
      int iterationsMax,
      int notConverged) {
    public BatchResult {
      rc = rc.clone();
      capacityNats = capacityNats.clone();
      iterations = iterations.clone();
    }

    @Override
    public double[] rc() {
      return rc.clone();
    }

    @Override
    public double[] capacityNats() {
      return capacityNats.clone();
    }

    @Override
    public int[] iterations() {
      return iterations.clone();
    }

    /** The number of samples N. */
    public int samples() {
      return rc.length;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof BatchResult b
          && Arrays.equals(rc, b.rc)
          && Arrays.equals(capacityNats, b.capacityNats)
          && Arrays.equals(iterations, b.iterations)
          && Double.compare(meanRc, b.meanRc) == 0
          && iterationsMedian == b.iterationsMedian
          && iterationsP90 == b.iterationsP90
          && iterationsMax == b.iterationsMax
          && notConverged == b.notConverged;
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(rc) + Arrays.hashCode(iterations);
    }

    @Override
    public String toString() {
      return "BatchResult[samples="
          + rc.length
          + ", meanRc="
          + meanRc
          + ", iterations median/p90/max="
          + iterationsMedian
          + "/"
          + iterationsP90
          + "/"
          + iterationsMax
          + ", notConverged="
          + notConverged
          + "]";
    }
  }

  /**
   * {@link #of} for every sample of a reference set, on {@code pool} in chunks of {@value #CHUNK}
   * samples. Every sample is computed by the same code whatever thread runs it, and the mean is
   * summed in sample order afterwards, so the result does not depend on the pool's parallelism.
   *
   * @param probs one array per member (|S| ≥ 1), each N × K float32 probabilities, row-major; only
   *     read
   * @param samples N ≥ 0
   * @param classes K ≥ 1
   * @param pool runs the chunks; the caller blocks until all are done
   * @throws IllegalArgumentException if an array is not N × K, or naming the member and sample of
   *     the first (lowest sample, then lowest member) row that is not a probability vector
   */
  public static BatchResult batch(
      List<float[]> probs, int samples, int classes, ForkJoinPool pool) {
    return batch(probs, samples, classes, pool, CapacitySolver.Method.NEWTON);
  }

  /** {@link #batch} with the loop chosen, for comparing against the reference method. */
  static BatchResult batch(
      List<float[]> probs,
      int samples,
      int classes,
      ForkJoinPool pool,
      CapacitySolver.Method method) {
    if (probs.isEmpty()) {
      throw new IllegalArgumentException("the Rashomon set has no members");
    }
    if (samples < 0 || classes < 1) {
      throw new IllegalArgumentException(
          samples + " samples × " + classes + " classes; need N ≥ 0 and K ≥ 1");
    }
    long cells = (long) samples * classes;
    for (int m = 0; m < probs.size(); m++) {
      if (probs.get(m).length != cells) {
        throw new IllegalArgumentException(
            "member "
                + m
                + " has "
                + probs.get(m).length
                + " probabilities; expected N·K = "
                + samples
                + "·"
                + classes
                + " = "
                + cells);
      }
    }
    float[][] members = probs.toArray(new float[0][]);
    double[] rc = new double[samples];
    double[] capacity = new double[samples];
    int[] iterations = new int[samples];
    boolean[] converged = new boolean[samples];
    List<Chunk> chunks = new ArrayList<>();
    List<ForkJoinTask<?>> tasks = new ArrayList<>();
    for (int from = 0; from < samples; from += CHUNK) {
      Chunk chunk =
          new Chunk(
              method,
              members,
              classes,
              from,
              Math.min(samples, from + CHUNK),
              rc,
              capacity,
              iterations,
              converged);
      chunks.add(chunk);
      tasks.add(ForkJoinTask.adapt(chunk));
    }
    pool.invoke(ForkJoinTask.adapt(() -> ForkJoinTask.invokeAll(tasks)));
    for (Chunk chunk : chunks) {
      if (chunk.problem != null) {
        throw new IllegalArgumentException(chunk.problem);
      }
    }
    double sum = 0;
    int notConverged = 0;
    for (int i = 0; i < samples; i++) {
      sum += rc[i];
      notConverged += converged[i] ? 0 : 1;
    }
    int[] sorted = iterations.clone();
    Arrays.sort(sorted);
    return new BatchResult(
        rc,
        capacity,
        iterations,
        samples == 0 ? Double.NaN : sum / samples,
        rank(sorted, 0.5),
        rank(sorted, 0.9),
        samples == 0 ? 0 : sorted[samples - 1],
        notConverged);
  }

  /** Nearest-rank percentile: the ⌈p·N⌉-th smallest; 0 when N = 0. */
  private static int rank(int[] sorted, double p) {
    if (sorted.length == 0) {
      return 0;
    }
    int at = (int) Math.ceil(p * sorted.length) - 1;
    return sorted[Math.max(0, at)];
  }

  /**
   * Samples [from, to) of a batch, with a solver of its own. Writes only its own slots of the
   * shared output arrays; stops at its first invalid row and keeps the message.
   */
  private static final class Chunk implements Runnable {
    private final CapacitySolver.Method method;
    private final float[][] members;
    private final int classes;
    private final int from;
    private final int to;
    private final double[] rc;
    private final double[] capacity;
    private final int[] iterations;
    private final boolean[] converged;
    private String problem;

    Chunk(
        CapacitySolver.Method method,
        float[][] members,
        int classes,
        int from,
        int to,
        double[] rc,
        double[] capacity,
        int[] iterations,
        boolean[] converged) {
      this.method = method;
      this.members = members;
      this.classes = classes;
      this.from = from;
      this.to = to;
      this.rc = rc;
      this.capacity = capacity;
      this.iterations = iterations;
      this.converged = converged;
    }

    @Override
    public void run() {
      CapacitySolver solver = new CapacitySolver(method);
      int s = members.length;
      int k = classes;
      for (int i = from; i < to; i++) {
        double[] raw = solver.load(s, k);
        for (int m = 0; m < s; m++) {
          float[] p = members[m];
          int src = i * k;
          int dst = m * k;
          for (int c = 0; c < k; c++) {
            raw[dst + c] = p[src + c];
          }
          String bad = solver.checkRow(m, k);
          if (bad != null) {
            problem = "member " + m + ", sample " + i + ": " + bad;
            return;
          }
        }
        solver.solve(s, k);
        capacity[i] = solver.lower;
        rc[i] = Math.exp(solver.lower);
        iterations[i] = solver.iterations;
        converged[i] = solver.converged;
      }
    }
  }
}
