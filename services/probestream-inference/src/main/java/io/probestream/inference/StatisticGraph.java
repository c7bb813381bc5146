package io.probestream.inference;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Statistic nodes appended to a checkpoint's graph (DESIGN.md §5), so that the per-batch
 * neural-collapse statistics are computed where the model runs and only O(K·d) numbers per layer
 * leave it, never the features. Pass 1 gives per-class counts, means and batch-centred scatter;
 * pass 2 the per-direction sums a_j and the NC4 mismatches against frozen means and basis fed as
 * inputs. Rows whose features (or, on the classifier-feeding layer, logits) are not finite get
 * weight 0, as PROBES.md §0 asks. float32 inside the batch, which PROBES.md §0 allows. Needs opset
 * ≥ 13 (ReduceSum and Unsqueeze take their axes as inputs). Stateless.
 */
final class StatisticGraph {
  static final String LABELS = "ps_labels";
  private static final int FLOAT = 1;
  private static final int INT64 = 7;

  /**
   * A probed layer: its graph tensor, rank and feature width, and whether it feeds the classifier.
   */
  record Layer(String tensor, int rank, int width, boolean feeds) {}

  private StatisticGraph() {}

  static String out(int layer, String what) {
    return "ps" + layer + "_" + what;
  }

  /**
   * Pass 1 outputs per layer i: ps{i}_counts [C], ps{i}_means [C,d], ps{i}_scatter [C,1],
   * ps{i}_nonfinite [].
   */
  static byte[] pass1(byte[] model, List<Layer> layers, String logits, int classes) {
    Builder b = common(layers, logits, classes);
    for (int i = 0; i < layers.size(); i++) {
      String p = "ps" + i + "_";
      masked(b, p, layers.get(i));
      b.node("ReduceSum", out(i, "counts"), 0, p + "ow", "ps_ax0");
      b.node("Transpose", p + "owt", -1, p + "ow");
      b.node("MatMul", p + "sums", -1, p + "owt", p + "h0");
      b.node("Max", p + "safe", -1, out(i, "counts"), "ps_one");
      b.node("Unsqueeze", p + "safe2", -1, p + "safe", "ps_ax1");
      b.node("Div", out(i, "means"), -1, p + "sums", p + "safe2");
      b.node("MatMul", p + "own", -1, p + "ow", out(i, "means"));
      b.node("Sub", p + "cen", -1, p + "h0", p + "own");
      b.node("Mul", p + "cen2", -1, p + "cen", p + "cen");
      b.node("ReduceSum", p + "sq", 1, p + "cen2", "ps_ax1");
      b.node("MatMul", out(i, "scatter"), -1, p + "owt", p + "sq");
      b.node("Sub", p + "notw", -1, "ps_one", p + "w");
      b.node("ReduceSum", out(i, "nonfinite"), 0, p + "notw");
      for (String o : List.of("counts", "means", "scatter", "nonfinite")) {
        b.output(out(i, o));
      }
    }
    return b.appendTo(model);
  }

