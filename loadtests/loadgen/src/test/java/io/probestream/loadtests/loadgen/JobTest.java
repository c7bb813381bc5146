package io.probestream.loadtests.loadgen;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.contracts.safetensors.Safetensors;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class JobTest {

  @Test
  void defaultsAreTheIssuesJob() {
    Job job = Job.parse(new String[] {"--bootstrap-servers", "k:9092"});
    assertThat(job.widths()).containsExactly(784, 512, 256, 10);
    assertThat(job.layers()).containsExactly("h1", "h2");
    assertThat(job.classes()).isEqualTo(10);
    assertThat(job.referenceSamples()).isEqualTo(10_000);
    assertThat(job.resultsPerCheckpoint()).isEqualTo(2);
    assertThat(job.topicPrefix()).isEqualTo("probestream.");
    assertThat(job.liveSenders()).isEqualTo(4);
    assertThat(job.distinctModels()).isTrue();
    assertThat(job.experiment()).startsWith("loadgen-");
    assertThat(job.out()).isEqualTo(Path.of("loadgen"));
  }

  @Test
  void optionsOverrideAndUnknownOnesAreRefused() {
    Job job =
        Job.parse(
            new String[] {
              "--bootstrap-servers", "k:9092", "--widths", "20,16,5", "--runs", "3",
              "--live-rate", "12.5", "--results-per-checkpoint", "4", "--experiment", "e"
            });
    assertThat(job.layers()).containsExactly("h1");
    assertThat(job.runs()).isEqualTo(3);
    assertThat(job.liveRate()).isEqualTo(12.5);
    assertThat(job.resultsPerCheckpoint()).isEqualTo(4);
    assertThat(job.experiment()).isEqualTo("e");
    assertThatThrownBy(() -> Job.parse(new String[] {"--bootstrap-servers", "k", "--nope", "1"}))
        .hasMessageContaining("unknown option(s) [nope]");
    assertThatThrownBy(() -> Job.parse(new String[] {"--runs", "1"}))
        .hasMessageContaining("--bootstrap-servers is required");
    assertThatThrownBy(
            () -> Job.parse(new String[] {"--bootstrap-servers", "k", "--widths", "20,5"}))
        .hasMessageContaining("--widths needs");
  }

  @Test
  void batchesFollowTheTopicContract() {
    Workload w = new Workload(new int[] {6, 4, 3}, 9);
    Safetensors st = Safetensors.parse(w.batch(5, 7));
    assertThat(st.tensor("input").shape()).containsExactly(5, 6);
    assertThat(st.ints("labels")).containsExactly(1, 2, 0, 1, 2); // (7 + i) mod 3
    assertThat(w.batch(5, 7)).isEqualTo(w.batch(5, 7)); // deterministic in the seeds
    assertThat(w.model(1)).isEqualTo(w.model(1)).isNotEqualTo(w.model(2));
    assertThat(List.of(st.floats("input").length)).containsExactly(30);
  }
}
