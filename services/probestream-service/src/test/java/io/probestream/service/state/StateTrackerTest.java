package io.probestream.service.state;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class StateTrackerTest {
  private static final String T = "p.checkpoints";

  private static Map<String, byte[]> none(String e) {
    return Map.of();
  }

  @Test
  void aSnapshotHoldsWhatFinishedAndRoundTripsThroughItsBytes() {
    StateTracker t = new StateTracker("w1");
    t.referenceBatch("e", 2, 1, 40);
    t.referenceBatch("e", 2, 0, 41);
    t.referenceBatch("e", 2, 0, 99); // a resend of index 0: the first location stays
    t.blobChunk("e", 2, "aa", 10);
    t.blobChunk("e", 2, "aa", 11);
    t.done("e", 2, T, 50);
    List<Snapshot> out = t.drainDirty(e -> Map.of("e", "state".getBytes(StandardCharsets.UTF_8)));
    assertThat(out).hasSize(1);
    Snapshot s = Snapshot.parse(out.get(0).toBytes());
    assertThat(s.experiment()).isEqualTo("e");
    assertThat(s.writer()).isEqualTo("w1");
    assertThat(s.seq()).isEqualTo(1);
    assertThat(s.partition()).isEqualTo(2);
    assertThat(s.reference()).containsExactlyInAnyOrderEntriesOf(Map.of(0, 41L, 1, 40L));
    assertThat(s.blobs()).containsExactlyEntriesOf(Map.of("aa", List.of(10L, 11L)));
    assertThat(s.done()).containsExactlyEntriesOf(Map.of(T, List.of(50L)));
    assertThat(new String(s.multiplicity().get("e"), StandardCharsets.UTF_8)).isEqualTo("state");
    // Nothing changed since: nothing to write; the next change bumps the sequence.
    assertThat(t.drainDirty(StateTrackerTest::none)).isEmpty();
    t.done("e", 2, T, 51);
    assertThat(t.drainDirty(StateTrackerTest::none).get(0).seq()).isEqualTo(2);
  }

  @Test
  void doneOffsetsLeaveOnceCommittedAndAreSkippedUntilThen() {
    StateTracker t = new StateTracker("w");
    t.done("e", 0, T, 5);
    t.done("e", 0, T, 9);
    t.done("f", 1, T, 3);
    assertThat(t.isDone("e", T, 5)).isTrue();
    assertThat(t.isDone("e", T, 6)).isFalse();
    assertThat(t.isDone("e", "p.batches", 5)).isFalse();
    t.drainDirty(StateTrackerTest::none);
    t.committed(T, 0, 6); // partition 0 committed up to 6: offset 5 is behind it
    assertThat(t.isDone("e", T, 5)).isFalse();
    assertThat(t.isDone("e", T, 9)).isTrue();
    assertThat(t.isDone("f", T, 3)).as("another partition").isTrue();
    List<Snapshot> out = t.drainDirty(StateTrackerTest::none);
    assertThat(out).extracting(Snapshot::experiment).containsExactly("e");
    assertThat(out.get(0).done()).containsExactlyEntriesOf(Map.of(T, List.of(9L)));
  }

  @Test
  void usedBlobsLeaveTheSnapshotUnlessALiveSplitOrAWaitingCheckpointNeedsThem() {
    StateTracker t = new StateTracker("w");
    for (String sha : List.of("b1", "b2", "b3")) {
      t.blobChunk("e", 0, sha, sha.charAt(1));
    }
    // b1 evaluated for run r: live splits of r follow it, so it stays.
    t.evaluated("e", "r", "{}", "b1", sha -> false);
    assertThat(t.drainDirty(StateTrackerTest::none).get(0).blobs())
        .containsOnlyKeys("b1", "b2", "b3");
    // b2 evaluated for run r: b2 is r's latest now; b1 was used and nothing needs it.
    t.evaluated("e", "r", "{}", "b2", sha -> false);
    assertThat(t.drainDirty(StateTrackerTest::none).get(0).blobs()).containsOnlyKeys("b2", "b3");
    // b3 evaluated for run s while a waiting checkpoint names b2 again.
    t.evaluated("e", "s", "{}", "b3", Set.of("b2")::contains);
    Snapshot s = t.drainDirty(StateTrackerTest::none).get(0);
    assertThat(s.blobs()).containsOnlyKeys("b2", "b3");
    assertThat(s.latest()).containsOnlyKeys("r", "s");
  }

  @Test
  void atMostEightUnusedBlobsAreKept() {
    StateTracker t = new StateTracker("w");
    for (int i = 0; i < 12; i++) {
      t.blobChunk("e", 0, "u" + i, i);
    }
    t.blobChunk("e", 0, "used", 100);
    t.evaluated("e", "r", "{}", "used", sha -> false);
    assertThat(t.drainDirty(StateTrackerTest::none).get(0).blobs().keySet())
        .containsExactlyInAnyOrder("used", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11");
  }

  @Test
  void restoreTakesTheSnapshotAndContinuesItsSequence() {
    StateTracker a = new StateTracker("a");
    a.referenceBatch("e", 3, 0, 7);
    a.done("e", 3, T, 8);
    Snapshot s = Snapshot.parse(a.drainDirty(StateTrackerTest::none).get(0).toBytes());
    StateTracker b = new StateTracker("b");
    b.restore(s, Map.of());
    assertThat(b.on(Set.of(3))).containsExactly("e");
    assertThat(b.on(Set.of(0, 1))).isEmpty();
    assertThat(b.isDone("e", T, 8)).isTrue();
    b.done("e", 3, T, 9);
    Snapshot next = b.drainDirty(StateTrackerTest::none).get(0);
    assertThat(next.writer()).isEqualTo("b");
    assertThat(next.seq()).isEqualTo(2);
    assertThat(next.reference()).containsExactlyEntriesOf(Map.of(0, 7L));
  }

  @Test
  void aRecordThatIsNotASnapshotIsRefusedByName() {
    assertThatThrownBy(() -> Snapshot.parse("[1,2]".getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("format");
    assertThatThrownBy(() -> Snapshot.parse("{not json".getBytes(StandardCharsets.UTF_8)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("not JSON");
  }
}
