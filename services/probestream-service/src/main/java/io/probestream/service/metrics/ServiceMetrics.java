package io.probestream.service.metrics;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Every Prometheus family the service exposes (DESIGN.md §3), in one registry of its own.
 * Thread-safe (the client library's metrics are); labels never carry steps, offsets, ids or hashes.
 */
public final class ServiceMetrics {
  private static final String[] PROBE_LABELS = {"experiment", "run", "layer", "split"};

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final Counter consumed;
  private final Counter dlq;
  private final Counter published;
  private final Counter pauses;
  private final Histogram checkpointDuration;
  private final Histogram inferenceDuration;
  private final Gauge inFlight;
  private final Gauge lastStep;
  private final Gauge device;
  private final Map<String, Gauge> probeGauges = new ConcurrentHashMap<>();

  public ServiceMetrics() {
    consumed =
        Counter.builder()
            .name("probestream_records_consumed_total")
            .help("Records read from the input topics.")
            .labelNames("topic")
            .register(registry);
    dlq =
        Counter.builder()
            .name("probestream_dlq_records_total")
            .help("Records sent to the dead-letter topic, by reason.")
            .labelNames("reason")
            .register(registry);
    published =
        Counter.builder()
            .name("probestream_results_published_total")
            .help("Probe results acknowledged by Kafka.")
            .labelNames("probe")
            .register(registry);
    pauses =
        Counter.builder()
            .name("probestream_consumer_pauses_total")
            .help("Times intake paused because the worker pool was full.")
            .register(registry);
    checkpointDuration =
        Histogram.builder()
            .name("probestream_checkpoint_duration_seconds")
            .help("From a checkpoint's start of evaluation to its results acknowledged.")
            .classicOnly()
            .classicUpperBounds(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
            .register(registry);
    inferenceDuration =
        Histogram.builder()
            .name("probestream_inference_duration_seconds")
            .help("Inference and probe math of one checkpoint on its reference set.")
            .classicOnly()
            .classicUpperBounds(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
            .register(registry);
    inFlight =
        Gauge.builder()
            .name("probestream_worker_in_flight")
            .help("Tasks on the worker pool now.")
            .register(registry);
    lastStep =
        Gauge.builder()
            .name("probestream_probe_last_step")
            .help("Training step of the latest checkpoint with published results.")
            .labelNames("experiment", "run")
            .register(registry);
    device =
        Gauge.builder()
            .name("probestream_device_info")
            .help("Device ONNX Runtime ran the latest checkpoint on (1 for that device).")
            .labelNames("device")
            .register(registry);
  }

  public void consumed(String topic) {
    consumed.labelValues(topic).inc();
  }

  public void deadLettered(String reason) {
    dlq.labelValues(reason).inc();
  }

  /** Makes the DLQ family show every reason at 0 from the start, so rates work at once. */
  public void initDlqReasons(Iterable<String> reasons) {
    for (String r : reasons) {
      dlq.initLabelValues(r);
    }
  }

  public void published(String probe) {
    published.labelValues(probe).inc();
  }

  public void paused() {
    pauses.inc();
  }

  public void inFlight(int n) {
    inFlight.set(n);
  }

  public void checkpointSeconds(double s) {
    checkpointDuration.observe(s);
  }

  public void inferenceSeconds(double s) {
    inferenceDuration.observe(s);
  }

  public void device(String name) {
    device.clear();
    device.labelValues(name).set(1);
  }

  public void lastStep(String experiment, String run, long step) {
    lastStep.labelValues(experiment, run).set(step);
  }

  /**
   * Sets {@code probestream_<probe>_<metric>} for one layer; a null value removes the series, so a
   * metric that became undefined is not shown with a stale value.
   */
  public void probeMetric(
      String probe,
      String metric,
      String experiment,
      String run,
      String layer,
      String split,
      Double v) {
    Gauge g =
        probeGauges.computeIfAbsent(
            probe + "_" + metric,
            name ->
                Gauge.builder()
                    .name("probestream_" + name)
                    .help("Probe metric " + metric + " of " + probe + " (PROBES.md).")
                    .labelNames(PROBE_LABELS)
                    .register(registry));
    if (v == null) {
      g.remove(experiment, run, layer, split);
    } else {
      g.labelValues(experiment, run, layer, split).set(v);
    }
  }

  /** Removes every series of an experiment (expired or forgotten). */
  public void forgetExperiment(String experiment) {
    for (Gauge g : probeGauges.values()) {
      g.removeIf(labels -> labels.get(0).equals(experiment));
    }
    lastStep.removeIf(labels -> labels.get(0).equals(experiment));
  }

  /** The Prometheus text exposition (format 0.0.4). */
  public String scrape() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      PrometheusTextFormatWriter.create().write(out, registry.scrape());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString(java.nio.charset.StandardCharsets.UTF_8);
  }

  public static String contentType() {
    return PrometheusTextFormatWriter.CONTENT_TYPE;
  }
}
