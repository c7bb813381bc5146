package io.probestream.inference;

import io.probestream.contracts.onnx.OnnxGraph;
import io.probestream.probes.complexity.IfmLayer;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.Function;

/**
 * Finds in a checkpoint's graph the weights that Iterative Feature Merging needs for a probed layer
 * (PROBES.md §2.1): producer ({@code Gemm}, {@code MatMul}[+{@code Add}] or {@code Conv}), an
 * optional {@code BatchNormalization} (folded in), a {@code Relu}/{@code LeakyRelu} whose output is
 * the layer, and its only consumer ({@code Gemm}, {@code MatMul} or {@code Conv}, directly or after
 * {@code GlobalAveragePool} and {@code Flatten}). Or takes the initializers a manifest names.
 * Stateless.
 */
final class IfmWeights {
  private IfmWeights() {}

  /**
   * What was found for one layer: the weights and the tensor that carries the layer's input (for
   * data-aware IFM), or a reason IFM cannot take the layer.
   *
   * @param layer the weights, or null when {@code unsupported} says why
   * @param input the producer's data input tensor, or null when unknown
   * @param dataRefusal why data-aware IFM cannot run on this layer (a convolution), or null
   * @param unsupported why the pattern is not supported, or null
   * @param slope the activation's slope below 0: 0 for Relu, alpha for LeakyRelu
   */
  record Found(IfmLayer layer, String input, String dataRefusal, String unsupported, double slope) {
    static Found no(String why) {
      return new Found(null, null, null, why, 0);
    }
  }

  private static final Set<String> ACTIVATIONS = Set.of("Relu", "LeakyRelu");
  private static final String CONV_DATA =
      "ifm_data: the layer is a convolution; data-aware IFM needs a Gemm/MatMul layer";

  /** Detects the pattern around {@code tensor}. */
  static Found detect(OnnxGraph graph, String tensor, Function<String, byte[]> external) {
    try {
      return detectOrThrow(graph, tensor, external);
    } catch (IllegalArgumentException e) {
      return Found.no(e.getMessage());
    }
  }

  private static Found detectOrThrow(
      OnnxGraph graph, String tensor, Function<String, byte[]> external) {
    OnnxGraph.Node act = graph.producerOf(tensor);
    if (act == null || !ACTIVATIONS.contains(act.opType())) {
      return Found.no(
          tensor
              + " is "
              + (act == null ? "not a node output" : "the output of " + act.opType())
              + ", not of Relu or LeakyRelu");
    }
    String pre = act.input(0);
    OnnxGraph.Node producer = graph.producerOf(pre);
    OnnxGraph.Node bn = null;
    if (producer != null && producer.opType().equals("BatchNormalization")) {
      if (graph.consumersOf(pre).size() != 1) {
        return Found.no("the batch norm's output " + pre + " has more than one consumer");
      }
      bn = producer;
      pre = bn.input(0);
      producer = graph.producerOf(pre);
    }
    if (producer == null) {
      return Found.no("the activation's input " + pre + " has no producing node");
    }
    if (graph.consumersOf(pre).size() != 1) {
      return Found.no("the pre-activation " + pre + " has more than one consumer");
    }
    Incoming in = incoming(graph, producer, external);
    if (in == null) {
      return Found.no("the activation's input comes from " + producer.opType());
    }
    if (bn != null) {
      in = in.foldBatchNorm(graph, bn, external);
    }
    double[][] out = outgoing(graph, tensor, in.w.length, external);
    if (out == null) {
      List<OnnxGraph.Node> consumers = graph.consumersOf(tensor);
      return Found.no(
          consumers.size() == 1
              ? tensor + " is consumed by " + consumers.get(0).opType()
              : tensor + " has " + consumers.size() + " consumers; IFM needs exactly one");
    }
    double slope = act.opType().equals("LeakyRelu") ? act.floatAttribute("alpha", 0.01) : 0;
    return new Found(new IfmLayer(in.w, in.b, out), in.x, in.conv ? CONV_DATA : null, null, slope);
  }

