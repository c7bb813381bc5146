package io.probestream.trainer;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a {@link ReluMlp} as an ONNX model (opset 17, IR version 8), directly on protobuf's wire
 * format with the field numbers of onnx/onnx.proto: input {@code input} [N, d] with a symbolic
 * batch, per hidden layer l a Gemm (transB = 1) with {@code fc<l>.weight}/{@code fc<l>.bias} into
 * {@code z<l>} and a Relu into {@code h<l>}, then a Gemm with {@code classifier.weight}/{@code
 * classifier.bias} into {@code logits}; the hidden activations and the logits are graph outputs.
 * Parameters are stored as float32. The bytes depend on the parameters only (no timestamps), so
 * equal models give equal checkpoints. Stateless.
 */
public final class OnnxExport {
  private static final int FLOAT = 1; // TensorProto.DataType.FLOAT
  private static final int OPSET = 17;
  private static final int IR_VERSION = 8; // the IR of ONNX 1.12, which introduced opset 17

  private OnnxExport() {}

  /** The model's ONNX bytes. */
  public static byte[] toOnnx(ReluMlp model) {
    int[] widths = model.widths();
    int layers = model.layers();
    List<byte[]> nodes = new ArrayList<>();
    List<byte[]> initializers = new ArrayList<>();
    List<byte[]> outputs = new ArrayList<>();
    String cur = "input";
    for (int l = 0; l < layers; l++) {
      boolean last = l == layers - 1;
      String prefix = last ? "classifier" : "fc" + (l + 1);
      initializers.add(
          tensor(prefix + ".weight", new long[] {widths[l + 1], widths[l]}, model.weight(l)));
      initializers.add(tensor(prefix + ".bias", new long[] {widths[l + 1]}, model.bias(l)));
      String z = last ? "logits" : "z" + (l + 1);
      nodes.add(gemm(prefix, cur, z));
      if (!last) {
        String h = "h" + (l + 1);
        nodes.add(
            msg(
                o -> {
                  o.writeString(1, z);
                  o.writeString(2, h);
                  o.writeString(3, "relu" + h.substring(1));
                  o.writeString(4, "Relu");
                }));
        outputs.add(valueInfo(h, widths[l + 1]));
        cur = h;
      }
    }
    outputs.add(valueInfo("logits", widths[layers]));
    byte[] input = valueInfo("input", widths[0]);
    byte[] graph =
        msg(
            o -> {
              for (byte[] n : nodes) {
                o.writeByteArray(1, n); // GraphProto.node
              }
              o.writeString(2, "probestream-trainer-mlp"); // GraphProto.name
              for (byte[] t : initializers) {
                o.writeByteArray(5, t); // GraphProto.initializer
              }
              o.writeByteArray(11, input); // GraphProto.input
              for (byte[] v : outputs) {
                o.writeByteArray(12, v); // GraphProto.output
              }
            });
    byte[] opset =
        msg(
            o -> {
              o.writeString(1, ""); // the default domain
              o.writeInt64(2, OPSET);
            });
    return msg(
        o -> {
          o.writeInt64(1, IR_VERSION); // ModelProto.ir_version
          o.writeString(2, "probestream-trainer"); // producer_name
          o.writeByteArray(7, graph);
          o.writeByteArray(8, opset); // opset_import
        });
  }

  private static byte[] gemm(String prefix, String x, String y) {
    byte[] transB =
        msg(
            o -> {
              o.writeString(1, "transB"); // AttributeProto.name
              o.writeInt64(3, 1); // AttributeProto.i
              o.writeEnum(20, 2); // AttributeProto.type = INT
            });
    return msg(
        o -> {
          o.writeString(1, x); // NodeProto.input
          o.writeString(1, prefix + ".weight");
          o.writeString(1, prefix + ".bias");
          o.writeString(2, y); // NodeProto.output
          o.writeString(3, prefix); // NodeProto.name
          o.writeString(4, "Gemm"); // NodeProto.op_type
          o.writeByteArray(5, transB); // NodeProto.attribute
        });
  }

  private static byte[] tensor(String name, long[] dims, double[] values) {
    ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      raw.putFloat((float) v);
    }
    return msg(
        o -> {
          for (long d : dims) {
            o.writeInt64(1, d); // TensorProto.dims
          }
          o.writeInt32(2, FLOAT); // TensorProto.data_type
          o.writeString(8, name); // TensorProto.name
          o.writeByteArray(9, raw.array()); // TensorProto.raw_data, little-endian
        });
  }

  // ValueInfoProto of a float tensor [N, width] with the symbolic batch "N".
  private static byte[] valueInfo(String name, int width) {
    byte[] shape =
        msg(
            o -> {
              o.writeByteArray(1, msg(d -> d.writeString(2, "N"))); // Dimension.dim_param
              o.writeByteArray(1, msg(d -> d.writeInt64(1, width))); // Dimension.dim_value
            });
    byte[] tensorType =
        msg(
            o -> {
              o.writeInt32(1, FLOAT); // TypeProto.Tensor.elem_type
              o.writeByteArray(2, shape); // TypeProto.Tensor.shape
            });
    return msg(
        o -> {
          o.writeString(1, name); // ValueInfoProto.name
          o.writeByteArray(2, msg(t -> t.writeByteArray(1, tensorType))); // TypeProto.tensor_type
        });
  }

  private interface Body {
    void write(CodedOutputStream o) throws IOException;
  }

  private static byte[] msg(Body body) {
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      CodedOutputStream o = CodedOutputStream.newInstance(bytes);
      body.write(o);
      o.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
