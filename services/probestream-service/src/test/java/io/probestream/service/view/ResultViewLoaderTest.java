package io.probestream.service.view;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

/**
 * The loader's stopping rule on Kafka's own mock consumer; {@code ResultsApiIT} runs it against a
 * real broker.
 */
class ResultViewLoaderTest {
  private static final String TOPIC = "t.results";
  private static final TopicPartition P0 = new TopicPartition(TOPIC, 0);
  private static final TopicPartition P1 = new TopicPartition(TOPIC, 1);

  private static MockConsumer<byte[], byte[]> consumer(Map<TopicPartition, Long> end) {
    MockConsumer<byte[], byte[]> c = new MockConsumer<>("earliest");
    Node node = new Node(0, "localhost", 9092);
    Node[] nodes = {node};
    c.updatePartitions(
        TOPIC,
        List.of(
            new PartitionInfo(TOPIC, 0, node, nodes, nodes),
            new PartitionInfo(TOPIC, 1, node, nodes, nodes)));
    c.updateBeginningOffsets(Map.of(P0, 0L, P1, 0L));
    c.updateEndOffsets(end);
    return c;
  }

  private static ConsumerRecord<byte[], byte[]> record(
      TopicPartition tp, long offset, String experiment, String id, long step) {
    String json =
        "{\"id\":\""
            + id
            + "\",\"experiment\":\""
            + experiment
            + "\",\"run\":\"r\",\"step\":"
            + step
            + ",\"probe\":\"neural_collapse\",\"layer\":\"h\",\"split\":\"reference\"}";
    return new ConsumerRecord<>(
        TOPIC,
        tp.partition(),
        offset,
        experiment.getBytes(StandardCharsets.UTF_8),
        json.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void readsEveryPartitionUpToItsEndOffsetAndSkipsWhatIsNotAResult() {
    MockConsumer<byte[], byte[]> c = consumer(Map.of(P0, 3L, P1, 1L));
    c.schedulePollTask(
        () -> {
          c.addRecord(record(P0, 0, "e0", "a", 1));
          c.addRecord(
              new ConsumerRecord<>(TOPIC, 0, 1, null, "garbage".getBytes(StandardCharsets.UTF_8)));
          c.addRecord(record(P1, 0, "e1", "b", 1));
        });
    c.schedulePollTask(
        () -> {
          c.addRecord(record(P0, 2, "e0", "c", 2));
          c.addRecord(record(P0, 3, "e0", "after-the-start", 3)); // at the end offset: not read
        });
    ResultView view = new ResultView(10, 10);

    ResultViewLoader.Loaded loaded = ResultViewLoader.load(c, TOPIC, view, Duration.ofSeconds(5));

    assertThat(loaded).isEqualTo(new ResultViewLoader.Loaded(4, 1));
    assertThat(view.results("e0", ResultQuery.all(0, 10)).orElseThrow().results())
        .extracting(StoredResult::id)
        .containsExactly("a", "c");
    assertThat(view.results("e1", ResultQuery.all(0, 10)).orElseThrow().results())
        .extracting(StoredResult::id)
        .containsExactly("b");
  }

  @Test
  void anEmptyTopicLoadsNothing() {
    ResultView view = new ResultView(10, 10);

    assertThat(
            ResultViewLoader.load(
                consumer(Map.of(P0, 0L, P1, 0L)), TOPIC, view, Duration.ofSeconds(5)))
        .isEqualTo(new ResultViewLoader.Loaded(0, 0));
    assertThat(view.size()).isZero();
  }

  @Test
  void aTopicThatStopsShortOfItsEndFailsNamingWhere() {
    MockConsumer<byte[], byte[]> c = consumer(Map.of(P0, 2L, P1, 0L));
    c.schedulePollTask(() -> c.addRecord(record(P0, 0, "e0", "a", 1)));

    assertThatThrownBy(
            () -> ResultViewLoader.load(c, TOPIC, new ResultView(10, 10), Duration.ofMillis(200)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "results view: no record of t.results for PT0.2S; still short: [t.results-0 at 1 of 2]");
  }
}
