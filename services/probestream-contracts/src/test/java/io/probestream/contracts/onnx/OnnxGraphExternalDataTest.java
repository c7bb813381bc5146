package io.probestream.contracts.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.CodedOutputStream;
import io.probestream.testkit.OnnxModelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** ONNX external data as {@link OnnxGraph#externalData} finds it, and where its locations go. */
class OnnxGraphExternalDataTest {
  private static final double[][] W = {{1, 2, 3}, {4, 5, 6}};

  private static OnnxModelBuilder model(boolean external) {
    OnnxModelBuilder b = new OnnxModelBuilder().input("x", 3);
    if (external) {
      b.externalMatrix("w", W, "weights.bin").externalVector("b", "weights.bin", 7, 8);
    } else {
      b.matrix("w", W).vector("b", 7, 8);
    }
    return b.linear("x", "w", "b", "y").output("y", 2);
  }

  @Test
  void listsEachExternalInitializerWithItsEntries() {
    List<OnnxGraph.ExternalData> found = OnnxGraph.externalData(model(true).build());
    assertThat(found)
        .containsExactly(
            new OnnxGraph.ExternalData(
                "w", Map.of("location", "weights.bin", "offset", "0", "length", "24")),
            new OnnxGraph.ExternalData(
                "b", Map.of("location", "weights.bin", "offset", "24", "length", "8")));
    assertThat(found.get(1).location()).isEqualTo("weights.bin");
    assertThat(found.get(1).offset()).isEqualTo(24);
    assertThat(found.get(1).length()).isEqualTo(8);
  }

  @Test
  void anInlineModelHasNone() {
    assertThat(OnnxGraph.externalData(model(false).build())).isEmpty();
  }

  @Test
  void bytesThatAreNotOnnxAreAFormatError() {
    assertThatThrownBy(() -> OnnxGraph.externalData(new byte[] {(byte) 0x3a, 0x7f, 0x01}))
        .isInstanceOf(OnnxFormatException.class);
  }

  @Test
  void aTensorInANodeAttributeOfASubgraphIsFoundToo() {
    // graph → node(If) → attribute g → graph → node(Constant) → attribute t → external tensor:
    // ORT would read it as well, so the scan must reach it.
    byte[] tensor =
        msg(
            o -> {
              o.writeInt64(1, 2);
              o.writeInt32(2, 1);
              o.writeString(8, "deep");
              o.writeByteArray(13, entry("location", "/etc/passwd"));
              o.writeEnum(14, 1);
            });
    byte[] constant =
        msg(
            o -> {
              o.writeString(2, "c");
              o.writeString(4, "Constant");
              o.writeByteArray(5, msg(a -> a.writeByteArray(5, tensor))); // attribute.t
            });
    byte[] subgraph = msg(o -> o.writeByteArray(1, constant));
    byte[] ifNode =
        msg(
            o -> {
              o.writeString(4, "If");
              o.writeByteArray(5, msg(a -> a.writeByteArray(6, subgraph))); // attribute.g
            });
    byte[] model =
        msg(
            o -> {
              o.writeInt64(1, 8);
              o.writeByteArray(7, msg(g -> g.writeByteArray(1, ifNode)));
            });
    List<OnnxGraph.ExternalData> found = OnnxGraph.externalData(model);
    assertThat(found).extracting(OnnxGraph.ExternalData::tensor).containsExactly("deep");
    assertThat(found.get(0).escape()).isEqualTo("it is absolute");
  }

  @ParameterizedTest(name = "''{0}'' → {1}")
  @CsvSource(
      delimiter = '|',
      quoteCharacter = '"',
      value = {
        "weights.bin | ",
        "sub/weights.bin | ",
        "./weights.bin | ",
        "a..b.bin | ",
        "../weights.bin | it contains '..'",
        "sub/../../weights.bin | it contains '..'",
        "..\\weights.bin | it contains '..'",
        "/etc/passwd | it is absolute",
        "\\\\host\\share\\w.bin | it is absolute",
        "C:\\w.bin | it is absolute",
        "*/_ORT_MEM_ADDR_/* | it is not a file name",
      })
  void aLocationMayNameOnlyAFileInsideTheModelsDirectory(String location, String escape) {
    OnnxGraph.ExternalData e = new OnnxGraph.ExternalData("w", Map.of("location", location));
    assertThat(e.escape()).isEqualTo(escape);
  }

  @Test
  void anAbsentLocationAndANegativeOffsetAreRefused() {
    assertThat(new OnnxGraph.ExternalData("w", Map.of()).escape())
        .isEqualTo("it names no location");
    assertThatThrownBy(
            () -> new OnnxGraph.ExternalData("w", Map.of("location", "a", "offset", "-4")).offset())
        .isInstanceOf(OnnxFormatException.class)
        .hasMessage("tensor 'w' has external_data offset = '-4'; must be ≥ 0");
  }

  @Test
  void theClassifierReadsAnExternalWeightThroughTheGivenReader() {
    OnnxGraph graph = OnnxGraph.parse(model(true).build());
    ByteBuffer raw = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    raw.asFloatBuffer().put(new float[] {1, 2, 3, 4, 5, 6});
    OnnxGraph.Classifier c = graph.classifier("w", name -> name.equals("w") ? raw.array() : null);
    // Gemm with transB = 1: W is C × d as written.
    assertThat(c.weight()).isEqualTo(W);
    assertThat(c.featureTensor()).isEqualTo("x");
    assertThatThrownBy(() -> graph.classifier("w"))
        .isInstanceOf(OnnxFormatException.class)
        .hasMessageContaining("has no inline data");
  }

  private interface Body {
    void write(CodedOutputStream o) throws IOException;
  }

  private static byte[] entry(String key, String value) {
    return msg(
        o -> {
          o.writeString(1, key);
          o.writeString(2, value);
        });
  }

  private static byte[] msg(Body body) {
    try {
      ByteArrayOutputStream bos = new ByteArrayOutputStream();
      CodedOutputStream o = CodedOutputStream.newInstance(bos);
      body.write(o);
      o.flush();
      return bos.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
