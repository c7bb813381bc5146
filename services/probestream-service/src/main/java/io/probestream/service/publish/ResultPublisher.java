package io.probestream.service.publish;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.kafka.Resend;
import io.probestream.service.metrics.ServiceMetrics;
import io.probestream.service.view.ResultView;
import io.probestream.service.view.StoredResult;
import io.vertx.core.Context;
import io.vertx.core.Future;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Publishes probe results to the results topic (CloudEvents headers, key = experiment), and once
 * Kafka acknowledged them updates the {@link ResultView} the HTTP API reads, the gauges, the
 * published counter and the listeners, in that order. Thread-safe: the view and the metrics are,
 * and listeners are a copy-on-write list.
 */
public final class ResultPublisher {
  private final Producer<byte[], byte[]> producer;
  private final String topic;
  private final ServiceMetrics metrics;
  private final ResultView view;
  private final List<Consumer<ProbeResult>> listeners = new CopyOnWriteArrayList<>();

  public ResultPublisher(
      Producer<byte[], byte[]> producer, String topic, ServiceMetrics metrics, ResultView view) {
    this.producer = producer;
    this.topic = topic;
    this.metrics = metrics;
    this.view = view;
  }

  /** Called once per acknowledged result, on a Vert.x context; must not block. */
  public void addListener(Consumer<ProbeResult> listener) {
    listeners.add(listener);
  }

  /** Sends every result; the future completes on {@code context} when all are acknowledged. */
  public Future<Void> publish(Context context, List<ProbeResult> results) {
    List<Future<Void>> acks = new ArrayList<>();
    for (ProbeResult r : results) {
      ProducerRecord<byte[], byte[]> rec =
          CloudEvents.json(
              topic,
              r.experiment(),
              utf8(r.toJson()),
              r.id(),
              "probestream",
              Headers.TYPE_RESULT,
              r.computedAt());
      rec.headers().add(Headers.EXPERIMENT, utf8(r.experiment()));
      // A broker outage delays the result rather than failing its checkpoint into the DLQ.
      acks.add(Resend.untilAcknowledged(context, producer, rec).map(meta -> acknowledged(r)));
    }
    return Future.all(acks).mapEmpty();
  }

  /** Removes an experiment from the results view and its series from the metrics. */
  public void forget(String experiment) {
    view.remove(experiment);
    metrics.forgetExperiment(experiment);
  }

  private Void acknowledged(ProbeResult r) {
    // The API first and the published counter last, so whoever sees the counter move finds the
    // result in the API and its gauges.
    String evicted = view.add(StoredResult.of(r));
    if (evicted != null) {
      // The view's experiment bound is also the bound on the gauges' experiment label.
      metrics.forgetExperiment(evicted);
    }
    if (r.run() != null) {
      metrics.lastStep(r.experiment(), r.run(), r.step());
    }
    String run = r.run() == null ? "" : r.run();
    String layer = r.layer() == null ? "" : r.layer();
    r.metrics()
        .forEach(
            (k, v) -> metrics.probeMetric(r.probe(), k, r.experiment(), run, layer, r.split(), v));
    metrics.device(r.device());
    metrics.published(r.probe());
    for (Consumer<ProbeResult> l : listeners) {
      l.accept(r);
    }
    return null;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