  /**
   * Pass 2 inputs per layer i: ps{i}_mu [C,d] (frozen means, zeros for unseen classes), ps{i}_v
   * [R,d] (kept basis, R ≥ 1), ps{i}_inv [C] (1/n_c, 0 unseen), ps{i}_pen [C] (0 seen, huge
   * unseen), ps{i}_musq [C] (‖μ_c‖²). Outputs: ps{i}_a [R], ps{i}_samples [] and, on the
   * classifier-feeding layer, ps{i}_mis [].
   */
  static byte[] pass2(byte[] model, List<Layer> layers, String logits, int classes) {
    Builder b = common(layers, logits, classes);
    for (int i = 0; i < layers.size(); i++) {
      String p = "ps" + i + "_";
      Layer l = layers.get(i);
      b.input(out(i, "mu"), FLOAT, "C", Integer.toString(l.width()));
      b.input(out(i, "v"), FLOAT, "R" + i, Integer.toString(l.width()));
      b.input(out(i, "inv"), FLOAT, "C");
      masked(b, p, l);
      b.node("MatMul", p + "own", -1, p + "ow", out(i, "mu"));
      b.node("Sub", p + "cen", -1, p + "h0", p + "own");
      b.node("Transpose", p + "vt", -1, out(i, "v"));
      b.node("MatMul", p + "proj", -1, p + "cen", p + "vt");
      b.node("Mul", p + "proj2", -1, p + "proj", p + "proj");
      b.node("Unsqueeze", p + "inv2", -1, out(i, "inv"), "ps_ax1");
      b.node("MatMul", p + "wi", -1, p + "ow", p + "inv2");
      b.node("Mul", p + "wproj", -1, p + "wi", p + "proj2");
      b.node("ReduceSum", out(i, "a"), 0, p + "wproj", "ps_ax0");
      b.node("ReduceSum", out(i, "samples"), 0, p + "w");
      b.output(out(i, "a"));
      b.output(out(i, "samples"));
      if (l.feeds()) {
        b.input(out(i, "pen"), FLOAT, "C");
        b.input(out(i, "musq"), FLOAT, "C");
        // argmin_c ‖h − μ_c‖² = argmin_c (‖μ_c‖² − 2 h·μ_c); unseen classes get a huge penalty.
        b.node("Transpose", p + "mut", -1, out(i, "mu"));
        b.node("MatMul", p + "hm", -1, p + "h0", p + "mut");
        b.node("Mul", p + "hm2", -1, p + "hm", "ps_two");
        b.node("Sub", p + "d0", -1, out(i, "musq"), p + "hm2");
        b.node("Add", p + "d", -1, p + "d0", out(i, "pen"));
        b.argNode("ArgMin", p + "near", p + "d");
        b.argNode("ArgMax", p + "pred", logits);
        b.node("Equal", p + "same", -1, p + "near", p + "pred");
        b.node("Not", p + "diff", -1, p + "same");
        b.cast(p + "difff", p + "diff", FLOAT);
        b.node("Squeeze", p + "wf", -1, p + "w", "ps_ax1");
        b.node("Mul", p + "misw", -1, p + "difff", p + "wf");
        b.node("ReduceSum", out(i, "mis"), 0, p + "misw");
        b.output(out(i, "mis"));
      }
    }
    return b.appendTo(model);
  }

  /** Labels, one-hot, constants, and the logits' non-finite row count when a layer needs it. */
  private static Builder common(List<Layer> layers, String logits, int classes) {
    Builder b = new Builder();
    b.input(LABELS, INT64, "N");
    b.scalarF("ps_one", 1);
    b.scalarF("ps_zero", 0);
    b.scalarF("ps_two", 2);
    b.int64("ps_depth", new long[] {}, classes);
    b.int64("ps_ax0", new long[] {1}, 0);
    b.int64("ps_ax1", new long[] {1}, 1);
    b.floats("ps_onehot_values", new long[] {2}, 0f, 1f);
    b.node("OneHot", "ps_onehot", -1, LABELS, "ps_depth", "ps_onehot_values");
    if (layers.stream().anyMatch(Layer::feeds)) {
      badRows(b, "ps_z", logits);
    }
    return b;
  }

  /**
   * p+"h0" (features, non-finite rows zeroed), p+"w" [N,1] row weights, p+"ow" weighted one-hot.
   */
  private static void masked(Builder b, String p, Layer l) {
    String h = l.tensor();
    if (l.rank() > 2) {
      b.node("GlobalAveragePool", p + "gap", -1, h);
      b.flatten(p + "h", p + "gap");
      h = p + "h";
    }
    badRows(b, p, h);
    String bad = p + "bad";
    if (l.feeds()) {
      b.node("Add", p + "badz", -1, bad, "ps_zbad");
      bad = p + "badz";
    }
    b.node("Equal", p + "ok", -1, bad, "ps_zero");
    b.cast(p + "w", p + "ok", FLOAT);
    b.node("Where", p + "h0", -1, p + "ok", h, "ps_zero");
    b.node("Mul", p + "ow", -1, "ps_onehot", p + "w");
  }

  /** p+"bad" [N,1]: how many values of each row of {@code t} are NaN or ±Inf. */
  private static void badRows(Builder b, String p, String t) {
    b.node("IsNaN", p + "nan", -1, t);
    b.node("IsInf", p + "inf", -1, t);
    b.node("Or", p + "nf", -1, p + "nan", p + "inf");
    b.cast(p + "nff", p + "nf", FLOAT);
    b.node("ReduceSum", p + "bad", 1, p + "nff", "ps_ax1");
  }