  /**
   * The layer as named for probed tensor {@code tensor}. The layout of {@code in} comes from the
   * node that uses it as its weight (Gemm transB=1 or Conv: [n0, d_in…]; Gemm transB=0 or MatMul:
   * [d_in, n0]), else from the PyTorch convention [n0, d_in…]; {@code out} is [d_out, n0…] or, when
   * only that fits n0, [n0, d_out]. A bias whose length is not n0 is refused.
   */
  static Found named(
      OnnxGraph graph,
      EvaluationSpec.IfmNames names,
      String tensor,
      Function<String, byte[]> external) {
    try {
      double[] raw = values(graph, names.in(), external);
      long[] dims = dims(graph, names.in());
      if (dims.length < 2) {
        return Found.no(names.in() + " has " + dims.length + " dimensions; 2 or more are needed");
      }
      String x = null;
      boolean transposed = false; // stored as [d_in, n0]
      for (OnnxGraph.Node n : graph.consumersOf(names.in())) {
        if (n.opType().equals("Gemm") && names.in().equals(n.input(1))) {
          x = n.input(0);
          transposed = n.intAttribute("transB", 0) == 0;
        } else if (n.opType().equals("MatMul") && names.in().equals(n.input(1))) {
          x = n.input(0);
          transposed = true;
        }
      }
      if (transposed && dims.length != 2) {
        return Found.no(names.in() + " is used as a matrix but has dims " + Arrays.toString(dims));
      }
      int n0 = (int) (transposed ? dims[1] : dims[0]);
      double[][] w = transposed ? transpose(raw, (int) dims[0], n0) : rows(raw, n0);
      double[] b = names.bias() == null ? new double[n0] : values(graph, names.bias(), external);
      if (b.length != n0) {
        return Found.no(
            names.bias()
                + " has "
                + b.length
                + " values; "
                + names.in()
                + " "
                + Arrays.toString(dims)
                + " has n0 = "
                + n0
                + " units");
      }
      double[][] out = outgoingMatrix(graph, names.out(), n0, external, false);
      if (out == null) {
        return Found.no(
            names.out()
                + " has dims "
                + Arrays.toString(dims(graph, names.out()))
                + "; none is n0 = "
                + n0);
      }
      OnnxGraph.Node act = graph.producerOf(tensor);
      double slope =
          act != null && act.opType().equals("LeakyRelu") ? act.floatAttribute("alpha", 0.01) : 0;
      String refusal =
          dims.length > 2
              ? CONV_DATA
              : x == null ? "ifm_data: no Gemm/MatMul node takes " + names.in() : null;
      return new Found(new IfmLayer(w, b, out), x, refusal, null, slope);
    } catch (IllegalArgumentException e) {
      return Found.no(e.getMessage());
    }
  }

  /** Incoming rows (n0 × d_in), bias (n0), the data input tensor and whether it is a Conv. */
  private record Incoming(double[][] w, double[] b, String x, boolean conv) {
    Incoming foldBatchNorm(OnnxGraph graph, OnnxGraph.Node bn, Function<String, byte[]> external) {
      double eps = bn.floatAttribute("epsilon", 1e-5);
      double[] gamma = values(graph, bn.input(1), external);
      double[] beta = values(graph, bn.input(2), external);
      double[] mean = values(graph, bn.input(3), external);
      double[] var = values(graph, bn.input(4), external);
      IfmLayer folded =
          new IfmLayer(w, b, new double[][] {new double[w.length]})
              .foldBatchNorm(gamma, beta, mean, var, eps);
      return new Incoming(folded.wIn(), folded.bIn(), x, conv);
    }
  }

