package io.probestream.cli;

import io.probestream.contracts.result.ProbeResult;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** Renders results as a plain-text table: one row per metric, one column per layer. */
final class ResultTable {
  private ResultTable() {}

  /** One table per probe, in the order the probes first appear. */
  static String render(List<ProbeResult> results) {
    java.util.Map<String, List<ProbeResult>> byProbe = new java.util.LinkedHashMap<>();
    for (ProbeResult r : results) {
      byProbe.computeIfAbsent(r.probe(), p -> new ArrayList<>()).add(r);
    }
    StringBuilder sb = new StringBuilder();
    for (List<ProbeResult> group : byProbe.values()) {
      sb.append(sb.length() == 0 ? "" : System.lineSeparator()).append(renderOne(group));
    }
    return sb.toString();
  }

  private static String renderOne(List<ProbeResult> results) {
    Set<String> keys = new LinkedHashSet<>();
    for (ProbeResult r : results) {
      keys.addAll(r.metrics().keySet());
    }
    List<String[]> rows = new ArrayList<>();
    String[] header = new String[results.size() + 1];
    header[0] = "metric";
    for (int i = 0; i < results.size(); i++) {
      header[i + 1] = results.get(i).layer();
    }
    rows.add(header);
    for (String k : keys) {
      String[] row = new String[results.size() + 1];
      row[0] = k;
      for (int i = 0; i < results.size(); i++) {
        ProbeResult r = results.get(i);
        row[i + 1] = !r.metrics().containsKey(k) ? "" : format(r.metrics().get(k));
      }
      rows.add(row);
    }
    int[] width = new int[header.length];
    for (String[] row : rows) {
      for (int c = 0; c < row.length; c++) {
        width[c] = Math.max(width[c], row[c].length());
      }
    }
    StringBuilder sb = new StringBuilder();
    if (!results.isEmpty()) {
      ProbeResult first = results.get(0);
      sb.append(
          String.format(
              Locale.ROOT,
              "%s  experiment=%s run=%s step=%d split=%s device=%s%n",
              first.probe(),
              first.experiment(),
              first.run(),
              first.step(),
              first.split(),
              first.device()));
    }
    for (int r = 0; r < rows.size(); r++) {
      String[] row = rows.get(r);
      for (int c = 0; c < row.length; c++) {
        String cell = row[c];
        sb.append(c == 0 ? pad(cell, width[c], false) : "  " + pad(cell, width[c], true));
      }
      sb.append(System.lineSeparator());
    }
    for (ProbeResult r : results) {
      if (r.notes() != null) {
        sb.append(r.layer()).append(": ").append(r.notes()).append(System.lineSeparator());
      }
    }
    return sb.toString();
  }

  private static String format(Double v) {
    if (v == null) {
      return "null";
    }
    if (v == Math.rint(v) && Math.abs(v) < 1e15) {
      return Long.toString(v.longValue());
    }
    return String.format(Locale.ROOT, "%.7g", v);
  }

  private static String pad(String s, int w, boolean right) {
    String fill = " ".repeat(Math.max(0, w - s.length()));
    return right ? fill + s : s + fill;
  }
}
