package io.probestream.service.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class OffsetTrackerTest {
  private static final TopicPartition A = new TopicPartition("t", 0);
  private static final TopicPartition B = new TopicPartition("u", 0);

  @Test
  void commitStopsAtTheLowestRecordStillInFlight() {
    OffsetTracker t = new OffsetTracker();
    for (long o = 0; o < 5; o++) {
      t.begin(A, o);
    }
    t.end(A, 0);
    t.end(A, 2);
    t.end(A, 3);
    // 1 is still in flight (say, a checkpoint waiting for its blob): commit up to it, not past.
    assertThat(t.commitable()).isEqualTo(Map.of(A, 1L));
    t.committed(Map.of(A, 1L));
    assertThat(t.commitable()).isEmpty();
    t.end(A, 1);
    assertThat(t.commitable()).isEqualTo(Map.of(A, 4L)); // 4 still in flight
    t.end(A, 4);
    assertThat(t.commitable()).isEqualTo(Map.of(A, 5L));
    assertThat(t.inFlightCount()).isZero();
  }

  @Test
  void partitionsAreIndependentAndRevokedOnesForgotten() {
    OffsetTracker t = new OffsetTracker();
    t.begin(A, 10);
    t.begin(B, 3);
    t.end(B, 3);
    assertThat(t.commitable()).isEqualTo(Map.of(A, 10L, B, 4L));
    t.revoke(List.of(A));
    assertThat(t.commitable()).isEqualTo(Map.of(B, 4L));
    assertThat(t.inFlightCount()).isZero();
  }
}
