package io.probestream.service.publish;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.Headers;
import io.probestream.service.metrics.ServiceMetrics;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Publishes probe results to the results topic (CloudEvents headers, key = experiment), and once
 * Kafka acknowledged them updates the gauges, the recent-results view the HTTP API reads, and the
 * listeners. Thread-safe: the recent view is guarded by this object's lock.
 */
public final class ResultPublisher {
  private static final int RECENT_PER_EXPERIMENT = 200;
  private static final int MAX_EXPERIMENTS = 1000;

  private final Producer<byte[], byte[]> producer;
  private final String topic;
  private final ServiceMetrics metrics;
  private final Map<String, Deque<ProbeResult>> recent = new LinkedHashMap<>();
  private final List<Consumer<ProbeResult>> listeners = new CopyOnWriteArrayList<>();

  public ResultPublisher(Producer<byte[], byte[]> producer, String topic, ServiceMetrics metrics) {
    this.producer = producer;
    this.topic = topic;
    this.metrics = metrics;
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
          new ProducerRecord<>(topic, null, utf8(r.experiment()), utf8(r.toJson()));
      rec.headers().add(Headers.SPECVERSION, utf8(Headers.SPEC_VERSION));
      rec.headers().add(Headers.ID, utf8(r.id()));
      rec.headers().add(Headers.SOURCE, utf8("probestream"));
      rec.headers().add(Headers.TYPE, utf8(Headers.TYPE_RESULT));
      rec.headers().add(Headers.TIME, utf8(r.computedAt().toString()));
      rec.headers().add(Headers.CONTENT_TYPE, utf8(Headers.JSON));
      rec.headers().add(Headers.EXPERIMENT, utf8(r.experiment()));
      Promise<Void> p = Promise.promise();
      producer.send(
          rec,
          (meta, error) ->
              context.runOnContext(
                  v -> {
                    if (error != null) {
                      p.fail(error);
                    } else {
                      acknowledged(r);
                      p.complete();
                    }
                  }));
      acks.add(p.future());
    }
    return Future.all(acks).mapEmpty();
  }

  private void acknowledged(ProbeResult r) {
    metrics.published(r.probe());
    if (r.run() != null) {
      metrics.lastStep(r.experiment(), r.run(), r.step());
    }
    String run = r.run() == null ? "" : r.run();
    String layer = r.layer() == null ? "" : r.layer();
    r.metrics()
        .forEach(
            (k, v) -> metrics.probeMetric(r.probe(), k, r.experiment(), run, layer, r.split(), v));
    metrics.device(r.device());
    synchronized (this) {
      Deque<ProbeResult> d = recent.computeIfAbsent(r.experiment(), k -> new ArrayDeque<>());
      d.addLast(r);
      while (d.size() > RECENT_PER_EXPERIMENT) {
        d.removeFirst();
      }
      if (recent.size() > MAX_EXPERIMENTS) {
        String oldest = recent.keySet().iterator().next();
        recent.remove(oldest);
        metrics.forgetExperiment(oldest);
      }
    }
    for (Consumer<ProbeResult> l : listeners) {
      l.accept(r);
    }
  }

  /** The experiments with results, oldest first. */
  public synchronized List<String> experiments() {
    return new ArrayList<>(recent.keySet());
  }

  /** The most recent results of an experiment, oldest first; empty if unknown. */
  public synchronized List<ProbeResult> results(String experiment) {
    Deque<ProbeResult> d = recent.get(experiment);
    return d == null ? List.of() : new ArrayList<>(d);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
