package io.probestream.service.web;

/**
 * The built-in live dashboard at {@code /}: one page, no build step, uPlot from its webjar (served
 * at {@code /webjars/uplot/}). It reads {@code /api/v1/experiments} and the experiment's results,
 * then follows {@code /api/v1/stream} (server-sent events): a chart per probe metric over steps
 * with one line per run (predictive multiplicity: one line for the experiment), selectors for
 * experiment, layer and split, the current Rashomon set, and the latest result per probe, layer and
 * split. Clear states for "no data yet", "waiting for the reference set" and errors. With a bearer
 * token configured, the page is opened as {@code /?access_token=TOKEN}; it sends the token as a
 * header on its fetches and as the {@code access_token} parameter on the EventSource and the webjar
 * links (which cannot set headers).
 */
final class LivePage {
  private LivePage() {}

  /** uPlot's version, as in the service's pom (the webjar's path names it). */
  static final String UPLOT = "1.6.30";

  static final String HTML =
      """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>Probestream</title>
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <meta name="referrer" content="no-referrer">
      <script>
      // With probestream.http.auth-token-file set, open the page as /?access_token=TOKEN: fetches send
      // it as a bearer header, EventSource and the chart library (which cannot) as the query parameter.
      const TOKEN = new URLSearchParams(location.search).get('access_token');
      const AUTH = TOKEN ? {headers: {Authorization: 'Bearer ' + TOKEN}} : {};
      const withToken = u => TOKEN ? u + (u.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(TOKEN) : u;
      const uplotLoaded = new Promise((resolve, reject) => {
        const css = document.createElement('link');
        css.rel = 'stylesheet'; css.href = withToken('/webjars/uplot/@UPLOT@/dist/uPlot.min.css');
        const js = document.createElement('script');
        js.src = withToken('/webjars/uplot/@UPLOT@/dist/uPlot.iife.min.js');
        js.onload = resolve; js.onerror = () => reject(new Error('cannot load the chart library'));
        document.head.append(css, js);
      });
      </script>
      <style>
       body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
       header{display:flex;gap:1em;align-items:center;flex-wrap:wrap;padding:.8em 1.5em;background:#1f2937;color:#fff}
       header h1{font-size:1.2em;margin:0 1em 0 0}header label{font-size:.9em}
       select{font:inherit;margin-left:.3em}
       main{padding:1em 1.5em}
       #state{padding:.6em 1em;border-radius:4px;margin-bottom:1em;background:#eef2ff}
       #state.error{background:#fee2e2;color:#7f1d1d}#state.ok{display:none}
       #live{font-size:.85em;padding:.2em .6em;border-radius:999px;background:#374151}
       #live.on{background:#047857}
       h2{font-size:1.05em;margin:1.2em 0 .4em}
       .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
       .card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:6px}
       .card .title{font-size:.85em;color:#555;margin:2px 4px}
       table{border-collapse:collapse;margin:.3em 0 1em;background:#fff}
       td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;font-size:.9em}
       th:first-child,td:first-child{text-align:left}.muted{color:#888}
       #rashomon li.baseline{font-weight:600}
      </style></head><body>
      <header><h1>Probestream</h1>
       <label>experiment<select id="experiment"></select></label>
       <label>layer<select id="layer"></select></label>
       <label>split<select id="split"><option value="reference">reference</option><option value="train">train</option><option value="eval">eval</option></select></label>
       <span id="live">connecting…</span>
       <span class="muted"><a id="stream-link" style="color:#9ca3af" href="/api/v1/stream">stream</a> · <a style="color:#9ca3af" href="/metrics">metrics</a></span>
      </header>
      <main>
      <div id="state">Loading…</div>
      <div id="charts"></div>
      <h2>Rashomon set</h2><div id="rashomon" class="muted">No predictive multiplicity result yet.</div>
      <h2>Latest results</h2><div id="latest"></div>
      </main>
      <script>
      // Metrics charted per probe (PROBES.md); a chart shows the selected layer and split.
      const CHARTS = {
        neural_collapse: ['nc1', 'nc1_trace', 'nc2_etf_distance', 'cdnv', 'nc3_self_duality', 'nc4_ncc_mismatch'],
        feature_complexity: ['ifm_ratio', 'ifm_data_ratio', 'effective_rank', 'vinfo_r2', 'vinfo_complexity'],
        predictive_multiplicity: ['ambiguity', 'discrepancy', 'vpr_mean', 'rashomon_capacity_mean', 'disagreement_mean', 'rashomon_set_size']
      };
      const TABLE = {
        neural_collapse: ['samples', 'nc1', 'nc1_trace', 'nc2_etf_distance', 'cdnv', 'nc3_self_duality', 'nc4_ncc_mismatch'],
        feature_complexity: ['width', 'samples', 'ifm_units', 'ifm_data_units', 'effective_rank', 'vinfo_r2', 'vinfo_complexity'],
        predictive_multiplicity: ['rashomon_set_size', 'ambiguity', 'discrepancy', 'vpr_mean', 'rashomon_capacity_mean', 'baseline_loss']
      };
      const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#4b5563'];
      const results = new Map();   // experiment -> result[]
      const charts = new Map();    // probe|metric -> {plot, series}
      const expSel = document.getElementById('experiment');
      const layerSel = document.getElementById('layer');
      const splitSel = document.getElementById('split');
      const stateBox = document.getElementById('state');
      let experiments = [];
      window.probestream = {points: 0, results: 0}; // read by the browser test

      const fmt = v => v === null || v === undefined ? '—' : (Number.isInteger(v) ? String(v) : v.toPrecision(4));
      function state(text, kind) { stateBox.textContent = text; stateBox.className = kind || ''; }
      function option(sel, value) {
        if (![...sel.options].some(o => o.value === value)) {
          const o = document.createElement('option'); o.value = o.textContent = value; sel.appendChild(o);
        }
      }

      function add(r, redraw) {
        if (!results.has(r.experiment)) { results.set(r.experiment, []); option(expSel, r.experiment); }
        const list = results.get(r.experiment);
        if (!list.some(x => x.id === r.id)) { list.push(r); window.probestream.results++; }
        if (!expSel.value) expSel.value = r.experiment;
        if (r.experiment === expSel.value && r.layer) option(layerSel, r.layer);
        if (!layerSel.value && r.layer) layerSel.value = r.layer;
        if (redraw && r.experiment === expSel.value) render();
      }

      // One line per run (or one for the experiment), x = step, the selected layer and split.
      function seriesFor(list, probe, metric) {
        const lines = new Map();
        for (const r of list) {
          if (r.probe !== probe || !(metric in r.metrics)) continue;
          if (probe !== 'predictive_multiplicity' && (r.layer !== layerSel.value || r.split !== splitSel.value)) continue;
          const name = r.run ?? 'experiment';
          if (!lines.has(name)) lines.set(name, new Map());
          lines.get(name).set(r.step, r.metrics[metric]);
        }
        const names = [...lines.keys()].sort();
        const steps = [...new Set(names.flatMap(n => [...lines.get(n).keys()]))].sort((a, b) => a - b);
        const data = [steps, ...names.map(n => steps.map(s => lines.get(n).has(s) ? lines.get(n).get(s) : null))];
        return {names, data};
      }

      function chart(probe, metric, names, data) {
        const key = probe + '|' + metric;
        let c = charts.get(key);
        if (c && c.names.join('|') !== names.join('|')) { c.plot.destroy(); c.card.remove(); charts.delete(key); c = null; }
        if (!c) {
          let group = document.getElementById('group-' + probe);
          if (!group) {
            const h = document.createElement('h2'); h.textContent = probe;
            group = document.createElement('div'); group.className = 'grid'; group.id = 'group-' + probe;
            document.getElementById('charts').append(h, group);
          }
          const card = document.createElement('div'); card.className = 'card'; card.dataset.metric = key;
          const title = document.createElement('div'); title.className = 'title'; title.textContent = metric;
          card.appendChild(title); group.appendChild(card);
          const opts = {width: 340, height: 180, legend: {show: true}, scales: {x: {time: false}},
            axes: [{label: 'step'}, {}],
            series: [{label: 'step'}, ...names.map((n, i) => ({label: n, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: {size: 4}}))]};
          c = {plot: new uPlot(opts, data, card), names, card};
          charts.set(key, c);
        } else {
          c.plot.setData(data);
        }
        c.card.dataset.points = data.slice(1).reduce((n, ys) => n + ys.filter(v => v !== null && v !== undefined).length, 0);
      }

      function render() {
        const list = results.get(expSel.value) || [];
        let points = 0;
        for (const [probe, metrics] of Object.entries(CHARTS)) {
          for (const metric of metrics) {
            const {names, data} = seriesFor(list, probe, metric);
            if (names.length === 0) continue;
            chart(probe, metric, names, data);
            points += data.slice(1).reduce((n, ys) => n + ys.filter(v => v !== null).length, 0);
          }
        }
        window.probestream.points = points;
        rashomon(list);
        latest(list);
        const exp = experiments.find(e => e.experiment === expSel.value);
        if (!expSel.value) state('Waiting for data: no experiment has published results yet. Publish a reference set and a checkpoint (see the README), or run ./probestream demo.');
        else if (exp && exp.reference_set !== 'complete' && list.length === 0) state('Waiting for the reference set of ' + expSel.value + ' (' + exp.reference_set + ').');
        else state('', 'ok');
      }

      function rashomon(list) {
        const pm = list.filter(r => r.probe === 'predictive_multiplicity' && r.members).sort((a, b) => a.computed_at < b.computed_at ? -1 : 1);
        const box = document.getElementById('rashomon');
        if (pm.length === 0) return;
        const r = pm[pm.length - 1];
        box.className = '';
        box.innerHTML = '';
        const p = document.createElement('p');
        p.textContent = r.members.length + ' member(s) within ε = ' + r.params.epsilon + ' nats of the best reference loss ('
          + fmt(r.metrics.baseline_loss) + '), after step ' + r.step + ':';
        const ul = document.createElement('ul');
        r.members.forEach((m, i) => {
          const li = document.createElement('li');
          li.textContent = m.run + ' @ step ' + m.step + (i === r.baseline ? '  (baseline)' : '');
          if (i === r.baseline) li.className = 'baseline';
          ul.appendChild(li);
        });
        box.append(p, ul);
      }

      function latest(list) {
        const box = document.getElementById('latest');
        box.innerHTML = '';
        for (const [probe, cols] of Object.entries(TABLE)) {
          const last = new Map();
          for (const r of list) if (r.probe === probe) {
            const k = [r.run, r.layer, r.split].join('|');
            if (!last.has(k) || last.get(k).step <= r.step) last.set(k, r);
          }
          if (last.size === 0) continue;
          const t = document.createElement('table'); t.id = 'latest-' + probe;
          const head = document.createElement('tr');
          for (const c of [probe, 'run', 'step', 'layer', 'split', ...cols]) { const th = document.createElement('th'); th.textContent = c; head.appendChild(th); }
          t.appendChild(head);
          for (const [k, r] of [...last.entries()].sort()) {
            const tr = document.createElement('tr');
            for (const v of ['', r.run, r.step, r.layer, r.split, ...cols.map(c => r.metrics[c])]) {
              const td = document.createElement('td'); td.textContent = typeof v === 'number' ? fmt(v) : (v ?? '—'); tr.appendChild(td);
            }
            if (r.notes) tr.title = r.notes;
            t.appendChild(tr);
          }
          box.appendChild(t);
        }
      }

      async function checked(response) {
        const res = await response;
        if (res.status === 401) throw new Error('401 unauthorized: open this page as /?access_token=TOKEN');
        return res;
      }

      async function load() {
        try {
          experiments = await (await checked(fetch('/api/v1/experiments', AUTH))).json();
          for (const e of experiments) {
            option(expSel, e.experiment);
            // Pages are oldest first: read them all (a bounded view keeps at most a few thousand).
            for (let offset = 0; ; offset += 1000) {
              const page = await (await checked(fetch('/api/v1/experiments/' + encodeURIComponent(e.experiment) + '/results?limit=1000&offset=' + offset, AUTH))).json();
              page.results.forEach(r => add(r, false));
              if (offset + page.limit >= page.total) break;
            }
          }
          render();
        } catch (err) {
          state('Cannot read the results API: ' + err, 'error');
        }
      }

      function follow() {
        const live = document.getElementById('live');
        const es = new EventSource(withToken('/api/v1/stream'));
        es.onopen = () => { live.textContent = 'live'; live.className = 'on'; };
        es.onerror = () => { live.textContent = 'reconnecting…'; live.className = ''; };
        es.addEventListener('result', ev => add(JSON.parse(ev.data), true));
      }

      for (const sel of [expSel, layerSel, splitSel]) sel.addEventListener('change', () => {
        if (sel === expSel) { layerSel.innerHTML = ''; (results.get(expSel.value) || []).forEach(r => r.layer && option(layerSel, r.layer)); }
        for (const c of charts.values()) { c.plot.destroy(); c.card.remove(); }
        charts.clear();
        document.getElementById('charts').innerHTML = '';
        render();
      });
      document.getElementById('stream-link').href = withToken('/api/v1/stream');
      uplotLoaded.then(() => { follow(); load(); }, err => state(err.message, 'error'));
      </script></body></html>
      """
          .replace("@UPLOT@", UPLOT);
}
