package io.probestream.contracts.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SafetensorsTest {

  /** JSON written with single quotes, so headers stay readable in the test source. */
  private static String json(String singleQuoted) {
    return singleQuoted.replace('\'', '"');
  }

  /** 8-byte little-endian header length, the header bytes, then {@code dataBytes} zero bytes. */
  private static byte[] payload(String header, int dataBytes) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + h.length + dataBytes)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(h.length)
        .put(h)
        .array();
  }

  /** A declared header length followed by {@code rest}, whatever its size. */
  private static byte[] declared(long headerLength, byte[] rest) {
    return ByteBuffer.allocate(8 + rest.length)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(headerLength)
        .put(rest)
        .array();
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] withData(String header, ByteBuffer data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + h.length + data.capacity())
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(h.length)
        .put(h)
        .put(data.array())
        .array();
  }

  @Test
  void roundTripsEveryDtypeWithShapesOffsetsAndValues() {
    float[] pixels = {0f, 1.5f, -2.25f, 3e-8f, Float.MAX_VALUE, -7f};
    double[] weights = {0.1, -2.5, 1e-3, 123456.789};
    long[] labels = {0, 9, -1, Integer.MAX_VALUE};
    int[] mask = {1, 0, Integer.MAX_VALUE, Integer.MIN_VALUE};
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("pixels", pixels);
    values.put("weights", weights);
    values.put("labels", labels);
    values.put("mask", mask);
    values.put("scalar", new float[] {42f});
    values.put("empty", new float[0]);
    Map<String, long[]> shapes = new LinkedHashMap<>();
    shapes.put("pixels", new long[] {2, 3});
    shapes.put("weights", new long[] {2, 2});
    shapes.put("labels", new long[] {4});
    shapes.put("mask", new long[] {2, 2});
    shapes.put("scalar", new long[] {});
    shapes.put("empty", new long[] {0, 3});

    Safetensors st = Safetensors.parse(Safetensors.write(values, shapes));

    assertThat(st.tensors().keySet())
        .containsExactly("pixels", "weights", "labels", "mask", "scalar", "empty");
    // Offsets by hand: 6×4 = 24, then 4×8 = 32 (→56), 4×8 = 32 (→88), 4×4 = 16 (→104), 4 (→108).
    assertInfo(st.tensor("pixels"), DType.F32, new long[] {2, 3}, 0, 24);
    assertInfo(st.tensor("weights"), DType.F64, new long[] {2, 2}, 24, 56);
    assertInfo(st.tensor("labels"), DType.I64, new long[] {4}, 56, 88);
    assertInfo(st.tensor("mask"), DType.I32, new long[] {2, 2}, 88, 104);
    assertInfo(st.tensor("scalar"), DType.F32, new long[] {}, 104, 108);
    assertInfo(st.tensor("empty"), DType.F32, new long[] {0, 3}, 108, 108);

    assertThat(st.floats("pixels")).containsExactly(pixels);
    // F64 is narrowed to float32 by floats(): compare with Java's own narrowing of each value.
    assertThat(st.floats("weights"))
        .containsExactly((float) 0.1, -2.5f, (float) 1e-3, (float) 123456.789);
    assertThat(st.ints("labels")).containsExactly(0, 9, -1, Integer.MAX_VALUE);
    assertThat(st.ints("mask")).containsExactly(mask);
    assertThat(st.floats("scalar")).containsExactly(42f);
    assertThat(st.floats("empty")).isEmpty();
    assertThat(st.metadata()).isEmpty();
  }

  private static void assertInfo(TensorInfo t, DType dtype, long[] shape, long begin, long end) {
    assertThat(t.dtype()).isEqualTo(dtype);
    assertThat(t.shape()).containsExactly(shape);
    assertThat(t.begin()).isEqualTo(begin);
    assertThat(t.end()).isEqualTo(end);
  }

  @Test
  void writesTheExactBytesOfTheFormat() {
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("x", new float[] {1f, 2f});
    byte[] bytes = Safetensors.write(values, Map.of("x", new long[] {2}));

    // The header is 54 bytes, padded with two spaces to 56; 1.0f = 0x3F800000, 2.0f = 0x40000000.
    String header = json("{'x':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}");
    assertThat(header).hasSize(54);
    byte[] expected =
        ByteBuffer.allocate(8 + 56 + 8)
            .order(ByteOrder.LITTLE_ENDIAN)
            .putLong(56)
            .put(ascii(header + "  "))
            .put(new byte[] {0, 0, (byte) 0x80, 0x3F, 0, 0, 0, 0x40})
            .array();
    assertThat(bytes).containsExactly(expected);
  }

  @Test
  void padsTheHeaderWithSpacesToAMultipleOf8() {
    for (int nameLength = 1; nameLength <= 9; nameLength++) {
      String name = "t".repeat(nameLength);
      Map<String, Object> values = new LinkedHashMap<>();
      values.put(name, new int[] {nameLength});
      byte[] bytes = Safetensors.write(values, Map.of(name, new long[] {1}));

      long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      assertThat(headerLength % 8).as("header length for name %s", name).isZero();
      String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
      int jsonEnd = header.lastIndexOf('}') + 1;
      assertThat(header.substring(jsonEnd)).matches(" {0,7}");
      assertThat(bytes.length).isEqualTo(8 + headerLength + 4);
      assertThat(Safetensors.parse(bytes).ints(name)).containsExactly(nameLength);
    }
  }

  @Test
  void writesAnEmptyPayloadAsAnEmptyObject() {
    byte[] bytes = Safetensors.write(Map.of(), Map.of());

    assertThat(bytes).containsExactly(declared(8, ascii("{}      ")));
    assertThat(Safetensors.parse(bytes).tensors()).isEmpty();
  }

  @Test
  void readsAHandWrittenPayloadWithMetadataAndTrailingSpaces() {
    String header =
        json(
            "{'__metadata__':{'format':'pt','epoch':'3'},"
                + "'labels':{'dtype':'I64','shape':[2],'data_offsets':[8,24]},"
                + "'x':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}    ");
    ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    data.putFloat(0.5f).putFloat(-4f).putLong(3).putLong(-2);

    Safetensors st = Safetensors.parse(withData(header, data));

    assertThat(st.metadata()).containsExactly(Map.entry("format", "pt"), Map.entry("epoch", "3"));
    assertThat(st.tensors().keySet()).containsExactly("labels", "x");
    assertThat(st.floats("x")).containsExactly(0.5f, -4f);
    assertThat(st.ints("labels")).containsExactly(3, -2);
  }

  static Stream<Arguments> malformed() {
    String x = "'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}";
    return Stream.of(
        Arguments.of(
            "empty payload",
            new byte[0],
            "safetensors payload is 0 bytes; at least 8 are needed for the header length"),
        Arguments.of(
            "7 bytes",
            new byte[7],
            "safetensors payload is 7 bytes; at least 8 are needed for the header length"),
        Arguments.of(
            "header length 0",
            declared(0, ascii("{}")),
            "safetensors header length is 0 bytes; it must be 2..104857600"),
        Arguments.of(
            "header length 2^64-1",
            declared(-1L, ascii("{}")),
            "safetensors header length is 18446744073709551615 bytes; it must be 2..104857600"),
        Arguments.of(
            "header length over the 100 MiB limit",
            declared(100L * 1024 * 1024 + 1, ascii("{}")),
            "safetensors header length is 104857601 bytes; it must be 2..104857600"),
        Arguments.of(
            "header length beyond the payload",
            declared(100, ascii("{}        ")),
            "safetensors header length is 100 bytes but only 10 bytes follow the length field"),
        Arguments.of(
            "header is an array", payload("[1,2]", 0), "safetensors header must be a JSON object"),
        Arguments.of(
            "header is a string", payload("\"x\"", 0), "safetensors header must be a JSON object"),
        Arguments.of(
            "header is only spaces",
            payload("    ", 0),
            "safetensors header must be a JSON object"),
        Arguments.of(
            "tensor entry not an object",
            payload(json("{'x':3}"), 0),
            "tensor 'x' must be an object with dtype, shape, data_offsets"),
        Arguments.of(
            "missing dtype",
            payload(json("{'x':{'shape':[1],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' has no string 'dtype'"),
        Arguments.of(
            "dtype not a string",
            payload(json("{'x':{'dtype':4,'shape':[1],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' has no string 'dtype'"),
        Arguments.of(
            "unsupported dtype BF16",
            payload(json("{'x':{'dtype':'BF16','shape':[2],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' has dtype 'BF16'; supported: [F32, F64, I64, I32]"),
        Arguments.of(
            "dtype in lower case",
            payload(json("{'x':{'dtype':'f32','shape':[1],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' has dtype 'f32'; supported: [F32, F64, I64, I32]"),
        Arguments.of(
            "missing shape",
            payload(json("{'x':{'dtype':'F32','data_offsets':[0,4]}}"), 4),
            "tensor 'x' has no 'shape' array"),
        Arguments.of(
            "shape not an array",
            payload(json("{'x':{'dtype':'F32','shape':1,'data_offsets':[0,4]}}"), 4),
            "tensor 'x' has no 'shape' array"),
        Arguments.of(
            "negative dimension",
            payload(json("{'x':{'dtype':'F32','shape':[2,-2],'data_offsets':[0,16]}}"), 16),
            "tensor 'x' shape[1] = -2; dimensions must be non-negative integers"),
        Arguments.of(
            "fractional dimension",
            payload(json("{'x':{'dtype':'F32','shape':[1.5],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' shape[0] = 1.5; dimensions must be non-negative integers"),
        Arguments.of(
            "dimension as a string",
            payload(json("{'x':{'dtype':'F32','shape':['1'],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' shape[0] = \"1\"; dimensions must be non-negative integers"),
        Arguments.of(
            "null dimension",
            payload(json("{'x':{'dtype':'F32','shape':[null],'data_offsets':[0,4]}}"), 4),
            "tensor 'x' shape[0] = null; dimensions must be non-negative integers"),
        Arguments.of(
            "element count overflows 64 bits",
            payload(
                json("{'x':{'dtype':'F32','shape':[4294967296,4294967296],'data_offsets':[0,0]}}"),
                0),
            "tensor 'x' shape [4294967296,4294967296] overflows 64 bits"),
        Arguments.of(
            // 2^61 elements × 8 bytes = 2^64, which wraps to 0 and would match data_offsets [0, 0]
            "byte count overflows 64 bits",
            payload(
                json("{'x':{'dtype':'F64','shape':[2305843009213693952],'data_offsets':[0,0]}}"),
                0),
            "tensor 'x' shape [2305843009213693952] of F64 overflows 64 bits"),
        Arguments.of(
            "missing data_offsets",
            payload(json("{'x':{'dtype':'F32','shape':[1]}}"), 4),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            "data_offsets not an array",
            payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':4}}"), 4),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            "data_offsets with one entry",
            payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[4]}}"), 4),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            "data_offsets with three entries",
            payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4,8]}}"), 8),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            "data_offsets not integers",
            payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4.0]}}"), 4),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            // 2^64 + 4 would wrap to 4 if read with JsonNode.asLong(), matching the shape
            "data_offsets beyond 64 bits",
            payload(
                json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[0,18446744073709551620]}}"),
                4),
            "tensor 'x' needs 'data_offsets' as [begin, end] integers"),
        Arguments.of(
            "negative begin",
            payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[-4,0]}}"), 16),
            "tensor 'x' data_offsets [-4, 0] fall outside the data section of 16 bytes"),
        Arguments.of(
            "end beyond the data",
            payload(json("{'x':{'dtype':'F32','shape':[5],'data_offsets':[0,20]}}"), 16),
            "tensor 'x' data_offsets [0, 20] fall outside the data section of 16 bytes"),
        Arguments.of(
            "byte size not shape × dtype",
            payload(json("{'x':{'dtype':'F32','shape':[2,2],'data_offsets':[0,12]}}"), 16),
            "tensor 'x' is 12 bytes but shape [2,2] of F32 needs 16"),
        Arguments.of(
            "I64 sized as I32",
            payload(json("{'labels':{'dtype':'I64','shape':[2],'data_offsets':[0,8]}}"), 8),
            "tensor 'labels' is 8 bytes but shape [2] of I64 needs 16"),
        Arguments.of(
            "overlapping tensors",
            payload(
                json(
                    "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                        + "'b':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}"),
                12),
            "tensor 'b' data_offsets [4, 12] overlap another tensor's bytes"),
        Arguments.of(
            "two tensors on the same bytes",
            payload(
                json(
                    "{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                        + "'b':{'dtype':'I32','shape':[1],'data_offsets':[0,4]}}"),
                4),
            "tensor 'b' data_offsets [0, 4] overlap another tensor's bytes"),
        Arguments.of(
            "metadata not an object",
            payload(json("{'__metadata__':[1]," + x + "}"), 4),
            "safetensors '__metadata__' must be an object of strings"),
        Arguments.of(
            "metadata value not a string",
            payload(json("{'__metadata__':{'epoch':3}," + x + "}"), 4),
            "safetensors '__metadata__.epoch' must be a string"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformed")
  void rejectsMalformedPayloadsNamingTheProblem(String fault, byte[] bytes, String message) {
    assertThatThrownBy(() -> Safetensors.parse(bytes))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage(message);
  }

  @Test
  void rejectsDataOffsetsThatEndBeforeTheyBegin() {
    // [8, 4] lies inside the 16-byte data section; the fault is the order, so say that.
    byte[] bytes = payload(json("{'x':{'dtype':'F32','shape':[1],'data_offsets':[8,4]}}"), 16);

    assertThatThrownBy(() -> Safetensors.parse(bytes))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'x' data_offsets [8, 4]: end is before begin");
  }

  @Test
  void rejectsAHeaderThatIsNotJson() {
    byte[] bytes = payload("{not json}", 0);

    assertThatThrownBy(() -> Safetensors.parse(bytes))
        .isInstanceOf(SafetensorsException.class)
        .hasMessageStartingWith("safetensors header is not valid JSON: ")
        .hasMessageContaining("'n'");
  }

  @Test
  void rejectsDuplicateTensorNames() {
    String t = "'x':{'dtype':'F32','shape':[1],'data_offsets':[0,4]}";
    byte[] bytes = payload(json("{" + t + "," + t + "}"), 4);

    assertThatThrownBy(() -> Safetensors.parse(bytes))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("safetensors header is not valid JSON: Duplicate field 'x'");
  }

  private static Safetensors pixelsAndLabels(long... labels) {
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("pixels", new float[] {1f, 2f});
    values.put("labels", labels);
    values.put("ids", new int[] {7});
    Map<String, long[]> shapes =
        Map.of(
            "pixels",
            new long[] {1, 2},
            "labels",
            new long[] {labels.length},
            "ids",
            new long[] {1});
    return Safetensors.parse(Safetensors.write(values, shapes));
  }

  @Test
  void floatsOfAnIntegerTensorIsAnError() {
    Safetensors st = pixelsAndLabels(1, 2);

    assertThatThrownBy(() -> st.floats("labels"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'labels' is I64; a floating-point tensor (F32, F64) is needed");
    assertThatThrownBy(() -> st.floats("ids"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'ids' is I32; a floating-point tensor (F32, F64) is needed");
  }

  @Test
  void intsOfAFloatTensorIsAnError() {
    Safetensors st = pixelsAndLabels(1, 2);

    assertThatThrownBy(() -> st.ints("pixels"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'pixels' is F32; an integer tensor (I64, I32) is needed");
  }

  @Test
  void int64LabelsOutsideIntRangeAreAnError() {
    // 2^32 = 4294967296 and -(2^31) - 1 = -2147483649 are the first values past each end.
    assertThatThrownBy(() -> pixelsAndLabels(1, 4294967296L).ints("labels"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'labels'[1] = 4294967296 does not fit a 32-bit class index");
    assertThatThrownBy(() -> pixelsAndLabels(-2147483649L).ints("labels"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage("tensor 'labels'[0] = -2147483649 does not fit a 32-bit class index");
    assertThat(pixelsAndLabels(Integer.MIN_VALUE, Integer.MAX_VALUE).ints("labels"))
        .containsExactly(Integer.MIN_VALUE, Integer.MAX_VALUE);
  }

  @Test
  void anUnknownTensorNameListsTheNamesPresent() {
    Safetensors st = pixelsAndLabels(1);
    String message = "no tensor 'pixelz'; the payload has [pixels, labels, ids]";

    assertThatThrownBy(() -> st.tensor("pixelz"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage(message);
    assertThatThrownBy(() -> st.floats("pixelz"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage(message);
    assertThatThrownBy(() -> st.ints("pixelz"))
        .isInstanceOf(SafetensorsException.class)
        .hasMessage(message);
  }

  @Test
  void theParsedMapsAreReadOnly() {
    Safetensors st = pixelsAndLabels(1);

    assertThatThrownBy(() -> st.tensors().remove("pixels"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> st.metadata().put("k", "v"))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void writeRejectsAMissingShape() {
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("x", new float[] {1f});

    assertThatThrownBy(() -> Safetensors.write(values, Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("no shape given for tensor 'x'");
  }

  @Test
  void writeRejectsAShapeThatDoesNotHoldTheValues() {
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("x", new float[] {1f, 2f, 3f});

    assertThatThrownBy(() -> Safetensors.write(values, Map.of("x", new long[] {2, 2})))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("tensor 'x' has 3 values but its shape holds 4");
  }

  @Test
  void writeRejectsAnUnsupportedArrayType() {
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("x", new short[] {1});

    assertThatThrownBy(() -> Safetensors.write(values, Map.of("x", new long[] {1})))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("tensor 'x' must be float[], double[], long[] or int[]");
  }

  @Test
  void writeRejectsNegativeDimensionsThatParseWouldRefuse() {
    // (-1) × (-2) = 2 matches the two values, but the payload written would not parse.
    Map<String, Object> values = new LinkedHashMap<>();
    values.put("x", new float[] {1f, 2f});

    assertThatThrownBy(() -> Safetensors.write(values, Map.of("x", new long[] {-1, -2})))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("tensor 'x'")
        .hasMessageContaining(Arrays.toString(new long[] {-1, -2}));
  }
}
