package io.probestream.service.view;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Rebuilds a {@link ResultView} by reading the results topic from the earliest offsets up to the
 * end offsets seen at start, so the API lists earlier results after a restart. Blocking: call it
 * from a worker thread, with a consumer that joins no group and belongs to that thread.
 */
public final class ResultViewLoader {
  private static final Logger LOG = Logger.getLogger(ResultViewLoader.class.getName());
  private static final Duration POLL = Duration.ofMillis(200);
  private static final int LOGGED_SKIPS = 10;

  /**
   * What one rebuild read.
   *
   * @param records records read, up to the end offsets
   * @param skipped records that were not a probe result, logged and left out of the view
   */
  public record Loaded(long records, long skipped) {}

  private ResultViewLoader() {}

  /**
   * Reads every partition of {@code topic} into {@code view}. The consumer is assigned, sought and
   * polled here, not closed.
   *
   * @throws IllegalStateException if no record arrives for {@code stall} while some partition is
   *     still short of its end offset
   */
  public static Loaded load(
      Consumer<byte[], byte[]> consumer, String topic, ResultView view, Duration stall) {
    List<TopicPartition> partitions = new ArrayList<>();
    for (PartitionInfo p : consumer.partitionsFor(topic)) {
      partitions.add(new TopicPartition(p.topic(), p.partition()));
    }
    consumer.assign(partitions);
    consumer.seekToBeginning(partitions);
    Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
    long records = 0;
    long skipped = 0;
    long lastProgress = System.nanoTime();
    while (!behind(consumer, end).isEmpty()) {
      int polled = 0;
      for (ConsumerRecord<byte[], byte[]> r : consumer.poll(POLL)) {
        polled++;
        TopicPartition tp = new TopicPartition(r.topic(), r.partition());
        if (r.offset() >= end.get(tp)) {
          continue; // published after the start; the publisher adds those itself
        }
        records++;
        try {
          view.add(StoredResult.parse(r.value()));
        } catch (IllegalArgumentException e) {
          if (++skipped <= LOGGED_SKIPS) {
            LOG.warning(
                "results view: "
                    + tp
                    + "@"
                    + r.offset()
                    + " is not a probe result, left out: "
                    + e.getMessage());
          }
        }
      }
      long now = System.nanoTime();
      if (polled > 0) {
        lastProgress = now;
      } else if (now - lastProgress > stall.toNanos()) {
        List<String> at = new ArrayList<>();
        for (TopicPartition tp : behind(consumer, end)) {
          at.add(tp + " at " + consumer.position(tp) + " of " + end.get(tp));
        }
        throw new IllegalStateException(
            "results view: no record of " + topic + " for " + stall + "; still short: " + at);
      }
    }
    if (skipped > LOGGED_SKIPS) {
      LOG.warning("results view: " + skipped + " records of " + topic + " were not results");
    }
    return new Loaded(records, skipped);
  }

  private static List<TopicPartition> behind(
      Consumer<byte[], byte[]> consumer, Map<TopicPartition, Long> end) {
    List<TopicPartition> out = new ArrayList<>();
    end.forEach(
        (tp, offset) -> {
          if (consumer.position(tp) < offset) {
            out.add(tp);
          }
        });
    return out;
  }
}