  /** Accumulates the appended graph parts; writes them as a ModelProto fragment to concatenate. */
  private static final class Builder {
    private final List<byte[]> nodes = new ArrayList<>();
    private final List<byte[]> inits = new ArrayList<>();
    private final List<byte[]> inputs = new ArrayList<>();
    private final List<byte[]> outputs = new ArrayList<>();
    private int count;

    private interface Body {
      void write(CodedOutputStream o) throws IOException;
    }

    /** A node; {@code keepdims} ≥ 0 adds that attribute (ReduceSum). */
    void node(String op, String out, int keepdims, String... in) {
      List<byte[]> attrs = new ArrayList<>();
      if (keepdims >= 0) {
        attrs.add(intAttr("keepdims", keepdims));
      }
      add(op, out, attrs, in);
    }

    void argNode(String op, String out, String in) {
      add(op, out, List.of(intAttr("axis", 1), intAttr("keepdims", 0)), in);
    }

    void cast(String out, String in, int to) {
      add("Cast", out, List.of(intAttr("to", to)), in);
    }

    void flatten(String out, String in) {
      add("Flatten", out, List.of(intAttr("axis", 1)), in);
    }

    private void add(String op, String out, List<byte[]> attrs, String... in) {
      String name = "ps_node_" + count++;
      nodes.add(
          msg(
              o -> {
                for (String s : in) {
                  o.writeString(1, s);
                }
                o.writeString(2, out);
                o.writeString(3, name);
                o.writeString(4, op);
                for (byte[] a : attrs) {
                  o.writeByteArray(5, a);
                }
              }));
    }

    void input(String name, int type, String... dims) {
      inputs.add(valueInfo(name, type, dims));
    }

    void output(String name) {
      outputs.add(msg(o -> o.writeString(1, name)));
    }

    void scalarF(String name, float v) {
      floats(name, new long[] {}, v);
    }

    void floats(String name, long[] dims, float... v) {
      ByteBuffer bb = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
      for (float f : v) {
        bb.putFloat(f);
      }
      inits.add(tensor(name, FLOAT, dims, bb.array()));
    }

    void int64(String name, long[] dims, long... v) {
      ByteBuffer bb = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
      for (long l : v) {
        bb.putLong(l);
      }
      inits.add(tensor(name, INT64, dims, bb.array()));
    }

    byte[] appendTo(byte[] model) {
      byte[] graph =
          msg(
              o -> {
                for (byte[] n : nodes) {
                  o.writeByteArray(1, n);
                }
                for (byte[] t : inits) {
                  o.writeByteArray(5, t);
                }
                for (byte[] v : inputs) {
                  o.writeByteArray(11, v);
                }
                for (byte[] v : outputs) {
                  o.writeByteArray(12, v);
                }
              });
      byte[] tail = msg(o -> o.writeByteArray(7, graph));
      byte[] out = new byte[model.length + tail.length];
      System.arraycopy(model, 0, out, 0, model.length);
      System.arraycopy(tail, 0, out, model.length, tail.length);
      return out;
    }

    private static byte[] intAttr(String name, long v) {
      return msg(
          o -> {
            o.writeString(1, name);
            o.writeInt64(3, v);
            o.writeEnum(20, 2);
          });
    }

    private static byte[] tensor(String name, int type, long[] dims, byte[] raw) {
      return msg(
          o -> {
            for (long d : dims) {
              o.writeInt64(1, d);
            }
            o.writeInt32(2, type);
            o.writeString(8, name);
            o.writeByteArray(9, raw);
          });
    }

    private static byte[] valueInfo(String name, int type, String... dims) {
      byte[] shape =
          msg(
              o -> {
                for (String d : dims) {
                  boolean fixed = d.chars().allMatch(Character::isDigit);
                  o.writeByteArray(
                      1,
                      msg(
                          x -> {
                            if (fixed) {
                              x.writeInt64(1, Long.parseLong(d));
                            } else {
                              x.writeString(2, d);
                            }
                          }));
                }
              });
      byte[] tt =
          msg(
              o -> {
                o.writeInt32(1, type);
                o.writeByteArray(2, shape);
              });
      return msg(
          o -> {
            o.writeString(1, name);
            o.writeByteArray(2, msg(x -> x.writeByteArray(1, tt)));
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
}
