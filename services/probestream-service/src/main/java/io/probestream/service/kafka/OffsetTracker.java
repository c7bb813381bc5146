package io.probestream.service.kafka;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;
import org.apache.kafka.common.TopicPartition;

/**
 * Which offsets may be committed: per partition, the lowest offset still in flight, or one past the
 * highest seen when nothing is. A record is "in flight" from its arrival until everything it
 * produced (results, DLQ record, stored bytes) is durable, so a commit never skips unfinished work.
 * Owned by the intake verticle's event loop; not thread-safe.
 */
public final class OffsetTracker {
  private final Map<TopicPartition, TreeSet<Long>> inFlight = new HashMap<>();
  private final Map<TopicPartition, Long> highest = new HashMap<>();
  private final Map<TopicPartition, Long> committed = new HashMap<>();

  public void begin(TopicPartition tp, long offset) {
    inFlight.computeIfAbsent(tp, k -> new TreeSet<>()).add(offset);
    highest.merge(tp, offset, Math::max);
  }

  public void end(TopicPartition tp, long offset) {
    TreeSet<Long> s = inFlight.get(tp);
    if (s != null) {
      s.remove(offset);
    }
  }

  /** Positions (next offset to read) that are ahead of what was last committed. */
  public Map<TopicPartition, Long> commitable() {
    Map<TopicPartition, Long> out = new HashMap<>();
    for (Map.Entry<TopicPartition, Long> e : highest.entrySet()) {
      TopicPartition tp = e.getKey();
      TreeSet<Long> s = inFlight.get(tp);
      long position = s == null || s.isEmpty() ? e.getValue() + 1 : s.first();
      if (position > committed.getOrDefault(tp, -1L)) {
        out.put(tp, position);
      }
    }
    return out;
  }

  /** Records a successful commit. */
  public void committed(Map<TopicPartition, Long> positions) {
    positions.forEach((tp, p) -> committed.merge(tp, p, Math::max));
  }

  /** Forgets partitions this instance no longer owns. */
  public void revoke(Collection<TopicPartition> partitions) {
    for (TopicPartition tp : partitions) {
      inFlight.remove(tp);
      highest.remove(tp);
      committed.remove(tp);
    }
  }

  /** Records still in flight, over all partitions. */
  public int inFlightCount() {
    int n = 0;
    for (TreeSet<Long> s : inFlight.values()) {
      n += s.size();
    }
    return n;
  }
}
