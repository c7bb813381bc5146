package io.probestream.inference;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import io.probestream.contracts.topics.DlqReason;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.logging.Logger;

/**
 * One ONNX Runtime session over a model's bytes, with the graph outputs a probe needs. {@link #run}
 * is thread-safe (ORT's Run is); each calling thread gets its own reused direct input buffer. The
 * owner closes it after its last run.
 */
public final class ModelSession implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ModelSession.class.getName());

  /**
   * kOrtSessionOptionsModelExternalInitializersFileFolderPath
   * (onnxruntime_session_options_config_keys.h).
   */
  static final String EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path";

  // Logged once per process: "auto" on a machine without CUDA is the normal case, not news.
  private static final java.util.concurrent.atomic.AtomicBoolean AUTO_FALLBACK_LOGGED =
      new java.util.concurrent.atomic.AtomicBoolean();

  private final OrtSession session;
  private final String input;
  private final Set<String> outputs;
  private final String device;
  private final ThreadLocal<FloatBuffer> buffers = new ThreadLocal<>();

  private ModelSession(OrtSession session, String input, Set<String> outputs, String device) {
    this.session = session;
    this.input = input;
    this.outputs = outputs;
    this.device = device;
  }

  /** The process-wide ORT environment; created once, with logging at WARNING. */
  static OrtEnvironment environment() {
    return Holder.ENV;
  }

  private static final class Holder {
    static final OrtEnvironment ENV =
        OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, "probestream");
  }

  /**
   * Opens a session on {@code model} (already carrying every requested output) for the device
   * asked; {@code auto} and {@code cuda} fall back to CPU when CUDA cannot be used, and {@link
   * #device()} says which ran.
   *
   * @param threads intra-op threads for this session, at least 1
   */
  public static ModelSession open(
      byte[] model, String input, List<String> outputs, Device device, int threads) {
    return open(model, null, input, outputs, device, threads);
  }

  /**
   * As {@link #open(byte[], String, List, Device, int)}, for a model whose external data files ORT
   * reads from {@code externalDataDir} (null: the model has none). The caller has checked that
   * every location stays inside that directory.
   */
  public static ModelSession open(
      byte[] model,
      Path externalDataDir,
      String input,
      List<String> outputs,
      Device device,
      int threads) {
    OrtEnvironment env = environment();
    OrtSession session = null;
    String used = "cpu";
    if (device.kind() != Device.Kind.CPU) {
      try (OrtSession.SessionOptions so = options(threads, externalDataDir)) {
        so.addCUDA(device.ordinal());
        session = env.createSession(model, so);
        used = "cuda:" + device.ordinal();
      } catch (OrtException e) {
        if (device.kind() == Device.Kind.AUTO) {
          if (AUTO_FALLBACK_LOGGED.compareAndSet(false, true)) {
            LOG.info("device auto: CUDA not usable (" + e.getMessage() + "); running on CPU");
          }
        } else {
          LOG.warning(
              "CUDA device "
                  + device.ordinal()
                  + " unavailable ("
                  + e.getMessage()
                  + "); running on CPU");
        }
      }
    }
    if (session == null) {
      try (OrtSession.SessionOptions so = options(threads, externalDataDir)) {
        session = env.createSession(model, so);
      } catch (OrtException e) {
        throw new InferenceException(
            DlqReason.MODEL_UNLOADABLE, "ONNX Runtime cannot load the model: " + e.getMessage(), e);
      }
    }
    try {
      if (!session.getInputNames().contains(input)) {
        throw new InferenceException(
            DlqReason.INPUT_MISMATCH,
            "the model has no input '" + input + "'; its inputs are " + session.getInputNames());
      }
      Set<String> have = session.getOutputNames();
      List<String> missing = new ArrayList<>();
      for (String o : outputs) {
        if (!have.contains(o)) {
          missing.add(o);
        }
      }
      if (!missing.isEmpty()) {
        throw new InferenceException(
            DlqReason.UNKNOWN_TENSOR,
            "the model has no output " + missing + "; its outputs are " + have);
      }
      return new ModelSession(session, input, new LinkedHashSet<>(outputs), used);
    } catch (RuntimeException e) {
      closeQuietly(session);
      throw e;
    }
  }

  private static OrtSession.SessionOptions options(int threads, Path externalDataDir)
      throws OrtException {
    OrtSession.SessionOptions so = new OrtSession.SessionOptions();
    if (externalDataDir != null) {
      // A model loaded from bytes has no directory of its own; ORT resolves external data here.
      so.addConfigEntry(EXTERNAL_DATA_FOLDER, externalDataDir.toString());
    }
    so.setIntraOpNumThreads(threads);
    so.setInterOpNumThreads(1);
    so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
    return so;
  }

  private static void closeQuietly(OrtSession s) {
    try {
      s.close();
    } catch (OrtException e) {
      LOG.warning("closing a failed session: " + e.getMessage());
    }
  }

  /** The declared shape of the input (−1 for symbolic dims), for shape checks. */
  public long[] inputShape() {
    try {
      NodeInfo info = session.getInputInfo().get(input);
      if (info.getInfo() instanceof TensorInfo t) {
        if (t.type != OnnxJavaType.FLOAT) {
          throw new InferenceException(
              DlqReason.INPUT_MISMATCH,
              "model input '" + input + "' is " + t.type + "; only float32 inputs are supported");
        }
        return t.getShape();
      }
      throw new InferenceException(
          DlqReason.INPUT_MISMATCH, "model input '" + input + "' is not a tensor");
    } catch (OrtException e) {
      throw new InferenceException(DlqReason.MODEL_UNLOADABLE, "cannot read the model's input", e);
    }
  }

  /** "cpu" or "cuda:N": where this session runs. */
  public String device() {
    return device;
  }

  /** A tensor that came out of a run: float32 values, row-major, and its shape. */
  public record Output(float[] values, long[] shape) {}

  /**
   * Runs the model on {@code rows} samples ({@code values} row-major, {@code shape} including the
   * batch dimension) and returns the requested outputs, copied out of ORT's memory.
   */
  public Map<String, Output> run(float[] values, long[] shape) {
    long fixed = fixedBatch();
    if (fixed <= 0 || shape[0] == fixed) {
      return runOnce(values, shape);
    }
    // The model was exported with a fixed batch dimension (PyTorch's default without
    // dynamic_axes): run chunks of exactly that size, zero-padding the last, and keep only the
    // rows that were asked for.
    int rows = (int) shape[0];
    int per = rows == 0 ? 0 : values.length / rows;
    int b = (int) fixed;
    Map<String, float[]> joined = new LinkedHashMap<>();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    Map<String, Integer> perOut = new LinkedHashMap<>();
    long[] chunkShape = shape.clone();
    chunkShape[0] = b;
    for (int from = 0; from < rows; from += b) {
      int n = Math.min(b, rows - from);
      float[] chunk = new float[b * per];
      System.arraycopy(values, from * per, chunk, 0, n * per);
      Map<String, Output> out = runOnce(chunk, chunkShape);
      for (Map.Entry<String, Output> e : out.entrySet()) {
        Output o = e.getValue();
        if (o.shape().length == 0 || o.shape()[0] != b) {
          throw new InferenceException(
              DlqReason.SHAPE_MISMATCH,
              "output '"
                  + e.getKey()
                  + "' of a fixed-batch model has shape "
                  + java.util.Arrays.toString(o.shape())
                  + "; its first dimension must be the batch ("
                  + b
                  + ")");
        }
        int k = o.values().length / b;
        perOut.put(e.getKey(), k);
        float[] acc = joined.computeIfAbsent(e.getKey(), x -> new float[rows * k]);
        System.arraycopy(o.values(), 0, acc, from * k, n * k);
        long[] sh = o.shape().clone();
        sh[0] = rows;
        shapes.put(e.getKey(), sh);
      }
    }
    Map<String, Output> result = new LinkedHashMap<>();
    joined.forEach((name, v) -> result.put(name, new Output(v, shapes.get(name))));
    return result;
  }

  /** The model's declared batch size, or −1 when the batch dimension is symbolic. */
  public long fixedBatch() {
    long[] declared = inputShape();
    return declared.length == 0 ? -1 : declared[0];
  }

  /** An extra float input of a run. */
  public record Extra(float[] values, long[] shape) {}

  /**
   * Runs with the data input plus {@code labels} (int64, one per row) under {@code labelsName} and
   * extra float inputs (for graphs with statistic nodes); no fixed-batch chunking.
   */
  public Map<String, Output> runWith(
      float[] values, long[] shape, String labelsName, long[] labels, Map<String, Extra> extra) {
    OrtEnvironment env = environment();
    Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
    try {
      feeds.put(input, OnnxTensor.createTensor(env, FloatBuffer.wrap(values), shape));
      feeds.put(
          labelsName,
          OnnxTensor.createTensor(
              env, java.nio.LongBuffer.wrap(labels), new long[] {labels.length}));
      for (Map.Entry<String, Extra> e : extra.entrySet()) {
        feeds.put(
            e.getKey(),
            OnnxTensor.createTensor(
                env, FloatBuffer.wrap(e.getValue().values()), e.getValue().shape()));
      }
      try (OrtSession.Result result = session.run(feeds, outputs)) {
        return collect(result);
      }
    } catch (OrtException e) {
      throw new InferenceException(
          DlqReason.INFERENCE_FAILED,
          "ONNX Runtime failed on a batch of shape "
              + java.util.Arrays.toString(shape)
              + ": "
              + e.getMessage(),
          e);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
  }

  /** The shape ORT infers for a graph output (−1 for symbolic dims), or null if unknown. */
  public long[] outputShape(String name) {
    try {
      NodeInfo info = session.getOutputInfo().get(name);
      return info != null && info.getInfo() instanceof TensorInfo t ? t.getShape() : null;
    } catch (OrtException e) {
      return null;
    }
  }

  private Map<String, Output> collect(OrtSession.Result result) {
    Map<String, Output> out = new LinkedHashMap<>();
    for (String name : outputs) {
      Optional<ai.onnxruntime.OnnxValue> v = result.get(name);
      if (v.isEmpty() || !(v.get() instanceof OnnxTensor t)) {
        throw new InferenceException(
            DlqReason.UNKNOWN_TENSOR, "output '" + name + "' is not a tensor");
      }
      TensorInfo info = t.getInfo();
      if (info.type != OnnxJavaType.FLOAT) {
        throw new InferenceException(
            DlqReason.UNSUPPORTED_TENSOR,
            "output '" + name + "' is " + info.type + "; probes need float32");
      }
      FloatBuffer fb = t.getFloatBuffer();
      float[] copy = new float[fb.remaining()];
      fb.get(copy);
      out.put(name, new Output(copy, info.getShape()));
    }
    return out;
  }

  private Map<String, Output> runOnce(float[] values, long[] shape) {
    FloatBuffer buf = buffers.get();
    if (buf == null || buf.capacity() < values.length) {
      buf =
          ByteBuffer.allocateDirect(values.length * 4)
              .order(ByteOrder.nativeOrder())
              .asFloatBuffer();
      buffers.set(buf);
    }
    buf.clear();
    buf.put(values, 0, values.length);
    buf.flip();
    OrtEnvironment env = environment();
    try (OnnxTensor in = OnnxTensor.createTensor(env, buf, shape);
        OrtSession.Result result = session.run(Map.of(input, in), outputs)) {
      return collect(result);
    } catch (OrtException e) {
      throw new InferenceException(
          DlqReason.INFERENCE_FAILED,
          "ONNX Runtime failed on a batch of shape "
              + java.util.Arrays.toString(shape)
              + ": "
              + e.getMessage(),
          e);
    }
  }

  @Override
  public void close() {
    closeQuietly(session);
  }
}