  private static Incoming incoming(
      OnnxGraph graph, OnnxGraph.Node p, Function<String, byte[]> external) {
    switch (p.opType()) {
      case "Gemm" -> {
        if (p.intAttribute("transA", 0) != 0 || !isInitializer(graph, p.input(1))) {
          return null;
        }
        long[] dims = dims(graph, p.input(1));
        require(dims.length == 2, p.input(1) + " is not a matrix");
        double alpha = p.floatAttribute("alpha", 1.0);
        double[] raw = values(graph, p.input(1), external);
        boolean transB = p.intAttribute("transB", 0) != 0;
        double[][] w =
            transB
                ? rows(raw, (int) dims[0])
                : transpose(raw, (int) dims[0], (int) dims[1]); // B is d_in × n0
        scale(w, alpha);
        int n0 = w.length;
        double[] b = new double[n0];
        if (p.input(2) != null) {
          double[] c = bias(graph, p.input(2), n0, external);
          double beta = p.floatAttribute("beta", 1.0);
          for (int u = 0; u < n0; u++) {
            b[u] = beta * c[u];
          }
        }
        return new Incoming(w, b, p.input(0), false);
      }
      case "MatMul" -> {
        return matMul(graph, p, null, external);
      }
      case "Add" -> {
        for (int side = 0; side < 2; side++) {
          OnnxGraph.Node mm = graph.producerOf(p.input(side));
          String other = p.input(1 - side);
          if (mm != null
              && mm.opType().equals("MatMul")
              && isInitializer(graph, other)
              && graph.consumersOf(p.input(side)).size() == 1) {
            return matMul(graph, mm, other, external);
          }
        }
        return null;
      }
      case "Conv" -> {
        if (p.intAttribute("group", 1) != 1 || !isInitializer(graph, p.input(1))) {
          return null;
        }
        long[] dims = dims(graph, p.input(1));
        require(dims.length >= 3, p.input(1) + " is not a convolution filter bank");
        int n0 = (int) dims[0];
        double[][] w = rows(values(graph, p.input(1), external), n0);
        double[] b = p.input(2) == null ? new double[n0] : bias(graph, p.input(2), n0, external);
        return new Incoming(w, b, p.input(0), true);
      }
      default -> {
        return null;
      }
    }
  }

  private static Incoming matMul(
      OnnxGraph graph, OnnxGraph.Node mm, String biasName, Function<String, byte[]> external) {
    if (!isInitializer(graph, mm.input(1))) {
      return null;
    }
    long[] dims = dims(graph, mm.input(1));
    require(dims.length == 2, mm.input(1) + " is not a matrix");
    double[][] w = transpose(values(graph, mm.input(1), external), (int) dims[0], (int) dims[1]);
    double[] b =
        biasName == null ? new double[w.length] : bias(graph, biasName, w.length, external);
    return new Incoming(w, b, mm.input(0), false);
  }

  /** W_out (d_out × n0) of the only consumer of {@code tensor}, or null if unsupported. */
  private static double[][] outgoing(
      OnnxGraph graph, String tensor, int n0, Function<String, byte[]> external) {
    String t = tensor;
    boolean pooled = false;
    while (true) {
      List<OnnxGraph.Node> consumers = graph.consumersOf(t);
      if (consumers.size() != 1) {
        return null;
      }
      OnnxGraph.Node c = consumers.get(0);
      switch (c.opType()) {
        case "GlobalAveragePool" -> {
          if (pooled) {
            return null;
          }
          pooled = true;
          t = c.outputs().get(0);
        }
        case "Flatten" -> {
          if (!pooled || c.intAttribute("axis", 1) != 1) {
            return null;
          }
          t = c.outputs().get(0);
        }
        case "Gemm" -> {
          if (!t.equals(c.input(0))
              || c.intAttribute("transA", 0) != 0
              || !isInitializer(graph, c.input(1))) {
            return null;
          }
          double[][] w =
              outgoingMatrix(graph, c.input(1), n0, external, c.intAttribute("transB", 0) == 0);
          if (w != null) {
            scale(w, c.floatAttribute("alpha", 1.0));
          }
          return w;
        }
        case "MatMul" -> {
          if (!t.equals(c.input(0)) || !isInitializer(graph, c.input(1))) {
            return null;
          }
          return outgoingMatrix(graph, c.input(1), n0, external, true);
        }
        case "Conv" -> {
          if (pooled
              || !t.equals(c.input(0))
              || c.intAttribute("group", 1) != 1
              || !isInitializer(graph, c.input(1))) {
            return null;
          }
          return outgoingMatrix(graph, c.input(1), n0, external, false);
        }
        default -> {
          return null;
        }
      }
    }
  }

