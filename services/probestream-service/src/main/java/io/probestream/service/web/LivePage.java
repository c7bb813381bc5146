package io.probestream.service.web;

/**
 * The built-in live page: the latest result per probe, experiment, run, layer and split, one table
 * per probe, updated over server-sent events.
 */
final class LivePage {
  private LivePage() {}

  static final String HTML =
      """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>Probestream</title>
      <style>
       body{font:14px system-ui,sans-serif;margin:2em;color:#222}
       table{border-collapse:collapse;margin:.5em 0 2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
       th:first-child,td:first-child{text-align:left}.muted{color:#888}
      </style></head><body>
      <h1>Probestream</h1>
      <p class="muted">Latest probe result per experiment, run, layer and split, live. Raw stream: <a href="/api/v1/stream">/api/v1/stream</a>,
      metrics: <a href="/metrics">/metrics</a>.</p>
      <div id="probes"></div>
      <script>
      // Columns per probe; a probe not listed here shows every metric it sends.
      const COLUMNS = {
        neural_collapse: ['samples', 'nc1', 'nc1_trace', 'nc2_etf_distance', 'cdnv', 'nc3_self_duality', 'nc4_ncc_mismatch'],
        feature_complexity: ['width', 'samples', 'ifm_units', 'ifm_ratio', 'ifm_data_units', 'effective_rank', 'vinfo_r2', 'vinfo_complexity']
      };
      const tables = new Map();
      const fmt = v => v === null || v === undefined ? '—' : (Number.isInteger(v) ? v : v.toPrecision(4));
      function table(probe, sample) {
        if (!tables.has(probe)) {
          const cols = COLUMNS[probe] || Object.keys(sample.metrics);
          const section = document.createElement('section');
          section.innerHTML = '<h2></h2><table><thead><tr></tr></thead><tbody></tbody></table>';
          section.querySelector('h2').textContent = probe;
          section.querySelector('table').id = 'probe-' + probe;
          const head = section.querySelector('thead tr');
          for (const c of ['experiment', 'run', 'step', 'layer', 'split', ...cols]) {
            const th = document.createElement('th'); th.textContent = c; head.appendChild(th);
          }
          document.getElementById('probes').appendChild(section);
          tables.set(probe, {cols, rows: new Map(), body: section.querySelector('tbody')});
        }
        return tables.get(probe);
      }
      function show(r) {
        const t = table(r.probe, r);
        const key = [r.experiment, r.run, r.layer, r.split].join('|');
        t.rows.set(key, r);
        t.body.innerHTML = '';
        for (const [k, x] of [...t.rows.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
          const tr = document.createElement('tr');
          for (const v of [x.experiment, x.run, x.step, x.layer, x.split, ...t.cols.map(c => x.metrics[c])]) {
            const td = document.createElement('td'); td.textContent = typeof v === 'number' ? fmt(v) : (v ?? '—'); tr.appendChild(td);
          }
          t.body.appendChild(tr);
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
