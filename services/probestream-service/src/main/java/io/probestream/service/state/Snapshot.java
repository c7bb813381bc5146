package io.probestream.service.state;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One experiment's state as written to the compacted state topic (key = experiment, DESIGN.md §3):
 * where its durable inputs lie in the input topics (reference batches, model blob chunks, the
 * manifests live splits follow), which input records after the committed offsets already produced
 * their results, and the multiplicity states. A new owner re-reads the located records instead of
 * receiving their bytes again, so a snapshot stays small except for the multiplicity members.
 * Immutable.
 *
 * @param experiment the record key
 * @param writer the instance that wrote it
 * @param seq increases with every snapshot the writer writes for this experiment
 * @param partition the input partition that holds the experiment's records
 * @param reference reference batch index → offset in the batches topic
 * @param blobs model blob sha256 → offsets of its chunks in the blobs topic
 * @param done input topic → offsets whose results are published though the group's committed offset
 *     may still be below them
 * @param multiplicity multiplicity scope key (experiment or experiment|run) → state bytes
 * @param latest run → the manifest JSON of its latest evaluated checkpoint
 */
public record Snapshot(
    String experiment,
    String writer,
    long seq,
    int partition,
    Map<Integer, Long> reference,
    Map<String, List<Long>> blobs,
    Map<String, List<Long>> done,
    Map<String, byte[]> multiplicity,
    Map<String, String> latest) {
  static final int FORMAT = 1;
  private static final ObjectMapper JSON = new ObjectMapper();

  public Snapshot {
    reference = Map.copyOf(reference);
    blobs = Map.copyOf(blobs);
    done = Map.copyOf(done);
    multiplicity = Map.copyOf(multiplicity);
    latest = Map.copyOf(latest);
  }

  public byte[] toBytes() {
    ObjectNode o = JSON.createObjectNode();
    o.put("format", FORMAT);
    o.put("experiment", experiment);
    o.put("writer", writer);
    o.put("seq", seq);
    o.put("partition", partition);
    ObjectNode ref = o.putObject("reference");
    new TreeMap<>(reference).forEach((i, off) -> ref.put(Integer.toString(i), off));
    ObjectNode b = o.putObject("blobs");
    blobs.forEach((sha, offs) -> longs(b.putArray(sha), offs));
    ObjectNode d = o.putObject("done");
    done.forEach((topic, offs) -> longs(d.putArray(topic), offs));
    ObjectNode m = o.putObject("multiplicity");
    multiplicity.forEach((k, v) -> m.put(k, Base64.getEncoder().encodeToString(v)));
    ObjectNode l = o.putObject("latest");
    latest.forEach(l::put);
    try {
      return JSON.writeValueAsBytes(o);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void longs(ArrayNode a, List<Long> values) {
    values.forEach(a::add);
  }

  /** Parses a state record; IllegalArgumentException names what is wrong. */
  public static Snapshot parse(byte[] bytes) {
    JsonNode o;
    try {
      o = JSON.readTree(bytes);
    } catch (IOException e) {
      throw new IllegalArgumentException("state record is not JSON: " + e.getMessage(), e);
    }
    if (o == null || !o.isObject() || o.path("format").asInt() != FORMAT) {
      throw new IllegalArgumentException(
          "state record format " + (o == null ? null : o.path("format")) + "; expected " + FORMAT);
    }
    Map<Integer, Long> reference = new TreeMap<>();
    o.path("reference")
        .fields()
        .forEachRemaining(e -> reference.put(Integer.parseInt(e.getKey()), e.getValue().asLong()));
    Map<String, List<Long>> blobs = new LinkedHashMap<>();
    o.path("blobs").fields().forEachRemaining(e -> blobs.put(e.getKey(), longs(e.getValue())));
    Map<String, List<Long>> done = new LinkedHashMap<>();
    o.path("done").fields().forEachRemaining(e -> done.put(e.getKey(), longs(e.getValue())));
    Map<String, byte[]> multiplicity = new LinkedHashMap<>();
    o.path("multiplicity")
        .fields()
        .forEachRemaining(
            e -> multiplicity.put(e.getKey(), Base64.getDecoder().decode(e.getValue().asText())));
    Map<String, String> latest = new LinkedHashMap<>();
    o.path("latest").fields().forEachRemaining(e -> latest.put(e.getKey(), e.getValue().asText()));
    return new Snapshot(
        o.path("experiment").asText(),
        o.path("writer").asText(),
        o.path("seq").asLong(),
        o.path("partition").asInt(-1),
        reference,
        blobs,
        done,
        multiplicity,
        latest);
  }

  private static List<Long> longs(JsonNode a) {
    List<Long> out = new ArrayList<>();
    a.forEach(x -> out.add(x.asLong()));
    return out;
  }
}
