package io.probestream.service.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class ServiceMetricsTest {
  @Test
  void expositionIsExactlyTheDocumentedFamilies() {
    ServiceMetrics m = new ServiceMetrics();
    m.initDlqReasons(List.of("invalid_json"));
    m.consumed("probestream.batches");
    m.deadLettered("invalid_json");
    m.deadLettered("invalid_json");
    m.published("neural_collapse");
    m.paused();
    m.inFlight(3);
    m.lastStep("e", "r", 1200);
    m.device("cpu");
    m.probeMetric("neural_collapse", "nc1", "e", "r", "fc2", "reference", 0.25);
    m.probeMetric(
        "neural_collapse",
        "cdnv",
        "e",
        "r",
        "fc2",
        "reference",
        null); // undefined: no series, and a family without series is not written
    m.checkpointSeconds(0.3);
    m.inferenceSeconds(0.02);
    String buckets = "0.01,0.05,0.1,0.25,0.5,1.0,2.5,5.0,10.0,30.0,60.0,300.0";
    assertThat(m.scrape())
        .isEqualTo(
            "# HELP probestream_checkpoint_duration_seconds From a checkpoint's start of evaluation to its results acknowledged.\n"
                + "# TYPE probestream_checkpoint_duration_seconds histogram\n"
                + histogram("probestream_checkpoint_duration_seconds", buckets, 0.3)
                + "# HELP probestream_consumer_pauses_total Times intake paused because the worker pool was full.\n"
                + "# TYPE probestream_consumer_pauses_total counter\n"
                + "probestream_consumer_pauses_total 1.0\n"
                + "# HELP probestream_device_info Device ONNX Runtime ran the latest checkpoint on (1 for that device).\n"
                + "# TYPE probestream_device_info gauge\n"
                + "probestream_device_info{device=\"cpu\"} 1.0\n"
                + "# HELP probestream_dlq_records_total Records sent to the dead-letter topic, by reason.\n"
                + "# TYPE probestream_dlq_records_total counter\n"
                + "probestream_dlq_records_total{reason=\"invalid_json\"} 2.0\n"
                + "# HELP probestream_inference_duration_seconds Inference and probe math of one checkpoint on its reference set.\n"
                + "# TYPE probestream_inference_duration_seconds histogram\n"
                + histogram("probestream_inference_duration_seconds", buckets, 0.02)
                + "# HELP probestream_neural_collapse_nc1 Probe metric nc1 of neural_collapse (PROBES.md).\n"
                + "# TYPE probestream_neural_collapse_nc1 gauge\n"
                + "probestream_neural_collapse_nc1{experiment=\"e\",layer=\"fc2\",run=\"r\",split=\"reference\"} 0.25\n"
                + "# HELP probestream_probe_last_step Training step of the latest checkpoint with published results.\n"
                + "# TYPE probestream_probe_last_step gauge\n"
                + "probestream_probe_last_step{experiment=\"e\",run=\"r\"} 1200.0\n"
                + "# HELP probestream_records_consumed_total Records read from the input topics.\n"
                + "# TYPE probestream_records_consumed_total counter\n"
                + "probestream_records_consumed_total{topic=\"probestream.batches\"} 1.0\n"
                + "# HELP probestream_results_published_total Probe results acknowledged by Kafka.\n"
                + "# TYPE probestream_results_published_total counter\n"
                + "probestream_results_published_total{probe=\"neural_collapse\"} 1.0\n"
                + "# HELP probestream_worker_in_flight Tasks on the worker pool now.\n"
                + "# TYPE probestream_worker_in_flight gauge\n"
                + "probestream_worker_in_flight 3.0\n");
  }

  @Test
  void forgettingAnExperimentRemovesItsSeries() {
    ServiceMetrics m = new ServiceMetrics();
    m.probeMetric("neural_collapse", "nc1", "gone", "r", "fc2", "reference", 0.5);
    m.probeMetric("neural_collapse", "nc1", "kept", "r", "fc2", "reference", 0.7);
    m.lastStep("gone", "r", 3);
    m.forgetExperiment("gone");
    assertThat(m.scrape()).doesNotContain("gone").contains("experiment=\"kept\"");
  }

  /** A classic histogram with one observation {@code v}: cumulative buckets, count 1, sum v. */
  private static String histogram(String name, String bounds, double v) {
    StringBuilder sb = new StringBuilder();
    for (String b : bounds.split(",")) {
      sb.append(name)
          .append("_bucket{le=\"")
          .append(b)
          .append("\"} ")
          .append(Double.parseDouble(b) >= v ? 1 : 0)
          .append('\n');
    }
    sb.append(name).append("_bucket{le=\"+Inf\"} 1\n");
    sb.append(name).append("_count 1\n");
    sb.append(name).append("_sum ").append(v).append('\n');
    return sb.toString();
  }
}
