package io.probestream.contracts.onnx;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.WireFormat;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The parts of an ONNX model Probestream reads without a runtime: graph inputs and outputs with
 * their declared shapes, nodes, and initializers. Read schema-less with protobuf's wire format
 * (field numbers from onnx/onnx.proto), so no generated classes are needed. Immutable.
 */
public final class OnnxGraph {
  // TensorProto.DataType
  static final int FLOAT = 1;
  static final int INT64 = 7;
  static final int DOUBLE = 11;

  /** A graph input or output: name, element type (TensorProto.DataType) and dimensions. */
  public record ValueInfo(String name, int elemType, List<Dim> dims) {
    /** Rank, or -1 when the model declares no shape. */
    public int rank() {
      return dims == null ? -1 : dims.size();
    }
  }

  /** One dimension: a fixed size, or a symbolic name (size -1). */
  public record Dim(long size, String symbol) {
    public boolean fixed() {
      return size >= 0;
    }

    @Override
    public String toString() {
      return fixed() ? Long.toString(size) : (symbol == null || symbol.isEmpty() ? "?" : symbol);
    }
  }

  /** One node: op type, name, inputs, outputs and its integer and float attributes. */
  public record Node(
      String opType,
      String name,
      List<String> inputs,
      List<String> outputs,
      Map<String, Long> ints,
      Map<String, Float> floats) {
    public long intAttribute(String attribute, long fallback) {
      return ints.getOrDefault(attribute, fallback);
    }

    public double floatAttribute(String attribute, double fallback) {
      Float f = floats.get(attribute);
      return f == null ? fallback : f;
    }

    /** Input {@code i}, or null when the node has fewer inputs or leaves it empty (optional). */
    public String input(int i) {
      return i < inputs.size() && !inputs.get(i).isEmpty() ? inputs.get(i) : null;
    }
  }

