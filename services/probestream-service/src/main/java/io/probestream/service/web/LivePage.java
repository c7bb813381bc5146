package io.probestream.service.web;

/** The built-in live page: the latest neural-collapse results, updated over server-sent events. */
final class LivePage {
  private LivePage() {}

  static final String HTML =
      """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>Probestream</title>
      <style>
       body{font:14px system-ui,sans-serif;margin:2em;color:#222}
       table{border-collapse:collapse;margin-top:1em}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
       th:first-child,td:first-child{text-align:left}.muted{color:#888}
      </style></head><body>
      <h1>Probestream</h1>
      <p class="muted">Latest probe result per experiment, run and layer, live. Raw stream: <a href="/api/v1/stream">/api/v1/stream</a>,
      metrics: <a href="/metrics">/metrics</a>.</p>
      <table id="t"><thead><tr><th>experiment</th><th>run</th><th>step</th><th>layer</th><th>samples</th>
      <th>nc1</th><th>nc1_trace</th><th>nc2_etf_distance</th><th>cdnv</th><th>nc3</th><th>nc4</th></tr></thead><tbody></tbody></table>
      <script>
      const rows = new Map();
      const fmt = v => v === null || v === undefined ? '—' : (Number.isInteger(v) ? v : v.toPrecision(4));
      function show(r) {
        const key = r.experiment + '|' + r.run + '|' + r.layer;
        rows.set(key, r);
        const body = document.querySelector('#t tbody');
        body.innerHTML = '';
        for (const x of [...rows.values()].sort((a, b) => (a.experiment + a.run + a.layer).localeCompare(b.experiment + b.run + b.layer))) {
          const m = x.metrics, tr = document.createElement('tr');
          for (const v of [x.experiment, x.run, x.step, x.layer, m.samples, m.nc1, m.nc1_trace, m.nc2_etf_distance, m.cdnv, m.nc3_self_duality, m.nc4_ncc_mismatch]) {
            const td = document.createElement('td'); td.textContent = typeof v === 'number' ? fmt(v) : (v ?? '—'); tr.appendChild(td);
          }
          body.appendChild(tr);
        }
      }
      // Pages are oldest first, so the latest results are on the last page.
      const page = (e, offset) => fetch('/api/v1/experiments/' + encodeURIComponent(e) + '/results?limit=1000&offset=' + offset).then(r => r.json());
      fetch('/api/v1/experiments').then(r => r.json()).then(es => es.forEach(e =>
        page(e.experiment, 0).then(p => p.total > p.limit ? page(e.experiment, p.total - p.limit) : p).then(p => p.results.forEach(show))));
      new EventSource('/api/v1/stream').addEventListener('result', ev => show(JSON.parse(ev.data)));
      </script></body></html>
      """;
}
