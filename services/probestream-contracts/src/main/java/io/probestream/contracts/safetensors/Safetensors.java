package io.probestream.contracts.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed, validated safetensors payload (8-byte little-endian header length, a JSON header, then
 * the raw little-endian data). Every structural fault is rejected when parsing, so the accessors
 * only fail on a wrong name or type. Immutable; the bytes are not copied.
 */
public final class Safetensors {
  /** Headers above this size are refused before they are read (the format's own advice). */
  public static final int MAX_HEADER_BYTES = 100 * 1024 * 1024;

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  private final ByteBuffer data; // little-endian view of the data section
  private final Map<String, TensorInfo> tensors;
  private final Map<String, String> metadata;

  private Safetensors(ByteBuffer data, Map<String, TensorInfo> tensors, Map<String, String> meta) {
    this.data = data;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(meta);
  }

  /** Parses and validates {@code bytes}; throws {@link SafetensorsException} naming the fault. */
  public static Safetensors parse(byte[] bytes) {
    if (bytes.length < 8) {
      throw new SafetensorsException(
          "safetensors payload is "
              + bytes.length
              + " bytes; at least 8 are needed for the header length");
    }
    long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
      throw new SafetensorsException(
          "safetensors header length is "
              + Long.toUnsignedString(headerLength)
              + " bytes; it must be 2.."
              + MAX_HEADER_BYTES);
    }
    if (headerLength > bytes.length - 8L) {
      throw new SafetensorsException(
          "safetensors header length is "
              + headerLength
              + " bytes but only "
              + (bytes.length - 8)
              + " bytes follow the length field");
    }
    int dataStart = 8 + (int) headerLength;
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    JsonNode root;
    try {
      root = JSON.readTree(header);
    } catch (JsonProcessingException e) {
      throw new SafetensorsException(
          "safetensors header is not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new SafetensorsException("safetensors header must be a JSON object");
    }
    long dataLength = bytes.length - (long) dataStart;
    Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    Map<String, String> meta = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getKey().equals("__metadata__")) {
        readMetadata(e.getValue(), meta);
        continue;
      }
      tensors.put(e.getKey(), readTensor(e.getKey(), e.getValue(), dataLength));
    }
    checkNoOverlap(tensors, dataLength);
    ByteBuffer data =
        ByteBuffer.wrap(bytes, dataStart, (int) dataLength).slice().order(ByteOrder.LITTLE_ENDIAN);
    return new Safetensors(data, tensors, meta);
  }

  private static void readMetadata(JsonNode node, Map<String, String> meta) {
    if (!node.isObject()) {
      throw new SafetensorsException("safetensors '__metadata__' must be an object of strings");
    }
    node.fields()
        .forEachRemaining(
            m -> {
              if (!m.getValue().isTextual()) {
                throw new SafetensorsException(
                    "safetensors '__metadata__." + m.getKey() + "' must be a string");
              }
              meta.put(m.getKey(), m.getValue().asText());
            });
  }

  private static TensorInfo readTensor(String name, JsonNode node, long dataLength) {
    String where = "tensor '" + name + "'";
    if (!node.isObject()) {
      throw new SafetensorsException(where + " must be an object with dtype, shape, data_offsets");
    }
    JsonNode dtype = node.get("dtype");
    if (dtype == null || !dtype.isTextual()) {
      throw new SafetensorsException(where + " has no string 'dtype'");
    }
    DType type = DType.parse(dtype.asText(), name);
    JsonNode shapeNode = node.get("shape");
    if (shapeNode == null || !shapeNode.isArray()) {
      throw new SafetensorsException(where + " has no 'shape' array");
    }
    long[] shape = new long[shapeNode.size()];
    long elements = 1;
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = shapeNode.get(i);
      if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
        throw new SafetensorsException(
            where + " shape[" + i + "] = " + d + "; dimensions must be non-negative integers");
      }
      shape[i] = d.asLong();
      try {
        elements = Math.multiplyExact(elements, shape[i]);
      } catch (ArithmeticException overflow) {
        throw new SafetensorsException(where + " shape " + shapeNode + " overflows 64 bits");
      }
    }
    JsonNode offsets = node.get("data_offsets");
    if (offsets == null
        || !offsets.isArray()
        || offsets.size() != 2
        || !offsets.get(0).isIntegralNumber()
        || !offsets.get(1).isIntegralNumber()
        || !offsets.get(0).canConvertToLong()
        || !offsets.get(1).canConvertToLong()) {
      throw new SafetensorsException(where + " needs 'data_offsets' as [begin, end] integers");
    }
    long begin = offsets.get(0).asLong();
    long end = offsets.get(1).asLong();
    if (end < begin) {
      throw new SafetensorsException(
          where + " data_offsets [" + begin + ", " + end + "]: end is before begin");
    }
    if (begin < 0 || end > dataLength) {
      throw new SafetensorsException(
          where
              + " data_offsets ["
              + begin
              + ", "
              + end
              + "] fall outside the data section of "
              + dataLength
              + " bytes");
    }
    long expected;
    try {
      expected = Math.multiplyExact(elements, type.bytes());
    } catch (ArithmeticException overflow) {
      throw new SafetensorsException(
          where + " shape " + shapeNode + " of " + type + " overflows 64 bits");
    }
    if (end - begin != expected) {
      throw new SafetensorsException(
          where
              + " is "
              + (end - begin)
              + " bytes but shape "
              + shapeNode
              + " of "
              + type
              + " needs "
              + expected);
    }
    return new TensorInfo(name, type, shape, begin, end);
  }

  private static void checkNoOverlap(Map<String, TensorInfo> tensors, long dataLength) {
    List<TensorInfo> sorted = new ArrayList<>(tensors.values());
    sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    long covered = 0;
    for (TensorInfo t : sorted) {
      if (t.begin() < covered) {
        throw new SafetensorsException(
            "tensor '"
                + t.name()
                + "' data_offsets ["
                + t.begin()
                + ", "
                + t.end()
                + "] overlap another tensor's bytes");
      }
      covered = Math.max(covered, t.end());
    }
  }

  /** Tensors in header order; never null. */
  public Map<String, TensorInfo> tensors() {
    return tensors;
  }

  /** The optional {@code __metadata__} strings; never null. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** The named tensor, or an error that lists the names present. */
  public TensorInfo tensor(String name) {
    TensorInfo t = tensors.get(name);
    if (t == null) {
      throw new SafetensorsException(
          "no tensor '" + name + "'; the payload has " + tensors.keySet());
    }
    return t;
  }

  /** The named floating-point tensor as float32 values, row-major (F64 is narrowed). */
  public float[] floats(String name) {
    TensorInfo t = tensor(name);
    if (!t.dtype().isFloat()) {
      throw new SafetensorsException(
          "tensor '"
              + name
              + "' is "
              + t.dtype()
              + "; a floating-point tensor (F32, F64) is needed");
    }
    int n = Math.toIntExact(t.elements());
    float[] out = new float[n];
    ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN).position((int) t.begin());
    if (t.dtype() == DType.F32) {
      b.asFloatBuffer().get(out);
    } else {
      for (int i = 0; i < n; i++) {
        out[i] = (float) b.getDouble();
      }
    }
    return out;
  }

  /** The named integer tensor (I64 or I32) as ints; values outside int range are an error. */
  public int[] ints(String name) {
    TensorInfo t = tensor(name);
    if (t.dtype() != DType.I64 && t.dtype() != DType.I32) {
      throw new SafetensorsException(
          "tensor '" + name + "' is " + t.dtype() + "; an integer tensor (I64, I32) is needed");
    }
    int n = Math.toIntExact(t.elements());
    int[] out = new int[n];
    ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN).position((int) t.begin());
    if (t.dtype() == DType.I32) {
      b.asIntBuffer().get(out);
    } else {
      for (int i = 0; i < n; i++) {
        long v = b.getLong();
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
          throw new SafetensorsException(
              "tensor '" + name + "'[" + i + "] = " + v + " does not fit a 32-bit class index");
        }
        out[i] = (int) v;
      }
    }
    return out;
  }

  /**
   * Writes tensors in the given order as one safetensors payload (header padded with spaces to a
   * multiple of 8, as the reference implementation does).
   *
   * @param tensors name → value, each a {@code float[]}, {@code double[]}, {@code long[]} or {@code
   *     int[]} (F32, F64, I64, I32)
   * @param shapes name → shape; the product must match the value's length
   */
  public static byte[] write(Map<String, Object> tensors, Map<String, long[]> shapes) {
    ObjectNode header = JSON.createObjectNode();
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    for (Map.Entry<String, Object> e : tensors.entrySet()) {
      String name = e.getKey();
      long[] shape = shapes.get(name);
      if (shape == null) {
        throw new IllegalArgumentException("no shape given for tensor '" + name + "'");
      }
      byte[] raw;
      DType type;
      long n;
      if (e.getValue() instanceof float[] f) {
        type = DType.F32;
        n = f.length;
        ByteBuffer b = ByteBuffer.allocate(f.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(f);
        raw = b.array();
      } else if (e.getValue() instanceof double[] d) {
        type = DType.F64;
        n = d.length;
        ByteBuffer b = ByteBuffer.allocate(d.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asDoubleBuffer().put(d);
        raw = b.array();
      } else if (e.getValue() instanceof long[] l) {
        type = DType.I64;
        n = l.length;
        ByteBuffer b = ByteBuffer.allocate(l.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(l);
        raw = b.array();
      } else if (e.getValue() instanceof int[] i) {
        type = DType.I32;
        n = i.length;
        ByteBuffer b = ByteBuffer.allocate(i.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(i);
        raw = b.array();
      } else {
        throw new IllegalArgumentException(
            "tensor '" + name + "' must be float[], double[], long[] or int[]");
      }
      long product = 1;
      for (long d : shape) {
        if (d < 0) {
          throw new IllegalArgumentException(
              "tensor '"
                  + name
                  + "' shape "
                  + java.util.Arrays.toString(shape)
                  + " has a negative dimension");
        }
        product *= d;
      }
      if (product != n) {
        throw new IllegalArgumentException(
            "tensor '" + name + "' has " + n + " values but its shape holds " + product);
      }
      ObjectNode t = header.putObject(name);
      t.put("dtype", type.name());
      var s = t.putArray("shape");
      for (long d : shape) {
        s.add(d);
      }
      var o = t.putArray("data_offsets");
      o.add(body.size());
      o.add(body.size() + raw.length);
      body.writeBytes(raw);
    }
    byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
    int padded = (h.length + 7) / 8 * 8;
    ByteBuffer out = ByteBuffer.allocate(8 + padded + body.size()).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(padded);
    out.put(h);
    for (int i = h.length; i < padded; i++) {
      out.put((byte) ' ');
    }
    out.put(body.toByteArray());
    return out.array();
  }
}
