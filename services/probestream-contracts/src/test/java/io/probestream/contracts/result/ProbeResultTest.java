package io.probestream.contracts.result;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ProbeResultTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String MODEL = "ab".repeat(32);
  private static final String REFERENCE = "cd".repeat(32);
  private static final Instant AT = Instant.parse("2026-11-24T06:40:00Z");

  /** sha256 computed here, independently of {@link ProbeResult#sha256Hex}. */
  private static String sha256(String s) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
      StringBuilder hex = new StringBuilder();
      for (byte b : d) {
        hex.append(String.format("%02x", b & 0xff));
      }
      return hex.toString();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Map<String, Double> metrics() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("samples", 10000.0);
    m.put("classes_seen", 10.0);
    m.put("nonfinite", 0.0);
    m.put("nc1", 0.41);
    m.put("nc2_equinorm", -0.05);
    m.put("nc3_self_duality", null);
    m.put("sb_rank", 9.0);
    return m;
  }

  private static Map<String, Object> params(Object... keyValues) {
    Map<String, Object> p = new LinkedHashMap<>();
    for (int i = 0; i < keyValues.length; i += 2) {
      p.put((String) keyValues[i], keyValues[i + 1]);
    }
    return p;
  }

  private static ProbeResult result(Map<String, Double> metrics, Map<String, Object> params) {
    return ProbeResult.of(
        "mnist-mlp",
        "seed-3",
        1200,
        MODEL,
        REFERENCE,
        "neural_collapse",
        "fc2",
        "reference",
        metrics,
        params,
        "nc3_self_duality: fc2 does not feed the classifier",
        "cpu",
        AT,
        87);
  }

  private static List<String> fieldNames(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }

  @Test
  void toJsonIsTheWholeDesignDocument() throws Exception {
    ProbeResult r = result(metrics(), params("reduction", "none", "epsilon", 0.05));
    String id =
        sha256(
            "mnist-mlp|seed-3|1200|"
                + MODEL
                + "|neural_collapse|fc2|reference|"
                + REFERENCE
                + "|{\"epsilon\":0.05,\"reduction\":\"none\"}");
    String expected =
        """
        {"id": "%s",
         "experiment": "mnist-mlp", "run": "seed-3", "step": 1200,
         "model_sha256": "%s", "reference_sha256": "%s",
         "probe": "neural_collapse", "layer": "fc2", "split": "reference", "samples": 10000,
         "metrics": {"samples": 10000, "classes_seen": 10, "nonfinite": 0, "nc1": 0.41,
                     "nc2_equinorm": -0.05, "nc3_self_duality": null, "sb_rank": 9},
         "params": {"reduction": "none", "epsilon": 0.05},
         "notes": "nc3_self_duality: fc2 does not feed the classifier",
         "device": "cpu", "computed_at": "2026-11-24T06:40:00Z", "latency_ms": 87}
        """
            .formatted(id, MODEL, REFERENCE);

    JsonNode actual = JSON.readTree(r.toJson());
    JsonNode want = JSON.readTree(expected);

    // Tree equality also tells 10000 from 10000.0: an IntNode never equals a DoubleNode.
    assertThat(actual).isEqualTo(want);
    assertThat(fieldNames(actual)).containsExactlyElementsOf(fieldNames(want));
    assertThat(fieldNames(actual.get("metrics")))
        .containsExactlyElementsOf(fieldNames(want.get("metrics")));
    assertThat(actual.get("metrics").get("samples").isIntegralNumber()).isTrue();
    assertThat(actual.get("metrics").get("nonfinite").isIntegralNumber()).isTrue();
    assertThat(r.toJson()).doesNotContain("\n").doesNotContain("10000.0");
  }

  @Test
  void anExperimentWideResultWritesNullRunAndLayerAndLeavesOutAbsentFields() throws Exception {
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("ambiguity", 0.125);
    ProbeResult r =
        ProbeResult.of(
            "mnist-mlp",
            null,
            1200,
            MODEL,
            REFERENCE,
            "predictive_multiplicity",
            null,
            "reference",
            metrics,
            Map.of(),
            null,
            "cuda:0",
            Instant.parse("2026-11-24T06:40:00.123456789Z"),
            5);
    String id =
        sha256(
            "mnist-mlp||1200|"
                + MODEL
                + "|predictive_multiplicity||reference|"
                + REFERENCE
                + "|{}");
    String expected =
        """
        {"id": "%s", "experiment": "mnist-mlp", "run": null, "step": 1200,
         "model_sha256": "%s", "reference_sha256": "%s",
         "probe": "predictive_multiplicity", "layer": null, "split": "reference",
         "metrics": {"ambiguity": 0.125}, "params": {},
         "device": "cuda:0", "computed_at": "2026-11-24T06:40:00.123Z", "latency_ms": 5}
        """
            .formatted(id, MODEL, REFERENCE);

    JsonNode actual = JSON.readTree(r.toJson());
    JsonNode want = JSON.readTree(expected);

    assertThat(r.id()).isEqualTo(id);
    assertThat(actual).isEqualTo(want);
    assertThat(fieldNames(actual)).containsExactlyElementsOf(fieldNames(want));
    assertThat(r.samples()).isNull();
  }

  @Test
  void idIsTheSha256OfTheIdentifyingFieldsWithSortedParams() {
    ProbeResult r = result(metrics(), params("reduction", "gap", "epsilon", 0.05, "k", 8));
    String key =
        "mnist-mlp|seed-3|1200|"
            + MODEL
            + "|neural_collapse|fc2|reference|"
            + REFERENCE
            + "|{\"epsilon\":0.05,\"k\":8,\"reduction\":\"gap\"}";

    assertThat(r.id()).isEqualTo(sha256(key)).hasSize(64).matches("[0-9a-f]{64}");
    assertThat(
            ProbeResult.id(
                "mnist-mlp",
                "seed-3",
                1200,
                MODEL,
                "neural_collapse",
                "fc2",
                "reference",
                REFERENCE,
                params("k", 8, "reduction", "gap", "epsilon", 0.05)))
        .isEqualTo(sha256(key));
  }

  @Test
  void nestedParamMapsAreSortedToo() {
    Map<String, Object> inner = new LinkedHashMap<>();
    inner.put("b", 1);
    inner.put("a", 2);
    ProbeResult r = result(metrics(), params("z", inner, "members", List.of("s2", "s1")));
    String key =
        "mnist-mlp|seed-3|1200|"
            + MODEL
            + "|neural_collapse|fc2|reference|"
            + REFERENCE
            + "|{\"members\":[\"s2\",\"s1\"],\"z\":{\"a\":2,\"b\":1}}";

    assertThat(r.id()).isEqualTo(sha256(key));
  }

  @Test
  void idChangesWithParamsButNotWithTheirInsertionOrder() {
    String none = result(metrics(), params("reduction", "none", "epsilon", 0.05)).id();
    String reordered = result(metrics(), params("epsilon", 0.05, "reduction", "none")).id();
    Map<String, Object> hashed = new HashMap<>(params("epsilon", 0.05, "reduction", "none"));
    String gap = result(metrics(), params("reduction", "gap", "epsilon", 0.05)).id();

    assertThat(reordered).isEqualTo(none);
    assertThat(result(metrics(), hashed).id()).isEqualTo(none);
    assertThat(gap).isNotEqualTo(none);
  }

  @Test
  void idDependsOnlyOnTheIdentifyingFields() {
    ProbeResult a = result(metrics(), params("reduction", "none"));
    Map<String, Double> other = new LinkedHashMap<>();
    other.put("nc1", 0.9);
    ProbeResult b =
        ProbeResult.of(
            "mnist-mlp",
            "seed-3",
            1200,
            MODEL,
            REFERENCE,
            "neural_collapse",
            "fc2",
            "reference",
            other,
            params("reduction", "none"),
            null,
            "cuda:0",
            AT.plusSeconds(60),
            999);
    ProbeResult c =
        ProbeResult.of(
            "mnist-mlp",
            "seed-3",
            1201,
            MODEL,
            REFERENCE,
            "neural_collapse",
            "fc2",
            "reference",
            metrics(),
            params("reduction", "none"),
            null,
            "cpu",
            AT,
            87);

    assertThat(b.id()).as("metrics, notes, device, time and latency").isEqualTo(a.id());
    assertThat(c.id()).as("step").isNotEqualTo(a.id());
  }

  @Test
  void sha256HexIsLowerCaseHex() {
    // FIPS 180-2 test vector for "abc".
    assertThat(ProbeResult.sha256Hex("abc".getBytes(StandardCharsets.US_ASCII)))
        .isEqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assertThat(ProbeResult.sha256Hex(new byte[0]))
        .isEqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }

  @Test
  void nonFiniteMetricsAreRejected() {
    for (double bad :
        new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
      Map<String, Double> m = metrics();
      m.put("nc1", bad);
      assertThatThrownBy(() -> result(m, params()).toJson())
          .as("nc1 = %s", bad)
          .isInstanceOfAny(IllegalStateException.class, IllegalArgumentException.class)
          .hasMessageContaining("nc1")
          .hasMessageContaining(Double.toString(bad));
    }
  }

  @Test
  void largeAndFractionalMetricsStayNumbers() throws Exception {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("big", 1e15);
    m.put("integral_below", 999_999_999_999_999.0);
    m.put("tiny", 1e-300);
    m.put("negative_count", -3.0);

    JsonNode metrics = JSON.readTree(result(m, params()).toJson()).get("metrics");

    assertThat(metrics.get("big").doubleValue()).isEqualTo(1e15);
    assertThat(metrics.get("integral_below").isIntegralNumber()).isTrue();
    assertThat(metrics.get("integral_below").longValue()).isEqualTo(999_999_999_999_999L);
    assertThat(metrics.get("tiny").doubleValue()).isEqualTo(1e-300);
    assertThat(metrics.get("negative_count").isIntegralNumber()).isTrue();
    assertThat(metrics.get("negative_count").longValue()).isEqualTo(-3L);
  }

  @Test
  void theMapsAreReadOnlyCopies() {
    Map<String, Double> m = metrics();
    Map<String, Object> p = params("reduction", "none");
    ProbeResult r = result(m, p);
    m.put("extra", 1.0);
    p.put("extra", 1);

    assertThat(r.metrics()).doesNotContainKey("extra");
    assertThat(r.params()).containsExactly(Map.entry("reduction", "none"));
    assertThatThrownBy(() -> r.metrics().put("x", 1.0))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> r.params().put("x", 1))
        .isInstanceOf(UnsupportedOperationException.class);
  }
}
