package io.probestream.contracts.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.WireFormat;
import io.probestream.contracts.onnx.OnnxGraph.Dim;
import io.probestream.contracts.onnx.OnnxGraph.Initializer;
import io.probestream.contracts.onnx.OnnxGraph.Node;
import io.probestream.contracts.onnx.OnnxGraph.ValueInfo;
import io.probestream.testkit.Mlp;
import io.probestream.testkit.OnnxModelBuilder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class OnnxGraphTest {
  private static final int FLOAT = 1; // TensorProto.DataType.FLOAT in onnx.proto

  /** widths in=4, hidden=3, classes=2: Gemm → Relu → Gemm. */
  private static final Mlp MLP = Mlp.random(11, 4, 3, 2);

  /** d = 3 features, C = 2 classes, written d × C as Gemm transB=0 and MatMul expect. */
  private static final double[][] W_D_BY_C = {{1, 2}, {3, 4}, {5, 6}};

  /** The same classifier with rows = classes (C × d), the transpose of {@link #W_D_BY_C}. */
  private static final double[][] W_C_BY_D = {{1, 3, 5}, {2, 4, 6}};

  private static List<String> names(List<ValueInfo> values) {
    return values.stream().map(ValueInfo::name).toList();
  }

  private static List<String> dims(ValueInfo v) {
    return v.dims().stream().map(Dim::toString).toList();
  }

  @Test
  void parsesTheTestkitMlp() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThat(names(g.inputs())).containsExactly("input");
    assertThat(names(g.outputs())).containsExactly("h1", "logits");
    assertThat(g.nodes()).extracting(Node::opType).containsExactly("Gemm", "Relu", "Gemm");
    assertThat(g.nodeOutputs()).containsExactly("z1", "h1", "logits");
    assertThat(g.initializers().keySet())
        .containsExactly("fc1.weight", "fc1.bias", "classifier.weight", "classifier.bias");

    Node first = g.nodes().get(0);
    assertThat(first.name()).isEqualTo("gemm_0");
    assertThat(first.inputs()).containsExactly("input", "fc1.weight", "fc1.bias");
    assertThat(first.outputs()).containsExactly("z1");
    assertThat(first.ints()).isEqualTo(Map.of("transB", 1L));
    assertThat(first.intAttribute("transB", 0)).isEqualTo(1);
    assertThat(first.intAttribute("transA", 0)).isZero();
    assertThat(g.nodes().get(1).ints()).isEmpty();
  }

  @Test
  void readsInputAndOutputShapesIncludingTheSymbolicBatch() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    ValueInfo input = g.input("input");
    assertThat(input.elemType()).isEqualTo(FLOAT);
    assertThat(input.rank()).isEqualTo(2);
    assertThat(input.dims()).containsExactly(new Dim(-1, "N"), new Dim(4, null));
    assertThat(input.dims().get(0).fixed()).isFalse();
    assertThat(input.dims().get(1).fixed()).isTrue();
    assertThat(dims(input)).containsExactly("N", "4");
    assertThat(dims(g.outputs().get(0))).containsExactly("N", "3");
    assertThat(dims(g.outputs().get(1))).containsExactly("N", "2");
  }

  @Test
  void readsInitializerDimsAndValues() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 3)
            .initializer("t", new long[] {2, 3}, new float[] {1f, -2f, 3.5f, 0f, 1e-3f, 7f})
            .vector("b", 0.5, -0.25)
            .linear("x", "t", "b", "y")
            .output("y", 2)
            .build();

    OnnxGraph g = OnnxGraph.parse(model);

    Initializer t = g.initializers().get("t");
    assertThat(t.dataType()).isEqualTo(FLOAT);
    assertThat(t.dims()).containsExactly(2, 3);
    // Widening float32 to float64 is exact, so the expected values are the floats themselves.
    assertThat(t.values()).containsExactly(1.0, -2.0, 3.5, 0.0, (double) 1e-3f, 7.0);
    assertThat(g.initializers().get("b").dims()).containsExactly(2);
    assertThat(g.initializers().get("b").values()).containsExactly(0.5, -0.25);
  }

  @Test
  void theMlpClassifierInitializerHoldsTheBuildersWeights() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());
    double[][] w = MLP.classifierWeight();

    Initializer c = g.initializers().get("classifier.weight");
    assertThat(c.dims()).containsExactly(2, 3);
    assertThat(c.values())
        .containsExactly(Arrays.stream(w).flatMapToDouble(Arrays::stream).toArray());
  }

  @Test
  void inputsLeaveOutInitializersListedAsGraphInputs() {
    // IR < 4 style: the weight is also declared as a graph input.
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 3)
            .input("W", 2)
            .input("b", 2)
            .matrix("W", W_C_BY_D)
            .vector("b", 0, 0)
            .linear("x", "W", "b", "logits")
            .output("logits", 2)
            .build();

    OnnxGraph g = OnnxGraph.parse(model);

    assertThat(names(g.inputs())).containsExactly("x");
    assertThatThrownBy(() -> g.input("W"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("the model has no input 'W'; its inputs are [x]");
  }

  @Test
  void anUnknownInputListsTheModelsInputs() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThatThrownBy(() -> g.input("pixels"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("the model has no input 'pixels'; its inputs are [input]");
  }

  @Test
  void hasTensorAndIsOutput() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThat(g.hasTensor("input")).isTrue();
    assertThat(g.hasTensor("z1")).isTrue();
    assertThat(g.hasTensor("h1")).isTrue();
    assertThat(g.hasTensor("logits")).isTrue();
    assertThat(g.hasTensor("h2")).isFalse();
    // Initializers are neither produced by a node nor graph inputs here.
    assertThat(g.hasTensor("fc1.weight")).isFalse();

    assertThat(g.isOutput("h1")).isTrue();
    assertThat(g.isOutput("logits")).isTrue();
    assertThat(g.isOutput("z1")).isFalse();
    assertThat(g.isOutput("input")).isFalse();
  }

  @Test
  void classifierOfAGemmWithTransB1IsTheWeightAsStored() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    OnnxGraph.Classifier c = g.classifier("classifier.weight");

    assertThat(c.featureTensor()).isEqualTo("h1");
    assertThat(c.weight()).isDeepEqualTo(MLP.classifierWeight());
  }

  @Test
  void classifierOfAGemmWithTransB0IsTheTranspose() {
    byte[] implicit =
        new OnnxModelBuilder()
            .input("h", 3)
            .matrix("W", W_D_BY_C)
            .vector("b", 0.5, -0.5)
            .node("Gemm", new String[] {"h", "W", "b"}, new String[] {"logits"})
            .output("logits", 2)
            .build();
    byte[] explicit =
        new OnnxModelBuilder()
            .input("h", 3)
            .matrix("W", W_D_BY_C)
            .vector("b", 0.5, -0.5)
            .node("Gemm", new String[] {"h", "W", "b"}, new String[] {"logits"}, "transB", 0)
            .output("logits", 2)
            .build();

    for (byte[] model : List.of(implicit, explicit)) {
      OnnxGraph.Classifier c = OnnxGraph.parse(model).classifier("W");
      assertThat(c.featureTensor()).isEqualTo("h");
      assertThat(c.weight()).isDeepEqualTo(W_C_BY_D);
    }
  }

  @Test
  void classifierOfAGemmWithTransB1GivenByHand() {
    byte[] model =
        new OnnxModelBuilder()
            .input("h", 3)
            .matrix("W", W_C_BY_D)
            .vector("b", 0.5, -0.5)
            .linear("h", "W", "b", "logits")
            .output("logits", 2)
            .build();

    OnnxGraph.Classifier c = OnnxGraph.parse(model).classifier("W");

    assertThat(c.featureTensor()).isEqualTo("h");
    assertThat(c.weight()).isDeepEqualTo(W_C_BY_D);
  }

  private static byte[] matMulAdd(boolean biasFirst) {
    String[] add = biasFirst ? new String[] {"b", "mm"} : new String[] {"mm", "b"};
    return new OnnxModelBuilder()
        .input("x", 3)
        .matrix("W", W_D_BY_C)
        .vector("b", 0.5, -0.5)
        .node("MatMul", new String[] {"x", "W"}, new String[] {"mm"})
        .node("Add", add, new String[] {"logits"})
        .output("logits", 2)
        .build();
  }

  @Test
  void classifierOfAMatMulIsTheTranspose() {
    OnnxGraph.Classifier c = OnnxGraph.parse(matMulAdd(false)).classifier("W");

    assertThat(c.featureTensor()).isEqualTo("x");
    assertThat(c.weight()).isDeepEqualTo(W_C_BY_D);
  }

  @Test
  void classifierWithTransARejected() {
    byte[] model =
        new OnnxModelBuilder()
            .input("h", 3)
            .matrix("W", W_C_BY_D)
            .vector("b", 0, 0)
            .node(
                "Gemm",
                new String[] {"h", "W", "b"},
                new String[] {"logits"},
                "transA",
                1,
                "transB",
                1)
            .output("logits", 2)
            .build();
    OnnxGraph g = OnnxGraph.parse(model);

    assertThatThrownBy(() -> g.classifier("W"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("classifier node 'gemm_0' is a Gemm with transA=1, which is not supported");
    assertThat(g.classifierInputOf("logits")).isNull();
  }

  @Test
  void classifierOfAMissingInitializerListsThe2dInitializers() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThatThrownBy(() -> g.classifier("fc9.weight"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage(
            "the model has no initializer 'fc9.weight'; 2-D initializers are"
                + " [fc1.weight, classifier.weight]");
  }

  @Test
  void classifierOfA1dInitializerIsAnError() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThatThrownBy(() -> g.classifier("classifier.bias"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("classifier weight 'classifier.bias' has 1 dimensions; 2 are needed");
  }

  @Test
  void classifierOfAnInitializerThatIsNotAWeightIsAnError() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .matrix("A", new double[][] {{1, 0}, {0, 1}})
            .matrix("unused", new double[][] {{1, 2}, {3, 4}})
            .matrix("M", new double[][] {{2, 0}, {0, 2}})
            // A is Gemm's input A, not its weight B; M feeds a Mul, which is no classifier.
            .node("Gemm", new String[] {"A", "x"}, new String[] {"y"})
            .node("Mul", new String[] {"y", "M"}, new String[] {"z"})
            .output("z", 2)
            .build();
    OnnxGraph g = OnnxGraph.parse(model);

    for (String name : List.of("A", "unused", "M")) {
      assertThatThrownBy(() -> g.classifier(name))
          .isInstanceOf(OnnxFormatException.class)
          .hasMessage(
              "initializer '" + name + "' is not the weight (input B) of a Gemm or MatMul node");
    }
  }

  @Test
  void classifierInputOfFollowsGemmMatMulAndAddOfMatMul() {
    OnnxGraph mlp = OnnxGraph.parse(MLP.onnx());
    assertThat(mlp.classifierInputOf("logits")).isEqualTo("h1");
    assertThat(mlp.classifierInputOf("z1")).isEqualTo("input");
    assertThat(mlp.classifierInputOf("h1")).as("a Relu feeds no classifier").isNull();
    assertThat(mlp.classifierInputOf("nope")).as("no producer").isNull();

    assertThat(OnnxGraph.parse(matMulAdd(false)).classifierInputOf("logits")).isEqualTo("x");
    assertThat(OnnxGraph.parse(matMulAdd(true)).classifierInputOf("logits")).isEqualTo("x");
    assertThat(OnnxGraph.parse(matMulAdd(false)).classifierInputOf("mm")).isEqualTo("x");
  }

  @Test
  void classifierInputOfAnAddOfNoMatMulIsNull() {
    byte[] model =
        new OnnxModelBuilder()
            .input("x", 2)
            .vector("b", 1, 1)
            .relu("x", "r")
            .node("Add", new String[] {"r", "b"}, new String[] {"logits"})
            .output("logits", 2)
            .build();

    assertThat(OnnxGraph.parse(model).classifierInputOf("logits")).isNull();
  }

  @Test
  void producerOfFindsTheNodeOrNull() {
    OnnxGraph g = OnnxGraph.parse(MLP.onnx());

    assertThat(g.producerOf("h1").name()).isEqualTo("relu_1");
    assertThat(g.producerOf("input")).isNull();
  }

  /** A protobuf tag: field number and wire type 2 (length-delimited), per the encoding spec. */
  private static int lengthDelimited(int field) {
    return field << 3 | WireFormat.WIRETYPE_LENGTH_DELIMITED;
  }

  /** Graph output names exactly as the bytes list them, every graph field merged, by hand. */
  private static List<String> rawGraphOutputs(byte[] model) throws IOException {
    List<String> names = new ArrayList<>();
    CodedInputStream in = CodedInputStream.newInstance(model);
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (tag != lengthDelimited(7)) {
        in.skipField(tag);
        continue;
      }
      CodedInputStream graph = CodedInputStream.newInstance(in.readByteArray());
      for (int t = graph.readTag(); t != 0; t = graph.readTag()) {
        if (t != lengthDelimited(12)) {
          graph.skipField(t);
          continue;
        }
        CodedInputStream value = CodedInputStream.newInstance(graph.readByteArray());
        for (int u = value.readTag(); u != 0; u = value.readTag()) {
          if (u == lengthDelimited(1)) {
            names.add(value.readStringRequireUtf8());
          } else {
            value.skipField(u);
          }
        }
      }
    }
    return names;
  }

  @Test
  void withOutputsAppendsOutputsThatAReparseLists() throws IOException {
    byte[] model = MLP.onnx();

    byte[] exposed = OnnxGraph.withOutputs(model, List.of("z1"));
    OnnxGraph g = OnnxGraph.parse(exposed);

    assertThat(rawGraphOutputs(exposed)).containsExactly("h1", "logits", "z1");
    assertThat(names(g.outputs())).containsExactly("h1", "logits", "z1");
    assertThat(g.isOutput("z1")).isTrue();
    assertThat(g.outputs().get(2).rank()).as("no declared shape; ORT infers it").isEqualTo(-1);
    assertThat(dims(g.outputs().get(1))).containsExactly("N", "2");
    assertThat(g.nodes()).extracting(Node::name).containsExactly("gemm_0", "relu_1", "gemm_2");
    assertThat(names(g.inputs())).containsExactly("input");
    assertThat(g.initializers().keySet())
        .containsExactly("fc1.weight", "fc1.bias", "classifier.weight", "classifier.bias");
    assertThat(g.classifier("classifier.weight").weight()).isDeepEqualTo(MLP.classifierWeight());
  }

  @Test
  void withOutputsDoesNotDuplicateAnExistingOutputInTheReparse() {
    OnnxGraph g = OnnxGraph.parse(OnnxGraph.withOutputs(MLP.onnx(), List.of("logits", "z1")));

    assertThat(names(g.outputs())).containsExactly("h1", "logits", "z1");
    assertThat(dims(g.outputs().get(1))).as("the declared shape wins").containsExactly("N", "2");
  }

  @Test
  void withOutputsLeavesOutNamesAlreadyListedInTheBytes() throws IOException {
    // The Javadoc promises this of the bytes ORT will read, not only of OnnxGraph's own re-parse.
    byte[] exposed = OnnxGraph.withOutputs(MLP.onnx(), List.of("logits", "z1"));

    assertThat(rawGraphOutputs(exposed)).containsExactly("h1", "logits", "z1");
  }

  @Test
  void parseOfEmptyBytesSaysItIsNotOnnx() {
    assertThatThrownBy(() -> OnnxGraph.parse(new byte[0]))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("not an ONNX model: no ir_version field (0 bytes)");
  }

  @Test
  void parseOfAModelWithoutAGraphSaysSo() {
    // Field 1 (ir_version) as a varint: tag (1 << 3 | 0) = 0x08, value 8.
    assertThatThrownBy(() -> OnnxGraph.parse(new byte[] {0x08, 0x08}))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("not an ONNX model: no graph field (2 bytes)");
  }

  @Test
  void parseOfRandomBytesThrows() {
    for (long seed = 1; seed <= 8; seed++) {
      byte[] bytes = new byte[256];
      new Random(seed).nextBytes(bytes);
      assertThatThrownBy(() -> OnnxGraph.parse(bytes))
          .as("seed %d", seed)
          .isInstanceOf(OnnxFormatException.class)
          .hasMessageStartingWith("not an ONNX model");
    }
  }

  @Test
  void parseOfJsonTextThrows() {
    byte[] bytes = "{\"not\": \"onnx\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8);

    assertThatThrownBy(() -> OnnxGraph.parse(bytes))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessageStartingWith("not an ONNX model");
  }

  @Test
  void parseOfATruncatedModelThrows() {
    byte[] model = MLP.onnx();
    // 1: inside ir_version; half: inside the graph; length - 1: inside the trailing opset import.
    for (int length : new int[] {1, 10, model.length / 2, model.length - 1}) {
      byte[] cut = Arrays.copyOf(model, length);
      assertThatThrownBy(() -> OnnxGraph.parse(cut))
          .as("first %d of %d bytes", length, model.length)
          .isInstanceOf(OnnxFormatException.class)
          .hasMessageStartingWith("not an ONNX model");
    }
  }

  private static byte[] littleEndianFloats(float... v) {
    ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.array();
  }

  @Test
  void initializerValuesFromFloatDataAndDoubleRawData() {
    Initializer fromFloatData =
        new Initializer("f", FLOAT, new long[] {2}, null, new float[] {1.5f, -3f});
    ByteBuffer doubles = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    doubles.putDouble(0.1).putDouble(-2.0);
    Initializer fromDoubles = new Initializer("d", 11, new long[] {2}, doubles.array(), null);

    assertThat(fromFloatData.values()).containsExactly(1.5, -3.0);
    assertThat(fromDoubles.values()).containsExactly(0.1, -2.0);
  }

  @Test
  void initializerWithoutInlineDataIsAnError() {
    Initializer external = new Initializer("w", FLOAT, new long[] {2, 2}, null, null);

    assertThatThrownBy(external::values)
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("initializer 'w' has no inline data (external data is not read here)");
  }

  @Test
  void initializerOfAnotherDataTypeIsAnErrorNotReinterpretedBytes() {
    // INT64 (7) raw data holding 1 and 2: read as doubles these would be 4.9e-324 and 9.9e-324.
    ByteBuffer longs = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    longs.putLong(1).putLong(2);
    Initializer int64 = new Initializer("w", 7, new long[] {2}, longs.array(), null);
    // FLOAT16 (10): 2 bytes per value, 0x3C00 = 1.0 twice.
    Initializer half =
        new Initializer("h", 10, new long[] {2}, new byte[] {0, 0x3C, 0, 0x3C}, null);

    assertThatThrownBy(int64::values)
        .isInstanceOf(OnnxFormatException.class)
        .hasMessageContaining("initializer 'w'")
        .hasMessageContaining("7");
    assertThatThrownBy(half::values)
        .isInstanceOf(OnnxFormatException.class)
        .hasMessageContaining("initializer 'h'")
        .hasMessageContaining("10");
  }

  @Test
  void initializerWithTooFewRawBytesIsAnError() {
    Initializer shortRaw =
        new Initializer("w", FLOAT, new long[] {2, 2}, littleEndianFloats(1f, 2f, 3f), null);

    assertThatThrownBy(shortRaw::values)
        .isInstanceOf(OnnxFormatException.class)
        .hasMessageContaining("initializer 'w'")
        .hasMessageContaining("12");
  }
}
