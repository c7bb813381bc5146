package io.probestream.service.view;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.probestream.contracts.result.ProbeResult;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StoredResultTest {
  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void aPublishedResultParsesBackToWhatThePublisherStored() {
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("samples", 7.0);
    metrics.put("nc1", 0.25);
    ProbeResult r =
        ProbeResult.of(
            "ncb",
            "seed-1",
            5,
            "ab".repeat(32),
            "cd".repeat(32),
            "neural_collapse",
            "h",
            "reference",
            metrics,
            Map.of("reduction", "none"),
            null,
            "cpu",
            Instant.parse("2026-01-02T03:04:05Z"),
            12);

    StoredResult parsed = StoredResult.parse(utf8(r.toJson()));

    assertThat(parsed).isEqualTo(StoredResult.of(r));
    assertThat(parsed)
        .isEqualTo(
            new StoredResult(
                r.id(), "ncb", "seed-1", 5, "neural_collapse", "h", "reference", r.toJson()));
  }

  @Test
  void anExperimentWideResultHasNullRunAndLayer() {
    StoredResult r =
        StoredResult.parse(
            utf8(
                "{\"id\":\"x\",\"experiment\":\"e\",\"run\":null,\"step\":3,"
                    + "\"probe\":\"predictive_multiplicity\",\"layer\":null,\"split\":\"reference\"}\n"));

    assertThat(r.run()).isNull();
    assertThat(r.layer()).isNull();
    assertThat(r.step()).isEqualTo(3);
    assertThat(r.json()).endsWith("}");
  }

  @Test
  void whatIsNotAResultIsRejectedNamingTheField() {
    String ok =
        "\"id\":\"x\",\"experiment\":\"e\",\"run\":\"r\",\"probe\":\"p\",\"layer\":\"l\","
            + "\"split\":\"reference\"";
    assertThatThrownBy(() -> StoredResult.parse(null))
        .hasMessage("record has no value; expected a probe result object");
    assertThatThrownBy(() -> StoredResult.parse(utf8("not json")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("not JSON: ");
    assertThatThrownBy(() -> StoredResult.parse(utf8("[1]")))
        .hasMessage("not a JSON object; expected a probe result object");
    assertThatThrownBy(() -> StoredResult.parse(utf8("{" + ok + "}")))
        .hasMessage("field 'step' = null: expected an integer of at least 0");
    assertThatThrownBy(() -> StoredResult.parse(utf8("{" + ok + ",\"step\":-1}")))
        .hasMessage("field 'step' = -1: expected an integer of at least 0");
    assertThatThrownBy(() -> StoredResult.parse(utf8("{" + ok + ",\"step\":1.5}")))
        .hasMessage("field 'step' = 1.5: expected an integer of at least 0");
    assertThatThrownBy(() -> StoredResult.parse(utf8("{" + ok + ",\"step\":\"5\"}")))
        .hasMessage("field 'step' = \"5\": expected an integer of at least 0");
    assertThatThrownBy(
            () -> StoredResult.parse(utf8("{" + ok.replace("\"r\"", "7") + ",\"step\":5}")))
        .hasMessage("field 'run' = 7: expected a string or null");
    assertThatThrownBy(
            () ->
                StoredResult.parse(
                    utf8("{" + ok.replace("\"experiment\":\"e\",", "") + ",\"step\":5}")))
        .hasMessage("field 'experiment' = null: expected a string");
  }
}
