package io.probestream.trainer;

import java.util.SplittableRandom;

/**
 * One run (one seed) of the simulated experiment: its MLP, its Adam state and its mini-batch order,
 * all drawn from the seed, so a run is reproducible bit for bit. Mini-batches walk a fresh
 * permutation of the training set every epoch. Mutable; owned by the one thread that trains it.
 */
public final class TrainingRun {
  private final String name;
  private final Dataset train;
  private final ReluMlp model;
  private final Adam adam;
  private final SplittableRandom rnd;
  private final int batchSize;
  private final int[] order;
  private int cursor;
  private long step;

  /**
   * @param name run id, e.g. {@code seed-1}
   * @param seed initial weights and mini-batch order
   * @param hidden widths of the hidden layers
   */
  public TrainingRun(
      String name,
      long seed,
      Dataset train,
      int[] hidden,
      int batchSize,
      double learningRate,
      double weightDecay) {
    this.name = name;
    this.train = train;
    this.rnd = new SplittableRandom(seed);
    int[] widths = new int[hidden.length + 2];
    widths[0] = train.dims();
    System.arraycopy(hidden, 0, widths, 1, hidden.length);
    widths[widths.length - 1] = train.classes();
    this.model = ReluMlp.init(rnd, widths);
    this.adam = new Adam(model.parameters(), learningRate, weightDecay);
    this.batchSize = Math.min(batchSize, train.rows());
    this.order = new int[train.rows()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    this.cursor = order.length; // shuffle before the first batch
  }

  /** Run id. */
  public String name() {
    return name;
  }

  /** Optimiser steps taken so far. */
  public long step() {
    return step;
  }

  /** Epochs (passes over the training set) so far. */
  public long epoch() {
    return step * batchSize / train.rows();
  }

  /** The live model; read it only on the owning thread. */
  public ReluMlp model() {
    return model;
  }

  /** Takes {@code steps} optimiser steps; returns their mean mini-batch loss (NaN for 0 steps). */
  public double train(long steps) {
    double sum = 0;
    for (long s = 0; s < steps; s++) {
      ReluMlp.Gradient g = model.lossAndGradient(train, nextBatch());
      adam.step(model.parameters(), g.values());
      sum += g.loss();
      step++;
    }
    return steps == 0 ? Double.NaN : sum / steps;
  }

  private int[] nextBatch() {
    if (cursor + batchSize > order.length) {
      for (int i = order.length - 1; i > 0; i--) {
        int j = rnd.nextInt(i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      cursor = 0;
    }
    int[] batch = java.util.Arrays.copyOfRange(order, cursor, cursor + batchSize);
    cursor += batchSize;
    return batch;
  }
}
