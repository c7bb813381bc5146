package io.probestream.contracts.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.testkit.Mlp;
import io.probestream.testkit.OnnxModelBuilder;
import java.util.List;
import org.junit.jupiter.api.Test;

class AutoLayersTest {
  @Test
  void anMlpGivesEveryHiddenActivationAndNoDuplicateOfTheClassifierInput() {
    OnnxGraph g = OnnxGraph.parse(Mlp.random(1, 4, 8, 6, 5, 3).onnx());
    String feed = g.classifier("classifier.weight").featureTensor();
    assertThat(feed).isEqualTo("h3");
    assertThat(g.autoLayers(feed, 8)).containsExactly("h1", "h2", "h3");
    assertThat(g.autoLayers(feed, 2)).containsExactly("h2", "h3"); // nearest the logits
  }

  @Test
  void aResidualBlockGivesItsInnerAndOuterActivationsAndThePooledClassifierInput() {
    // stem = Relu(x); a = Relu(stem); block = Relu(a + stem); pooled = Flatten(GAP(block)).
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2, 3, 3)
            .matrix("w", new double[][] {{1, 0}, {0, 1}})
            .vector("b", 0, 0)
            .relu("x", "stem")
            .relu("stem", "a")
            .node("Add", new String[] {"a", "stem"}, new String[] {"sum"})
            .relu("sum", "block")
            .node("GlobalAveragePool", new String[] {"block"}, new String[] {"gap"})
            .node("Flatten", new String[] {"gap"}, new String[] {"pooled"})
            .linear("pooled", "w", "b", "logits")
            .output("logits", 2)
            .build();
    OnnxGraph g = OnnxGraph.parse(model);
    assertThat(g.autoLayers(g.classifierInputOf("logits"), 8))
        .isEqualTo(List.of("stem", "a", "block", "pooled"));
  }
}
