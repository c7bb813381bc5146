package io.probestream.service.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.contracts.result.ProbeResult;
import io.probestream.contracts.topics.DlqReason;
import io.probestream.service.record.PoisonException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The blob store's budget (probestream.blobs.store-bytes), on real files. */
class BlobStoreTest {
  @TempDir Path data;

  @Test
  void overBudgetTheLeastRecentlyUsedBlobGoes() throws IOException {
    BlobStore store = new BlobStore(data, 250);
    store.open();
    String a = put(store, blob(1, 100));
    String b = put(store, blob(2, 100));
    assertThat(store.bytes()).isEqualTo(200);
    assertThat(store.evictOverBudget()).isEmpty(); // within budget: nothing goes

    assertThat(store.has(a)).isTrue(); // a use: b is now the least recently used
    String c = put(store, blob(3, 100));
    assertThat(store.bytes()).isEqualTo(300);

    assertThat(store.evictOverBudget()).containsExactly(b);
    assertThat(files()).containsExactlyInAnyOrder(a, c);
    assertThat(store.bytes()).isEqualTo(200);
    assertThat(store.has(b)).isFalse();
    assertThat(store.has(a)).isTrue();
    assertThat(store.has(c)).isTrue();
  }

  @Test
  void readingABlobCountsAsAUse() throws IOException {
    BlobStore store = new BlobStore(data, 150);
    store.open();
    String a = put(store, blob(1, 100));
    String b = put(store, blob(2, 100));
    assertThat(store.read(a)).isEqualTo(blob(1, 100));

    assertThat(store.evictOverBudget()).containsExactly(b);
    assertThat(files()).containsExactly(a);
    assertThat(store.bytes()).isEqualTo(100);
  }

  @Test
  void aPinnedBlobStaysAndTheNextLeastRecentlyUsedGoesInstead() throws IOException {
    BlobStore store = new BlobStore(data, 250);
    store.open();
    String a = put(store, blob(1, 100));
    String b = put(store, blob(2, 100));
    String c = put(store, blob(3, 100));
    Set<String> pinned = new HashSet<>(Set.of(a));
    store.pinnedBy(pinned::contains);

    assertThat(store.evictOverBudget()).containsExactly(b);
    assertThat(files()).containsExactlyInAnyOrder(a, c);
    assertThat(store.bytes()).isEqualTo(200);

    // Everything pinned: the store stays over budget rather than drop what a checkpoint needs.
    String d = put(store, blob(4, 100));
    pinned.addAll(List.of(c, d));
    assertThat(store.evictOverBudget()).isEmpty();
    assertThat(files()).containsExactlyInAnyOrder(a, c, d);
    assertThat(store.bytes()).isEqualTo(300);

    // Unpinned again (the checkpoint was evaluated): the least recently used goes.
    pinned.clear();
    assertThat(store.evictOverBudget()).containsExactly(a);
    assertThat(files()).containsExactlyInAnyOrder(c, d);
  }

  @Test
  void partialBlobsCountButAreNeverEvicted() throws IOException {
    BlobStore store = new BlobStore(data, 250);
    store.open();
    String a = put(store, blob(1, 100));
    byte[] big = blob(9, 200);
    String p = ProbeResult.sha256Hex(big);
    store.writeChunk(p, 0, 2, 200, Arrays.copyOfRange(big, 0, 120));
    store.writeChunk(p, 0, 2, 200, Arrays.copyOfRange(big, 0, 120)); // a resend counts once
    assertThat(store.bytes()).isEqualTo(220);
    store.writeChunk(p, 1, 2, 200, Arrays.copyOfRange(big, 120, 200));
    assertThat(store.bytes()).isEqualTo(300);

    assertThat(store.evictOverBudget()).containsExactly(a); // only a is assembled
    assertThat(store.hasPartial(p)).isTrue();
    assertThat(store.bytes()).isEqualTo(200);

    store.assemble(p, 2, 200);
    assertThat(store.bytes()).isEqualTo(200);
    assertThat(files()).containsExactly(p);
    assertThat(store.hasPartial(p)).isFalse();

    String q = ProbeResult.sha256Hex(blob(8, 60));
    store.writeChunk(q, 0, 2, 100, blob(8, 60));
    store.discard(q);
    assertThat(store.bytes()).isEqualTo(200);
  }

  @Test
  void onStartTheStoreAccountsWhatIsOnDiskAndEvictsTheOldestFirst() throws IOException {
    BlobStore before = new BlobStore(data, 1000);
    before.open();
    String a = put(before, blob(1, 100));
    String b = put(before, blob(2, 100));
    String c = put(before, blob(3, 100));
    byte[] big = blob(9, 200);
    String p = ProbeResult.sha256Hex(big);
    before.writeChunk(p, 0, 2, 200, Arrays.copyOfRange(big, 0, 50));
    // modification times stand for the last use across a restart: b oldest, then c, then a
    touch(b, 1_000);
    touch(c, 2_000);
    touch(a, 3_000);

    BlobStore after = new BlobStore(data, 160);
    assertThat(after.open()).containsOnlyKeys(p);
    assertThat(after.bytes()).isEqualTo(350);
    assertThat(after.evictOverBudget()).containsExactly(b, c);
    assertThat(files()).containsExactly(a);
    assertThat(after.bytes()).isEqualTo(150);
  }

  @Test
  void aBlobLargerThanTheWholeBudgetIsRefusedNamingTheKey() {
    BlobStore store = new BlobStore(data, 1000);
    store.requireFits("ab", 1000); // exactly the budget fits
    assertThatThrownBy(() -> store.requireFits("ab", 1001))
        .isInstanceOfSatisfying(
            PoisonException.class,
            e -> assertThat(e.reason()).isEqualTo(DlqReason.PAYLOAD_TOO_LARGE))
        .hasMessage(
            "model blob ab is 1001 bytes; it alone exceeds the blob store budget"
                + " probestream.blobs.store-bytes = 1000");
  }

  private static String put(BlobStore store, byte[] blob) throws IOException {
    String sha = ProbeResult.sha256Hex(blob);
    store.writeChunk(sha, 0, 1, blob.length, blob);
    store.assemble(sha, 1, blob.length);
    return sha;
  }

  private static byte[] blob(int seed, int size) {
    byte[] b = new byte[size];
    Arrays.fill(b, (byte) seed);
    return b;
  }

  private void touch(String sha, long millis) throws IOException {
    Files.setLastModifiedTime(data.resolve("blobs").resolve(sha), FileTime.fromMillis(millis));
  }

  /** The assembled blobs on disk. */
  private List<String> files() throws IOException {
    try (Stream<Path> s = Files.list(data.resolve("blobs"))) {
      return s.filter(Files::isRegularFile).map(p -> p.getFileName().toString()).toList();
    }
  }
}
