package io.probestream.trainer;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.contracts.checkpoint.CheckpointManifest;
import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.safetensors.DType;
import io.probestream.contracts.safetensors.Safetensors;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SimulatedTrainerTest {
  /** Records what the trainer publishes, in order. */
  private static final class Recording implements SimulatedTrainer.Sink {
    final List<String> events = new ArrayList<>();
    final List<byte[]> reference = new ArrayList<>();
    final List<byte[]> models = new ArrayList<>();
    final List<CheckpointManifest> manifests = new ArrayList<>();

    @Override
    public void reference(String experiment, List<byte[]> batches) {
      events.add("reference " + experiment + " " + batches.size());
      reference.addAll(batches);
    }

    @Override
    public CheckpointManifest.Blob blob(String experiment, byte[] model) {
      models.add(model);
      events.add("blob " + experiment);
      return new CheckpointManifest.Blob(ProbeResult.sha256Hex(model), model.length, 1);
    }

    @Override
    public void checkpoint(CheckpointManifest m) {
      manifests.add(m);
      events.add("checkpoint " + m.run() + "@" + m.step());
    }
  }

  private static Recording train(int seeds, long steps, long every) throws Exception {
    Recording sink = new Recording();
    List<SimulatedTrainer.Checkpoint> seen = new ArrayList<>();
    new SimulatedTrainer(SimulatedTrainer.Options.standard("sim", seeds, steps, every, 0))
        .run(sink, seen::add);
    assertThat(seen).hasSize(sink.manifests.size());
    assertThat(seen.stream().filter(SimulatedTrainer.Checkpoint::last).count()).isEqualTo(1);
    assertThat(seen.get(seen.size() - 1).last()).isTrue();
    return sink;
  }

  @Test
  void publishesTheReferenceSetThenEachCheckpointAsBlobAndManifest() throws Exception {
    Recording r = train(2, 50, 20);
    assertThat(r.events)
        .containsExactly(
            "reference sim 4",
            "blob sim",
            "checkpoint seed-1@20",
            "blob sim",
            "checkpoint seed-2@20",
            "blob sim",
            "checkpoint seed-1@40",
            "blob sim",
            "checkpoint seed-2@40",
            "blob sim",
            "checkpoint seed-1@50",
            "blob sim",
            "checkpoint seed-2@50");
    Safetensors last = Safetensors.parse(r.reference.get(3));
    assertThat(last.tensor("input").dtype()).isEqualTo(DType.F32);
    assertThat(last.tensor("input").shape()).containsExactly(250, 20);
    assertThat(last.tensor("labels").dtype()).isEqualTo(DType.I64);
    assertThat(last.tensor("labels").shape()).containsExactly(250);
    assertThat(last.floats("input"))
        .containsExactly(SyntheticTask.standard().reference().slice(750, 1000).inputs());

    CheckpointManifest m = r.manifests.get(4);
    assertThat(m.experiment()).isEqualTo("sim");
    assertThat(m.run()).isEqualTo("seed-1");
    assertThat(m.step()).isEqualTo(50);
    assertThat(m.epoch()).isEqualTo(3); // 50 × 32 / 500 = 3.2 passes
    assertThat(m.input()).isEqualTo("input");
    assertThat(m.layers())
        .containsExactly(java.util.Map.entry("h1", "h1"), java.util.Map.entry("h2", "h2"));
    assertThat(m.logits()).isEqualTo("logits");
    assertThat(m.classifierWeight()).isEqualTo("classifier.weight");
    assertThat(m.classes()).isEqualTo(5);
    assertThat(m.metrics()).containsOnlyKeys("loss", "accuracy", "val_loss", "val_accuracy");
    // the manifest's training loss is the model's own, on the training set
    TrainingRun again =
        new SimulatedTrainer(SimulatedTrainer.Options.standard("sim", 2, 50, 20, 0)).runs().get(0);
    again.train(50);
    assertThat(m.metrics().get("loss"))
        .isEqualTo(again.model().evaluate(SyntheticTask.standard().train()).loss());
    assertThat(((CheckpointManifest.Blob) m.model()).sha256())
        .isEqualTo(ProbeResult.sha256Hex(OnnxExport.toOnnx(again.model())));
  }

  @Test
  void checkpointsAreDeterministicForASeedAndDifferBetweenSeeds() throws Exception {
    Recording a = train(3, 40, 20);
    Recording b = train(3, 40, 20);
    assertThat(a.models).hasSize(6);
    for (int i = 0; i < a.models.size(); i++) {
      assertThat(b.models.get(i)).as("checkpoint %d", i).isEqualTo(a.models.get(i));
      assertThat(b.manifests.get(i)).isEqualTo(a.manifests.get(i));
    }
    assertThat(a.models.get(3)).isNotEqualTo(a.models.get(4)); // seed-1 and seed-2 at step 40
    // one seed trained alone gives the same checkpoints: runs do not share state
    Recording alone = train(1, 40, 20);
    assertThat(alone.models.get(1)).isEqualTo(a.models.get(3));
  }

  @Test
  void rejectsOptionsOutOfRange() {
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> SimulatedTrainer.Options.standard("sim", 3, 100, 200, 0))
        .hasMessage("checkpoint-every = 200: must be 1..steps (100)");
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> SimulatedTrainer.Options.standard("sim", 0, 100, 10, 0))
        .hasMessage("seeds = 0: must be 1..64");
  }
}
