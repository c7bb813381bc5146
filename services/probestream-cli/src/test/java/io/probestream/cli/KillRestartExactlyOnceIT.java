package io.probestream.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.probestream.testkit.KafkaTestCluster;
import io.probestream.testkit.ProbestreamIT;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10 item 2 with {@code kafka.delivery=exactly-once}: the same SIGKILL and restart as {@link
 * KillRestartIT}, results read with {@code isolation.level=read_committed}. Every expected result
 * must be there exactly once: the results of checkpoints the killed instance evaluated but whose
 * offsets it had not committed belong to a transaction that never committed.
 */
@ProbestreamIT
@ExtendWith(ServiceProcess.PrintTails.class)
class KillRestartExactlyOnceIT {
  @TempDir Path dir;

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void killDashNineMidStreamPublishesEveryResultExactlyOnce(KafkaTestCluster kafka)
      throws Exception {
    KillRestartIT.Outcome o = KillRestartIT.killAndRestart(kafka, dir, "exactly-once", "eos");
    KillRestartIT.assertEveryResultAsUninterrupted(o);
    Map<String, Long> counts =
        o.results().stream()
            .map(e -> e.value().get("id").asText())
            .collect(Collectors.groupingBy(Function.identity(), Collectors.counting()));
    System.out.printf(
        "eos: %d committed results for %d checkpoints%n", o.results().size(), o.expected().size());
    assertThat(counts).allSatisfy((id, n) -> assertThat(n).as("copies of %s", id).isEqualTo(1));
    assertThat(o.results()).hasSize(o.expected().size());
  }
}
