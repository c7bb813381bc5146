package io.probestream.testkit;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small ONNX models in pure Java (opset 17 unless {@link #opset} says otherwise), for
 * fixtures whose outputs can be worked out by hand. Field numbers are those of onnx/onnx.proto. Not
 * thread-safe; one builder per model.
 */
public final class OnnxModelBuilder {
  private static final int FLOAT = 1;

  private final List<byte[]> nodes = new ArrayList<>();
  private final List<byte[]> initializers = new ArrayList<>();
  private final List<byte[]> inputs = new ArrayList<>();
  private final List<byte[]> outputs = new ArrayList<>();
  private final Map<String, ByteArrayOutputStream> externalFiles = new LinkedHashMap<>();
  private int nodeCount;
  private int opset = 17;
  private long fixedBatch = -1;

  /**
   * Declares inputs and outputs added after this call with a fixed batch dimension instead of the
   * symbolic "N" (as PyTorch exports without dynamic_axes).
   */
  public OnnxModelBuilder fixedBatch(long batch) {
    this.fixedBatch = batch;
    return this;
  }

  /**
   * The default-domain opset to declare (default 17); the IR version follows the ONNX release that
   * introduced it (opset ≤ 18: IR 8, 19–20: IR 9, 21: IR 10).
   */
  public OnnxModelBuilder opset(int version) {
    this.opset = version;
    return this;
  }

  private interface Body {
    void write(CodedOutputStream o) throws IOException;
  }

  /** A float input of shape [N, dims...] with a symbolic batch dimension "N". */
  public OnnxModelBuilder input(String name, long... dims) {
    inputs.add(valueInfo(name, fixedBatch, dims));
    return this;
  }

  /** A float graph output of shape [N, dims...]. */
  public OnnxModelBuilder output(String name, long... dims) {
    outputs.add(valueInfo(name, fixedBatch, dims));
    return this;
  }

  /** A float initializer of the given shape, row-major values. */
  public OnnxModelBuilder initializer(String name, long[] dims, float[] values) {
    ByteBuffer bb = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bb.asFloatBuffer().put(values);
    initializers.add(
        msg(
            o -> {
              for (long d : dims) {
                o.writeInt64(1, d);
              }
              o.writeInt32(2, FLOAT);
              o.writeString(8, name);
              o.writeByteArray(9, bb.array());
            }));
    return this;
  }

  /**
   * A float initializer kept as ONNX external data: TensorProto data_location = EXTERNAL, with
   * {@code external_data} entries location, offset and length; its raw little-endian bytes are
   * appended to the side file {@code location} (see {@link #externalFiles()} and {@link #writeTo}).
   */
  public OnnxModelBuilder externalInitializer(
      String name, long[] dims, float[] values, String location) {
    ByteBuffer bb = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    bb.asFloatBuffer().put(values);
    ByteArrayOutputStream file =
        externalFiles.computeIfAbsent(location, l -> new ByteArrayOutputStream());
    long offset = file.size();
    file.writeBytes(bb.array());
    initializers.add(
        msg(
            o -> {
              for (long d : dims) {
                o.writeInt64(1, d);
              }
              o.writeInt32(2, FLOAT);
              o.writeString(8, name);
              o.writeByteArray(13, entry("location", location));
              o.writeByteArray(13, entry("offset", Long.toString(offset)));
              o.writeByteArray(13, entry("length", Integer.toString(values.length * 4)));
              o.writeEnum(14, 1); // DataLocation.EXTERNAL
            }));
    return this;
  }

  /** A 2-D initializer from rows, kept as external data in {@code location}. */
  public OnnxModelBuilder externalMatrix(String name, double[][] rows, String location) {
    return externalInitializer(
        name, new long[] {rows.length, rows[0].length}, flatten(rows), location);
  }

  /** A 1-D initializer kept as external data in {@code location}. */
  public OnnxModelBuilder externalVector(String name, String location, double... values) {
    float[] v = new float[values.length];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) values[i];
    }
    return externalInitializer(name, new long[] {v.length}, v, location);
  }

  /** The side files of the external initializers so far: location → bytes. */
  public Map<String, byte[]> externalFiles() {
    Map<String, byte[]> files = new LinkedHashMap<>();
    externalFiles.forEach((location, bytes) -> files.put(location, bytes.toByteArray()));
    return files;
  }

  /**
   * Writes the model as {@code dir/fileName} and each side file at its location relative to {@code
   * dir}; returns the model's path.
   */
  public Path writeTo(Path dir, String fileName) throws IOException {
    for (Map.Entry<String, byte[]> f : externalFiles().entrySet()) {
      Path side = dir.resolve(f.getKey());
      Files.createDirectories(side.toAbsolutePath().getParent());
      Files.write(side, f.getValue());
    }
    return Files.write(dir.resolve(fileName), build());
  }

  private static byte[] entry(String key, String value) {
    return msg(
        o -> {
          o.writeString(1, key);
          o.writeString(2, value);
        });
  }

  private static float[] flatten(double[][] rows) {
    int r = rows.length;
    int c = rows[0].length;
    float[] v = new float[r * c];
    for (int i = 0; i < r; i++) {
      for (int j = 0; j < c; j++) {
        v[i * c + j] = (float) rows[i][j];
      }
    }
    return v;
  }

  /** A 2-D initializer from rows. */
  public OnnxModelBuilder matrix(String name, double[][] rows) {
    int r = rows.length;
    int c = rows[0].length;
    float[] v = new float[r * c];
    for (int i = 0; i < r; i++) {
      for (int j = 0; j < c; j++) {
        v[i * c + j] = (float) rows[i][j];
      }
    }
    return initializer(name, new long[] {r, c}, v);
  }

  /** A 1-D initializer. */
  public OnnxModelBuilder vector(String name, double... values) {
    float[] v = new float[values.length];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) values[i];
    }
    return initializer(name, new long[] {v.length}, v);
  }

  /**
   * A node with scalar attributes given as alternating name, value pairs: a {@link Float} or {@link
   * Double} value is written as a FLOAT attribute (e.g. {@code "epsilon", 1e-5}, {@code "alpha",
   * 0.5}), any other {@link Number} as an INT attribute (e.g. {@code "transB", 1}).
   */
  public OnnxModelBuilder node(String op, String[] in, String[] out, Object... attributes) {
    List<byte[]> attrs = new ArrayList<>();
    for (int i = 0; i < attributes.length; i += 2) {
      String n = (String) attributes[i];
      Object value = attributes[i + 1];
      if (value instanceof Float || value instanceof Double) {
        float f = ((Number) value).floatValue();
        attrs.add(
            msg(
                o -> {
                  o.writeString(1, n);
                  o.writeFloat(2, f); // AttributeProto.f, fixed32
                  o.writeEnum(20, 1); // AttributeProto.FLOAT
                }));
      } else {
        long v = ((Number) value).longValue();
        attrs.add(
            msg(
                o -> {
                  o.writeString(1, n);
                  o.writeInt64(3, v);
                  o.writeEnum(20, 2); // AttributeProto.INT
                }));
      }
    }
    String name = op.toLowerCase() + "_" + nodeCount++;
    nodes.add(
        msg(
            o -> {
              for (String s : in) {
                o.writeString(1, s);
              }
              for (String s : out) {
                o.writeString(2, s);
              }
              o.writeString(3, name);
              o.writeString(4, op);
              for (byte[] a : attrs) {
                o.writeByteArray(5, a);
              }
            }));
    return this;
  }

  /** Gemm(x, W, b) with transB = 1, the PyTorch Linear layout (W is out × in). */
  public OnnxModelBuilder linear(String x, String w, String b, String y) {
    return node("Gemm", new String[] {x, w, b}, new String[] {y}, "transB", 1);
  }

  public OnnxModelBuilder relu(String x, String y) {
    return node("Relu", new String[] {x}, new String[] {y});
  }

  public OnnxModelBuilder identity(String x, String y) {
    return node("Identity", new String[] {x}, new String[] {y});
  }

  /** The model's bytes. */
  public byte[] build() {
    byte[] graph =
        msg(
            o -> {
              for (byte[] n : nodes) {
                o.writeByteArray(1, n);
              }
              o.writeString(2, "g");
              for (byte[] t : initializers) {
                o.writeByteArray(5, t);
              }
              for (byte[] v : inputs) {
                o.writeByteArray(11, v);
              }
              for (byte[] v : outputs) {
                o.writeByteArray(12, v);
              }
            });
    byte[] opsetImport =
        msg(
            o -> {
              o.writeString(1, "");
              o.writeInt64(2, opset);
            });
    return msg(
        o -> {
          o.writeInt64(1, opset <= 18 ? 8 : opset <= 20 ? 9 : 10);
          o.writeString(2, "probestream-testkit");
          o.writeByteArray(7, graph);
          o.writeByteArray(8, opsetImport);
        });
  }

  private static byte[] valueInfo(String name, long batch, long... dims) {
    byte[] shape =
        msg(
            o -> {
              o.writeByteArray(
                  1,
                  msg(
                      x -> {
                        if (batch > 0) {
                          x.writeInt64(1, batch);
                        } else {
                          x.writeString(2, "N");
                        }
                      }));
              for (long d : dims) {
                o.writeByteArray(1, msg(x -> x.writeInt64(1, d)));
              }
            });
    byte[] tensorType =
        msg(
            o -> {
              o.writeInt32(1, FLOAT);
              o.writeByteArray(2, shape);
            });
    return msg(
        o -> {
          o.writeString(1, name);
          o.writeByteArray(2, msg(x -> x.writeByteArray(1, tensorType)));
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