  /** An initializer: name, data type, dims and its raw little-endian bytes (null if external). */
  public record Initializer(String name, int dataType, long[] dims, byte[] raw, float[] floatData) {
    /** The values as float64, row-major. */
    public double[] values() {
      int width;
      if (dataType == FLOAT) {
        width = 4;
      } else if (dataType == DOUBLE) {
        width = 8;
      } else {
        throw new OnnxFormatException(
            "initializer '"
                + name
                + "' has data type "
                + dataType
                + "; FLOAT (1) or DOUBLE (11) is needed");
      }
      long n = 1;
      for (long d : dims) {
        if (d < 0 || (d > 0 && n > Integer.MAX_VALUE / d)) {
          throw new OnnxFormatException(
              "initializer '" + name + "' has dims " + java.util.Arrays.toString(dims));
        }
        n *= d;
      }
      double[] out = new double[(int) n];
      if (raw != null) {
        if (raw.length != n * width) {
          throw new OnnxFormatException(
              "initializer '"
                  + name
                  + "' has "
                  + raw.length
                  + " bytes of raw data; dims "
                  + java.util.Arrays.toString(dims)
                  + " need "
                  + n * width);
        }
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < out.length; i++) {
          out[i] = dataType == FLOAT ? b.getFloat() : b.getDouble();
        }
      } else if (floatData != null && floatData.length == out.length) {
        for (int i = 0; i < out.length; i++) {
          out[i] = floatData[i];
        }
      } else {
        throw new OnnxFormatException(
            "initializer '" + name + "' has no inline data (external data is not read here)");
      }
      return out;
    }
  }

  private final List<ValueInfo> inputs;
  private final List<ValueInfo> outputs;
  private final List<Node> nodes;
  private final Map<String, Initializer> initializers;

  private OnnxGraph(
      List<ValueInfo> inputs,
      List<ValueInfo> outputs,
      List<Node> nodes,
      Map<String, Initializer> inits) {
    this.inputs = List.copyOf(inputs);
    this.outputs = List.copyOf(outputs);
    this.nodes = List.copyOf(nodes);
    this.initializers = Collections.unmodifiableMap(inits);
  }

  /** Reads the model's graph; throws {@link OnnxFormatException} if the bytes are not ONNX. */
  public static OnnxGraph parse(byte[] model) {
    try {
      CodedInputStream in = CodedInputStream.newInstance(model);
      in.setSizeLimit(Integer.MAX_VALUE);
      byte[] graph = null;
      boolean sawIr = false;
      while (true) {
        int tag = in.readTag();
        if (tag == 0) {
          break;
        }
        int field = WireFormat.getTagFieldNumber(tag);
        if (field == 1 && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_VARINT) {
          in.readInt64();
          sawIr = true;
        } else if (field == 7
            && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
          byte[] part = in.readByteArray();
          graph = graph == null ? part : concat(graph, part); // repeated embedded message: merge
        } else if (!in.skipField(tag)) {
          break;
        }
      }
      if (graph == null || !sawIr) {
        throw new OnnxFormatException(
            "not an ONNX model: no "
                + (sawIr ? "graph" : "ir_version")
                + " field ("
                + model.length
                + " bytes)");
      }
      return parseGraph(graph);
    } catch (IOException | RuntimeException e) {
      if (e instanceof OnnxFormatException ofe) {
        throw ofe;
      }
      throw new OnnxFormatException("not an ONNX model: " + e.getMessage(), e);
    }
  }

  private static OnnxGraph parseGraph(byte[] graph) throws IOException {
    List<ValueInfo> inputs = new ArrayList<>();
    List<ValueInfo> outputs = new ArrayList<>();
    List<Node> nodes = new ArrayList<>();
    Map<String, Initializer> inits = new LinkedHashMap<>();
    CodedInputStream in = CodedInputStream.newInstance(graph);
    in.setSizeLimit(Integer.MAX_VALUE);
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (WireFormat.getTagFieldNumber(tag)) {
        case 1 -> nodes.add(parseNode(in.readByteArray()));
        case 5 -> {
          Initializer t = parseTensor(in.readByteArray());
          inits.put(t.name(), t);
        }
        case 11 -> inputs.add(parseValueInfo(in.readByteArray()));
        case 12 -> outputs.add(parseValueInfo(in.readByteArray()));
        default -> in.skipField(tag);
      }
    }
    // An appended output that names an existing one (protobuf merge) is the same output.
    Map<String, ValueInfo> unique = new LinkedHashMap<>();
    for (ValueInfo v : outputs) {
      unique.merge(v.name(), v, (a, b) -> a.dims() != null ? a : b);
    }
    return new OnnxGraph(inputs, new ArrayList<>(unique.values()), nodes, inits);
  }

  private static Node parseNode(byte[] bytes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    List<String> ins = new ArrayList<>();
    List<String> outs = new ArrayList<>();
    String name = "";
    String op = "";
    Map<String, Long> ints = new LinkedHashMap<>();
    Map<String, Float> floats = new LinkedHashMap<>();
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (WireFormat.getTagFieldNumber(tag)) {
        case 1 -> ins.add(in.readStringRequireUtf8());
        case 2 -> outs.add(in.readStringRequireUtf8());
        case 3 -> name = in.readStringRequireUtf8();
        case 4 -> op = in.readStringRequireUtf8();
        case 5 -> parseAttribute(in.readByteArray(), ints, floats);
        default -> in.skipField(tag);
      }
    }
    return new Node(
        op, name, List.copyOf(ins), List.copyOf(outs), Map.copyOf(ints), Map.copyOf(floats));
  }

  /** An AttributeProto: keeps its scalar int (field 3) or float (field 2) value, if it has one. */
  private static void parseAttribute(
      byte[] bytes, Map<String, Long> ints, Map<String, Float> floats) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    String name = null;
    Long value = null;
    Float f = null;
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (WireFormat.getTagFieldNumber(tag)) {
        case 1 -> name = in.readStringRequireUtf8();
        case 2 -> f = in.readFloat();
        case 3 -> value = in.readInt64();
        default -> in.skipField(tag);
      }
    }
    if (name != null && value != null) {
      ints.put(name, value);
    }
    if (name != null && f != null) {
      floats.put(name, f);
    }
  }

  private static Initializer parseTensor(byte[] bytes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    in.setSizeLimit(Integer.MAX_VALUE);
    List<Long> dims = new ArrayList<>();
    int type = 0;
    String name = "";
    byte[] raw = null;
    List<Float> floats = new ArrayList<>();
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      int field = WireFormat.getTagFieldNumber(tag);
      int wire = WireFormat.getTagWireType(tag);
      if (field == 1 && wire == WireFormat.WIRETYPE_VARINT) {
        dims.add(in.readInt64());
      } else if (field == 1 && wire == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
        int limit = in.pushLimit(in.readRawVarint32());
        while (in.getBytesUntilLimit() > 0) {
          dims.add(in.readInt64());
        }
        in.popLimit(limit);
      } else if (field == 2) {
        type = in.readInt32();
      } else if (field == 4 && wire == WireFormat.WIRETYPE_LENGTH_DELIMITED) {
        int limit = in.pushLimit(in.readRawVarint32());
        while (in.getBytesUntilLimit() > 0) {
          floats.add(in.readFloat());
        }
        in.popLimit(limit);
      } else if (field == 4 && wire == WireFormat.WIRETYPE_FIXED32) {
        floats.add(in.readFloat());
      } else if (field == 8) {
        name = in.readStringRequireUtf8();
      } else if (field == 9) {
        raw = in.readByteArray();
      } else {
        in.skipField(tag);
      }
    }
    long[] d = dims.stream().mapToLong(Long::longValue).toArray();
    float[] f = new float[floats.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = floats.get(i);
    }
    return new Initializer(name, type, d, raw, f.length == 0 ? null : f);
  }

  private static ValueInfo parseValueInfo(byte[] bytes) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    String name = "";
    int elemType = 0;
    List<Dim> dims = null;
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (WireFormat.getTagFieldNumber(tag)) {
        case 1 -> name = in.readStringRequireUtf8();
        case 2 -> {
          // TypeProto.tensor_type(1) → elem_type(1), shape(2) → dim(1) {dim_value(1) |
          // dim_param(2)}
          CodedInputStream type = CodedInputStream.newInstance(in.readByteArray());
          for (int t = type.readTag(); t != 0; t = type.readTag()) {
            if (WireFormat.getTagFieldNumber(t) != 1) {
              type.skipField(t);
              continue;
            }
            CodedInputStream tensor = CodedInputStream.newInstance(type.readByteArray());
            for (int u = tensor.readTag(); u != 0; u = tensor.readTag()) {
              int f = WireFormat.getTagFieldNumber(u);
              if (f == 1) {
                elemType = tensor.readInt32();
              } else if (f == 2) {
                dims = parseShape(tensor.readByteArray());
              } else {
                tensor.skipField(u);
              }
            }
          }
        }
        default -> in.skipField(tag);
      }
    }
    return new ValueInfo(name, elemType, dims == null ? null : List.copyOf(dims));
  }

  private static List<Dim> parseShape(byte[] bytes) throws IOException {
    List<Dim> dims = new ArrayList<>();
    CodedInputStream in = CodedInputStream.newInstance(bytes);
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (WireFormat.getTagFieldNumber(tag) != 1) {
        in.skipField(tag);
        continue;
      }
      CodedInputStream dim = CodedInputStream.newInstance(in.readByteArray());
      long size = -1;
      String symbol = null;
      for (int t = dim.readTag(); t != 0; t = dim.readTag()) {
        switch (WireFormat.getTagFieldNumber(t)) {
          case 1 -> size = dim.readInt64();
          case 2 -> symbol = dim.readStringRequireUtf8();
          default -> dim.skipField(t);
        }
      }
      dims.add(new Dim(size, symbol));
    }
    return dims;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = new byte[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /** Graph inputs that are not initializers (the data inputs). */
  public List<ValueInfo> inputs() {
    List<ValueInfo> data = new ArrayList<>();
    for (ValueInfo v : inputs) {
      if (!initializers.containsKey(v.name())) {
        data.add(v);
      }
    }
    return data;
  }

  public List<ValueInfo> outputs() {
    return outputs;
  }

  public List<Node> nodes() {
    return nodes;
  }

  public Map<String, Initializer> initializers() {
    return initializers;
  }

  /** The data input of that name, or an error listing the model's inputs. */
  public ValueInfo input(String name) {
    for (ValueInfo v : inputs()) {
      if (v.name().equals(name)) {
        return v;
      }
    }
    throw new OnnxFormatException(
        "the model has no input '" + name + "'; its inputs are " + names(inputs()));
  }

  /** Whether some node produces, or the graph takes as input, a tensor of this name. */
  public boolean hasTensor(String name) {
    for (Node n : nodes) {
      if (n.outputs().contains(name)) {
        return true;
      }
    }
    for (ValueInfo v : inputs) {
      if (v.name().equals(name)) {
        return true;
      }
    }
    return false;
  }

  /** Every tensor a node produces, in graph order: the candidates for a probed layer. */
  public List<String> nodeOutputs() {
    List<String> names = new ArrayList<>();
    for (Node n : nodes) {
      names.addAll(n.outputs());
    }
    return names;
  }

  /** Whether the graph already lists this tensor as an output. */
  public boolean isOutput(String name) {
    for (ValueInfo v : outputs) {
      if (v.name().equals(name)) {
        return true;
      }
    }
    return false;
  }

  /**
   * The classifier: the node that consumes {@code weightName} as its weight (Gemm, or MatMul), its
   * feature input, and W as a C × d matrix with rows = classes (PROBES.md §0).
   */
  public Classifier classifier(String weightName) {
    return classifier(weightName, name -> null);
  }

  /**
   * As {@link #classifier(String)}, for a model that may keep W as external data: {@code
   * externalRaw} gives the raw little-endian bytes of an initializer by name, or null when it
   * cannot.
   */
  public Classifier classifier(String weightName, Function<String, byte[]> externalRaw) {
    Initializer w = initializer(weightName, externalRaw);
    if (w == null) {
      throw new OnnxFormatException(
          "the model has no initializer '"
              + weightName
              + "'; 2-D initializers are "
              + matrixInitializers());
    }
    if (w.dims().length != 2) {
      throw new OnnxFormatException(
          "classifier weight '"
              + weightName
              + "' has "
              + w.dims().length
              + " dimensions; 2 are needed");
    }
    for (Node n : nodes) {
      int at = n.inputs().indexOf(weightName);
      if (at < 0) {
        continue;
      }
      boolean rowsAreClasses;
      if (n.opType().equals("Gemm") && at == 1) {
        if (n.intAttribute("transA", 0) != 0) {
          throw new OnnxFormatException(
              "classifier node '" + n.name() + "' is a Gemm with transA=1, which is not supported");
        }
        rowsAreClasses = n.intAttribute("transB", 0) != 0; // transB=0: B is d × C
      } else if (n.opType().equals("MatMul") && at == 1) {
        rowsAreClasses = false; // h · B with B d × C
      } else {
        continue;
      }
      int rows = (int) w.dims()[0];
      int cols = (int) w.dims()[1];
      double[] v = w.values();
      int classes = rowsAreClasses ? rows : cols;
      int width = rowsAreClasses ? cols : rows;
      double[][] m = new double[classes][width];
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
          if (rowsAreClasses) {
            m[r][c] = v[r * cols + c];
          } else {
            m[c][r] = v[r * cols + c];
          }
        }
      }
      return new Classifier(n.inputs().get(0), m);
    }
    throw new OnnxFormatException(
        "initializer '" + weightName + "' is not the weight (input B) of a Gemm or MatMul node");
  }

  /**
   * The initializer {@code name} with its bytes, read through {@code externalRaw} when the model
   * keeps them as external data (that function gives the raw bytes by name, or null); null when the
   * model has no such initializer.
   */
  public Initializer initializer(String name, Function<String, byte[]> externalRaw) {
    Initializer w = initializers.get(name);
    if (w != null && w.raw() == null && w.floatData() == null) {
      byte[] raw = externalRaw.apply(name);
      if (raw != null) {
        w = new Initializer(w.name(), w.dataType(), w.dims(), raw, null);
      }
    }
    return w;
  }

  /**
   * The model bytes with extra graph outputs appended: protobuf concatenation merges repeated
   * fields, so ORT sees {@code names} as outputs and infers their types. Names already listed as
   * outputs are left out.
   */
  public static byte[] withOutputs(byte[] model, List<String> names) {
    java.util.Set<String> added = new java.util.LinkedHashSet<>(names);
    for (ValueInfo v : parse(model).outputs()) {
      added.remove(v.name());
    }
    if (added.isEmpty()) {
      return model.clone();
    }
    try {
      java.io.ByteArrayOutputStream graph = new java.io.ByteArrayOutputStream();
      com.google.protobuf.CodedOutputStream g =
          com.google.protobuf.CodedOutputStream.newInstance(graph);
      for (String n : added) {
        java.io.ByteArrayOutputStream vi = new java.io.ByteArrayOutputStream();
        com.google.protobuf.CodedOutputStream v =
            com.google.protobuf.CodedOutputStream.newInstance(vi);
        v.writeString(1, n);
        v.flush();
        g.writeByteArray(12, vi.toByteArray());
      }
      g.flush();
      java.io.ByteArrayOutputStream tail = new java.io.ByteArrayOutputStream(model.length + 64);
      tail.write(model);
      com.google.protobuf.CodedOutputStream t =
          com.google.protobuf.CodedOutputStream.newInstance(tail);
      t.writeByteArray(7, graph.toByteArray());
      t.flush();
      return tail.toByteArray();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /**
   * The feature tensor that feeds the node producing {@code logits}, when that node is a Gemm, a
   * MatMul, or an Add of a MatMul and a bias; null otherwise.
   */
  public String classifierInputOf(String logits) {
    Node producer = producerOf(logits);
    if (producer != null && producer.opType().equals("Add")) {
      for (String in : producer.inputs()) {
        Node mm = producerOf(in);
        if (mm != null && mm.opType().equals("MatMul")) {
          producer = mm;
          break;
        }
      }
    }
    if (producer == null
        || !(producer.opType().equals("Gemm") || producer.opType().equals("MatMul"))
        || producer.intAttribute("transA", 0) != 0) {
      return null;
    }
    return producer.inputs().get(0);
  }

  /** Activation ops whose outputs are candidate layers for {@link #autoLayers}. */
  private static final java.util.Set<String> ACTIVATIONS =
      java.util.Set.of(
          "Relu",
          "LeakyRelu",
          "PRelu",
          "Elu",
          "Selu",
          "Celu",
          "Gelu",
          "Sigmoid",
          "HardSigmoid",
          "Tanh",
          "Softplus",
          "Mish",
          "HardSwish");

  /**
   * Sensible layers to probe when a user says {@code auto}: the output of every activation node
   * (the end of each block, and the activations inside blocks), in graph order, plus the tensor
   * that feeds the classifier; the last {@code max} of them, nearest the logits. Names are the
   * tensors' own.
   *
   * @param classifierInput the tensor feeding the classifier, or null when unknown
   */
  public List<String> autoLayers(String classifierInput, int max) {
    java.util.LinkedHashSet<String> picked = new java.util.LinkedHashSet<>();
    for (Node n : nodes) {
      if (ACTIVATIONS.contains(n.opType())
          && !n.outputs().isEmpty()
          && !n.outputs().get(0).isEmpty()) {
        picked.add(n.outputs().get(0));
      }
    }
    if (classifierInput != null) {
      picked.remove(classifierInput);
      picked.add(classifierInput);
    }
    List<String> all = new ArrayList<>(picked);
    return List.copyOf(all.subList(Math.max(0, all.size() - max), all.size()));
  }

  /** The nodes that take {@code tensor} as an input, in graph order. */
  public List<Node> consumersOf(String tensor) {
    List<Node> out = new ArrayList<>();
    for (Node n : nodes) {
      if (n.inputs().contains(tensor)) {
        out.add(n);
      }
    }
    return out;
  }

  /** The node that outputs {@code tensor}, or null. */
  public Node producerOf(String tensor) {
    for (Node n : nodes) {
      if (n.outputs().contains(tensor)) {
        return n;
      }
    }
    return null;
  }

  /** The classifier's feature input tensor and its weight W (C × d, rows = classes). */
  public record Classifier(String featureTensor, double[][] weight) {}

  private List<String> matrixInitializers() {
    List<String> names = new ArrayList<>();
    initializers.forEach(
        (n, t) -> {
          if (t.dims().length == 2) {
            names.add(n);
          }
        });
    return names;
  }

  static List<String> names(List<ValueInfo> values) {
    List<String> n = new ArrayList<>();
    for (ValueInfo v : values) {
      n.add(v.name());
    }
    return n;
  }

  /**
   * A tensor whose values live in a file beside the model (ONNX external data: TensorProto
   * data_location = EXTERNAL, or external_data entries): the tensor's name and its {@code
   * external_data} entries (location, offset, length, checksum…). Immutable.
   */
  public record ExternalData(String tensor, Map<String, String> entries) {
    /** Part of ONNX Runtime's tag that makes {@code offset} a memory address, not a file offset. */
    static final String ORT_MEMORY_TAG = "_ORT_MEM_ADDR_";

    public ExternalData {
      entries = Collections.unmodifiableMap(new LinkedHashMap<>(entries));
    }

    /** The file, relative to the model's directory; empty when the model names none. */
    public String location() {
      return entries.getOrDefault("location", "");
    }

    /** Byte offset in the file; 0 when absent. */
    public long offset() {
      return number("offset", 0);
    }

    /** Byte length in the file; -1 (to the end of the file) when absent. */
    public long length() {
      return number("length", -1);
    }

    private long number(String key, long fallback) {
      String v = entries.get(key);
      if (v == null) {
        return fallback;
      }
      try {
        long n = Long.parseLong(v.trim());
        if (n >= 0) {
          return n;
        }
      } catch (NumberFormatException e) {
        // reported below, naming the tensor
      }
      throw new OnnxFormatException(
          "tensor '" + tensor + "' has external_data " + key + " = '" + v + "'; must be ≥ 0");
    }

    /**
     * Why {@link #location()} could reach outside the model's directory (empty, absolute, a {@code
     * ..} segment, or ORT's memory-address tag), or null when it cannot.
     */
    public String escape() {
      String l = location();
      if (l.isEmpty()) {
        return "it names no location";
      }
      if (l.contains(ORT_MEMORY_TAG) || l.indexOf('\0') >= 0) {
        return "it is not a file name";
      }
      if (l.startsWith("/") || l.startsWith("\\") || l.matches("^[A-Za-z]:.*")) {
        return "it is absolute";
      }
      for (String segment : l.split("[/\\\\]")) {
        if (segment.equals("..")) {
          return "it contains '..'";
        }
      }
      return null;
    }
  }

  private static final int MAX_NESTING = 64;

  /**
   * Every tensor of the model that keeps its values as external data, in file order: initializers
   * and sparse initializers of the graph and of every subgraph, tensors in node attributes, and
   * those of functions and training info. Reads the wire format in place (no copies of raw data),
   * so it is cheap on large models; throws {@link OnnxFormatException} if the bytes are not ONNX.
   */
  public static List<ExternalData> externalData(byte[] model) {
    List<ExternalData> out = new ArrayList<>();
    try {
      CodedInputStream in = CodedInputStream.newInstance(model);
      in.setSizeLimit(Integer.MAX_VALUE);
      for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
        switch (messageField(tag)) {
          case 7 -> nested(in, 0, out, OnnxGraph::scanGraph); // graph
          case 20 -> nested(in, 0, out, OnnxGraph::scanTrainingInfo);
          case 25 -> nested(in, 0, out, OnnxGraph::scanFunction); // functions
          default -> in.skipField(tag);
        }
      }
    } catch (IOException | RuntimeException e) {
      if (e instanceof OnnxFormatException ofe) {
        throw ofe;
      }
      throw new OnnxFormatException("not an ONNX model: " + e.getMessage(), e);
    }
    return out;
  }

  private interface Scan {
    void scan(CodedInputStream in, int depth, List<ExternalData> out) throws IOException;
  }

  /** The field number of a length-delimited tag (every message field), or -1 for other wires. */
  private static int messageField(int tag) {
    return WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_LENGTH_DELIMITED
        ? WireFormat.getTagFieldNumber(tag)
        : -1;
  }

  private static void nested(CodedInputStream in, int depth, List<ExternalData> out, Scan scan)
      throws IOException {
    if (depth > MAX_NESTING) {
      throw new OnnxFormatException("graphs nest deeper than " + MAX_NESTING + " levels");
    }
    int limit = in.pushLimit(in.readRawVarint32());
    scan.scan(in, depth + 1, out);
    in.popLimit(limit);
  }

  private static void scanTrainingInfo(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      int f = messageField(tag);
      if (f == 1 || f == 2) { // initialization, algorithm
        nested(in, depth, out, OnnxGraph::scanGraph);
      } else {
        in.skipField(tag);
      }
    }
  }

  private static void scanFunction(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (messageField(tag) == 7) { // FunctionProto.node
        nested(in, depth, out, OnnxGraph::scanNode);
      } else {
        in.skipField(tag);
      }
    }
  }

  private static void scanGraph(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (messageField(tag)) {
        case 1 -> nested(in, depth, out, OnnxGraph::scanNode);
        case 5 -> nested(in, depth, out, OnnxGraph::scanTensor); // initializer
        case 15 -> nested(in, depth, out, OnnxGraph::scanSparse); // sparse_initializer
        default -> in.skipField(tag);
      }
    }
  }

  private static void scanNode(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (messageField(tag) == 5) { // attribute
        nested(in, depth, out, OnnxGraph::scanAttribute);
      } else {
        in.skipField(tag);
      }
    }
  }

  private static void scanAttribute(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      switch (messageField(tag)) {
        case 5, 10 -> nested(in, depth, out, OnnxGraph::scanTensor); // t, tensors
        case 6, 11 -> nested(in, depth, out, OnnxGraph::scanGraph); // g, graphs
        case 22, 23 -> nested(in, depth, out, OnnxGraph::scanSparse); // sparse_tensor(s)
        default -> in.skipField(tag);
      }
    }
  }

  private static void scanSparse(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      int f = messageField(tag);
      if (f == 1 || f == 2) { // values, indices
        nested(in, depth, out, OnnxGraph::scanTensor);
      } else {
        in.skipField(tag);
      }
    }
  }

  // onnx.proto is proto2: ORT does not insist on UTF-8 in strings, so neither does this scan.
  private static void scanTensor(CodedInputStream in, int depth, List<ExternalData> out)
      throws IOException {
    String name = "";
    boolean external = false;
    Map<String, String> entries = new LinkedHashMap<>();
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      int field = WireFormat.getTagFieldNumber(tag);
      if (field == 8 && messageField(tag) == 8) {
        name = in.readString();
      } else if (field == 13 && messageField(tag) == 13) {
        // StringStringEntryProto: key = 1, value = 2
        CodedInputStream e = CodedInputStream.newInstance(in.readByteArray());
        String key = "";
        String value = "";
        for (int t = e.readTag(); t != 0; t = e.readTag()) {
          switch (messageField(t)) {
            case 1 -> key = e.readString();
            case 2 -> value = e.readString();
            default -> e.skipField(t);
          }
        }
        entries.put(key, value);
      } else if (field == 14 && WireFormat.getTagWireType(tag) == WireFormat.WIRETYPE_VARINT) {
        external = in.readEnum() == 1; // DataLocation.EXTERNAL
      } else {
        in.skipField(tag);
      }
    }
    if (external || !entries.isEmpty()) {
      out.add(new ExternalData(name, entries));
    }
  }
}
