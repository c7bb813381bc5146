package io.probestream.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ReluMlpTest {
  @Test
  void gradientMatchesCentralFiniteDifferences() {
    SplittableRandom rnd = new SplittableRandom(3);
    ReluMlp mlp = ReluMlp.init(rnd, 6, 5, 4, 3);
    for (double[] p : mlp.parameters()) {
      for (int i = 0; i < p.length; i++) {
        p[i] += 0.1 * ReluMlp.gaussian(rnd); // non-zero biases, so no unit sits at its kink
      }
    }
    float[] x = new float[7 * 6];
    long[] y = new long[7];
    for (int i = 0; i < 7; i++) {
      y[i] = i % 3;
      for (int j = 0; j < 6; j++) {
        x[i * 6 + j] = (float) ReluMlp.gaussian(rnd);
      }
    }
    Dataset data = new Dataset(x, y, 6, 3);
    int[] rows = {0, 1, 2, 3, 4, 5, 6, 2};
    ReluMlp.Gradient g = mlp.lossAndGradient(data, rows);
    double[][] params = mlp.parameters();
    // Central differences have error O(h²·L''') ≈ 1e-10 at h = 1e-5, and cancellation ≈
    // 1e-16 / 1e-5 = 1e-11; the ReLU kinks are at least ~1e-3 away for these draws, so 1e-7
    // absolute is a margin of about 1000 over both.
    double h = 1e-5;
    int checked = 0;
    for (int p = 0; p < params.length; p++) {
      for (int i = 0; i < params[p].length; i++) {
        double keep = params[p][i];
        params[p][i] = keep + h;
        double up = mlp.lossAndGradient(data, rows).loss();
        params[p][i] = keep - h;
        double down = mlp.lossAndGradient(data, rows).loss();
        params[p][i] = keep;
        assertThat(g.values()[p][i])
            .as("parameter %d[%d]", p, i)
            .isCloseTo((up - down) / (2 * h), org.assertj.core.api.Assertions.within(1e-7));
        checked++;
      }
    }
    assertThat(checked).isEqualTo(5 * 6 + 5 + 4 * 5 + 4 + 3 * 4 + 3);
  }

  @Test
  void trainingFitsTheTrainingSet() {
    SyntheticTask task = SyntheticTask.standard();
    Dataset train = task.train();
    TrainingRun run = new TrainingRun("seed-1", 1, train, new int[] {64, 32}, 32, 3e-3, 0.05);
    ReluMlp.Evaluation before = run.model().evaluate(train);
    run.train(400);
    ReluMlp.Evaluation after = run.model().evaluate(train);
    // He-initialised logits on inputs of norm ~6 are a few units apart, so a fresh model starts
    // above chance's ln 5 = 1.609 (3.36 for this seed).
    assertThat(before.loss()).isGreaterThan(Math.log(5));
    // 400 steps of 32 = 25.6 epochs; the 500 training samples are separable and get fitted.
    assertThat(after.loss()).isLessThan(0.05);
    assertThat(after.accuracy()).isEqualTo(1.0);
    assertThat(run.step()).isEqualTo(400);
    assertThat(run.epoch()).isEqualTo(25);
  }

  @Test
  void theBayesClassifierOfTheStandardTaskIsRightOn98PercentOfTheReferenceSet() {
    // The javadoc's figure: argmax over classes of the sum of the class's mode likelihoods.
    SyntheticTask task = SyntheticTask.standard();
    double[][][] centres = task.centres();
    Dataset ref = task.reference();
    int correct = 0;
    for (int i = 0; i < ref.rows(); i++) {
      double[] x = ref.row(i);
      int best = 0;
      double bestLikelihood = -1;
      for (int k = 0; k < task.classes(); k++) {
        double likelihood = 0;
        for (double[] mu : centres[k]) {
          double q = 0;
          for (int j = 0; j < x.length; j++) {
            q += (x[j] - mu[j]) * (x[j] - mu[j]);
          }
          likelihood += Math.exp(-q / 2);
        }
        if (likelihood > bestLikelihood) {
          bestLikelihood = likelihood;
          best = k;
        }
      }
      correct += best == ref.labels()[i] ? 1 : 0;
    }
    assertThat(correct).isEqualTo(980);
  }
}