  /**
   * W_out from an initializer: 2-D as [d_out, n0] ({@code transposed}: [n0, d_out]); rank ≥ 3 as a
   * filter bank [out, n0, k…] whose rows are (out, k…) flattened. Null when no axis is n0.
   */
  private static double[][] outgoingMatrix(
      OnnxGraph graph, String name, int n0, Function<String, byte[]> external, boolean transposed) {
    long[] dims = dims(graph, name);
    double[] v = values(graph, name, external);
    if (dims.length == 2) {
      int r = (int) dims[0];
      int c = (int) dims[1];
      if (transposed && r == n0) {
        return transpose(v, r, c);
      }
      if (!transposed && c == n0) {
        return rows(v, r);
      }
      if (!transposed && r == n0) { // a named [n0, d_out] matrix (MatMul layout)
        return transpose(v, r, c);
      }
      return null;
    }
    if (dims.length < 3 || dims[1] != n0) {
      return null;
    }
    int out = (int) dims[0];
    int k = v.length / (out * n0);
    double[][] w = new double[out * k][n0];
    for (int o = 0; o < out; o++) {
      for (int u = 0; u < n0; u++) {
        for (int s = 0; s < k; s++) {
          w[o * k + s][u] = v[(o * n0 + u) * k + s];
        }
      }
    }
    return w;
  }

  private static boolean isInitializer(OnnxGraph graph, String name) {
    return name != null && graph.initializers().containsKey(name);
  }

  private static long[] dims(OnnxGraph graph, String name) {
    OnnxGraph.Initializer i = graph.initializers().get(name);
    if (i == null) {
      throw new IllegalArgumentException("the model has no initializer '" + name + "'");
    }
    return i.dims();
  }

  private static double[] values(OnnxGraph graph, String name, Function<String, byte[]> external) {
    OnnxGraph.Initializer i = graph.initializer(name, external);
    if (i == null) {
      throw new IllegalArgumentException("the model has no initializer '" + name + "'");
    }
    return i.values();
  }

  /** A bias of n0 values ([n0] or [1, n0]). */
  private static double[] bias(
      OnnxGraph graph, String name, int n0, Function<String, byte[]> external) {
    require(isInitializer(graph, name), "bias " + name + " is not an initializer");
    double[] v = values(graph, name, external);
    require(v.length == n0, "bias " + name + " has " + v.length + " values; n0 = " + n0);
    return v;
  }

  private static double[][] rows(double[] v, int n) {
    require(n > 0 && v.length % n == 0, "cannot cut " + v.length + " values into " + n + " rows");
    int len = v.length / n;
    double[][] w = new double[n][];
    for (int r = 0; r < n; r++) {
      w[r] = Arrays.copyOfRange(v, r * len, (r + 1) * len);
    }
    return w;
  }

  /** v is r × c row-major; the result is c × r. */
  private static double[][] transpose(double[] v, int r, int c) {
    double[][] t = new double[c][r];
    for (int i = 0; i < r; i++) {
      for (int j = 0; j < c; j++) {
        t[j][i] = v[i * c + j];
      }
    }
    return t;
  }

  private static void scale(double[][] w, double s) {
    if (s != 1.0) {
      for (double[] row : w) {
        for (int j = 0; j < row.length; j++) {
          row[j] *= s;
        }
      }
    }
  }

  private static void require(boolean ok, String why) {
    if (!ok) {
      throw new IllegalArgumentException(why);
    }
  }
}
