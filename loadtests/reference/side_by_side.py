#!/usr/bin/python3
"""Side by side: Probestream's neural_collapse against numpy (OpenBLAS) and PyTorch on the same data.

Driven by loadtests/side-by-side.sh; see loadtests/README.md "Side by side". Three parts:
  (a) the pass-1/pass-2 statistics kernels (CollapseMoments.of, NeuralCollapseProbe.Frozen.pass2)
      against numpy doing the same work, and as a fraction of numpy's float32 GEMM rate;
  (b) all of PROBES.md §1 from features: Probestream vs nc_reference.py (textbook numpy), a vectorized
      numpy two-pass implementation (below) and the same in PyTorch (CPU, float64);
  (c) end to end: `probestream probe` (whole process) vs bare ONNX Runtime inference (Java, same
      onnxruntime artifact), a PyTorch forward of the same weights and a numpy end-to-end run
      (forward + vectorized NC), each a whole process where it says so.
Values are checked before any time is reported: Probestream's metrics against nc_reference.py on
the same features (1e-6 relative, counts and nc4 exact) and `probestream probe` against the numpy
end-to-end run (1e-4 relative: ORT and numpy round the float32 forward pass differently).

`side_by_side.py numpy-e2e MODEL OUT.json DATA...` is the numpy end-to-end process timed in (c).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nc_reference  # noqa: E402
import safetensors_io  # noqa: E402

KEYS = ["samples", "classes_seen", "nonfinite", "nc1", "nc1_trace", "nc2_equinorm", "nc2_equiangular",
        "nc2_etf_distance", "cdnv", "nc3_self_duality", "nc4_ncc_mismatch", "sb_rank"]
EXACT = {"samples", "classes_seen", "nonfinite", "sb_rank", "nc4_ncc_mismatch"}


# ---------------------------------------------------------------- vectorized numpy (two passes)

def np_pass1(h32, labels, k):
    """Per-class counts, means and scatter (float64), as CollapseMoments.of: sums, then centred ssq."""
    h = h32.astype(np.float64)
    n = np.bincount(labels, minlength=k).astype(np.float64)
    onehot = np.zeros((h.shape[0], k))
    onehot[np.arange(h.shape[0]), labels] = 1.0
    mu = (onehot.T @ h) / n[:, None]
    dlt = h - mu[labels]
    ssq = np.bincount(labels, weights=np.einsum("ij,ij->i", dlt, dlt), minlength=k)
    return n, mu, ssq


def np_freeze(n, mu):
    m = mu - mu.mean(axis=0)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    keep = s * s > 1e-10 * s[0] * s[0]
    return m, s[keep] ** 2, vt[keep]


def np_pass2(h32, labels, n, mu, basis, logits=None):
    """a_j = Σ_i (1/n_{y_i}) (v_jᵀ(h_i − μ_{y_i}))² and, with logits, the NC4 mismatches."""
    h = h32.astype(np.float64)
    p = (h - mu[labels]) @ basis.T
    a = (1.0 / n[labels]) @ (p * p)
    mism = None
    if logits is not None:
        d2 = np.einsum("ij,ij->i", h, h)[:, None] - 2.0 * (h @ mu.T) + np.einsum("ij,ij->i", mu, mu)[None, :]
        mism = int(np.count_nonzero(np.argmax(logits, axis=1) != np.argmin(d2, axis=1)))
    return a, mism


def np_collapse(h32, labels, logits=None, w=None):
    """PROBES.md §1 for a layer whose samples are all finite and whose K classes are 0..K-1, all seen."""
    k = int(labels.max()) + 1
    if not np.isfinite(h32).all() or (logits is not None and not np.isfinite(logits).all()):
        raise SystemExit("np_collapse: non-finite input (the timing data has none)")
    n, mu, ssq = np_pass1(h32, labels, k)
    if (n == 0).any():
        raise SystemExit("np_collapse: a class is unseen (the timing data has every class)")
    m, s2, basis = np_freeze(n, mu)
    a, mism = np_pass2(h32, labels, n, mu, basis, logits)
    var = ssq / n
    norms = np.linalg.norm(m, axis=1)
    g = m @ m.T
    cos = g / np.outer(norms, norms)
    off = ~np.eye(k, dtype=bool)
    diff = mu[:, None, :] - mu[None, :, :]
    dist2 = np.einsum("abj,abj->ab", diff, diff)
    iu = np.triu_indices(k, 1)
    target = (np.eye(k) - 1.0 / k) / np.sqrt(k - 1)
    out = {"samples": float(h32.shape[0]), "classes_seen": float(k), "nonfinite": 0.0,
           "nc1": float(np.sum(a / s2) / k),
           "nc1_trace": float(var.sum() / (norms ** 2).sum()),
           "nc2_equinorm": float(np.std(norms, ddof=1) / np.mean(norms)),
           "nc2_equiangular": float(np.mean(np.abs(cos[off] + 1.0 / (k - 1)))),
           "nc2_etf_distance": float(np.linalg.norm(g / np.linalg.norm(g) - target)),
           "cdnv": float(np.mean((var[iu[0]] + var[iu[1]]) / (2.0 * dist2[iu]))),
           "sb_rank": float(len(s2))}
    if w is not None:
        ws = w.astype(np.float64)[:k]
        out["nc3_self_duality"] = float(np.linalg.norm(ws / np.linalg.norm(ws) - m / np.linalg.norm(m)) ** 2)
        out["nc4_ncc_mismatch"] = mism / h32.shape[0]
    return out


# ---------------------------------------------------------------- the same in PyTorch (CPU, float64)

def torch_collapse(torch, h32, labels, logits=None, w=None):
    k = int(labels.max()) + 1
    h = torch.from_numpy(h32).double()
    y = torch.from_numpy(labels)
    n = torch.bincount(y, minlength=k).double()
    mu = torch.zeros(k, h.shape[1], dtype=torch.float64).index_add_(0, y, h) / n[:, None]
    dlt = h - mu[y]
    ssq = torch.zeros(k, dtype=torch.float64).index_add_(0, y, (dlt * dlt).sum(1))
    m = mu - mu.mean(0)
    _, s, vt = torch.linalg.svd(m, full_matrices=False)
    keep = s * s > 1e-10 * s[0] * s[0]
    s2, basis = s[keep] ** 2, vt[keep]
    p = dlt @ basis.T
    a = (1.0 / n[y]) @ (p * p)
    var = ssq / n
    norms = m.norm(dim=1)
    g = m @ m.T
    cos = g / torch.outer(norms, norms)
    off = ~torch.eye(k, dtype=torch.bool)
    dist2 = torch.cdist(mu, mu) ** 2
    iu = torch.triu_indices(k, k, 1)
    target = (torch.eye(k, dtype=torch.float64) - 1.0 / k) / (k - 1) ** 0.5
    out = {"samples": float(h.shape[0]), "classes_seen": float(k), "nonfinite": 0.0,
           "nc1": float((a / s2).sum() / k), "nc1_trace": float(var.sum() / (norms ** 2).sum()),
           "nc2_equinorm": float(norms.std() / norms.mean()),
           "nc2_equiangular": float((cos[off] + 1.0 / (k - 1)).abs().mean()),
           "nc2_etf_distance": float((g / g.norm() - target).norm()),
           "cdnv": float(((var[iu[0]] + var[iu[1]]) / (2.0 * dist2[iu[0], iu[1]])).mean()),
           "sb_rank": float(len(s2))}
    if w is not None:
        ws = torch.from_numpy(w).double()[:k]
        out["nc3_self_duality"] = float((ws / ws.norm() - m / m.norm()).norm() ** 2)
        z = torch.from_numpy(logits)
        d2 = (h * h).sum(1)[:, None] - 2.0 * (h @ mu.T) + (mu * mu).sum(1)[None, :]
        out["nc4_ncc_mismatch"] = float((z.argmax(1) != d2.argmin(1)).sum()) / h.shape[0]
    return out


# ---------------------------------------------------------------- data

def load_data(files):
    xs, ys = [], []
    for f in files:
        t = safetensors_io.load(f)
        xs.append(t["input"])
        ys.append(t["labels"])
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def np_forward(model, inits, x):
    env, _ = nc_reference.forward(model, inits, x, np.float32)
    return env["h1"], env["h2"], env["logits"]


def numpy_e2e(model_path, out_path, files):
    """The whole numpy run timed in (c): read, float32 forward, NC on h1 and h2, JSON."""
    model, inits = nc_reference.load_model(model_path)
    x, y = load_data(files)
    h1, h2, z = np_forward(model, inits, x)
    w = inits["classifier.weight"]
    out = {"h1": np_collapse(h1, y), "h2": np_collapse(h2, y, z, w)}
    with open(out_path, "w") as f:
        json.dump(out, f)


def write_raw(path, a):
    a = np.ascontiguousarray(a)
    with open(path, "wb") as f:
        f.write(np.array([a.ndim, *a.shape], dtype="<i4").tobytes())
        f.write(a.astype("<f4" if a.dtype.kind == "f" else "<i4").tobytes())


# ---------------------------------------------------------------- timing helpers

def best_of(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def wall(cmd, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    wall.stderr = r.stderr
    return dt, r.stdout


def parse_java(out):
    times, metrics, ranks = {}, {}, {}
    for line in out.splitlines():
        if line.startswith("time "):
            _, key, best, med = line.split()
            times[key] = float(best.split("=")[1])
        elif line.startswith("metrics "):
            _, layer, js = line.split(" ", 2)
            metrics[layer] = json.loads(js)
        elif line.startswith("rank "):
            _, layer, r = line.split()
            ranks[layer] = int(r)
    return times, metrics, ranks


def max_rel(a, b, where):
    worst = 0.0
    for key in KEYS:
        if key not in a and key not in b:
            continue
        if key not in a or key not in b or a[key] is None or b[key] is None:
            raise SystemExit(f"value check failed: {where} {key}: {a.get(key)} vs {b.get(key)}")
        if key in EXACT:
            if a[key] != b[key]:
                raise SystemExit(f"value check failed: {where} {key}: {a[key]} vs {b[key]} (must be equal)")
            continue
        worst = max(worst, abs(a[key] - b[key]) / max(abs(b[key]), 1e-300))
    return worst


def spread(vals, fmt="{:.3g}"):
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


# ---------------------------------------------------------------- driver

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "numpy-e2e":
        numpy_e2e(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="/tmp/big-mlp")
    ap.add_argument("--work", default="/tmp/side-by-side")
    ap.add_argument("--jar", required=True, help="loadtests/jmh/target/benchmarks.jar")
    ap.add_argument("--probestream", required=True, help="the ./probestream launcher")
    ap.add_argument("--repeats", type=int, default=3, help="every figure is taken this many times")
    ap.add_argument("--reps", type=int, default=10, help="best of this many calls inside one repeat")
    ap.add_argument("--batch", type=int, default=256, help="rows per batch (the CLI's --batch-size)")
    args = ap.parse_args()

    import torch
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    os.makedirs(args.work, exist_ok=True)
    model_path = os.path.join(args.data_dir, "model.onnx")
    files = sorted(os.path.join(args.data_dir, f) for f in os.listdir(args.data_dir)
                   if re.fullmatch(r"reference-\d+\.safetensors", f))
    files.sort(key=lambda p: int(re.search(r"reference-(\d+)", p).group(1)))
    model, inits = nc_reference.load_model(model_path)
    x, y = load_data(files)
    h1, h2, z = np_forward(model, inits, x)
    w = inits["classifier.weight"].astype(np.float32)
    n_samples, k = x.shape[0], int(y.max()) + 1
    for name, a in [("input", x), ("h1", h1), ("h2", h2), ("logits", z), ("w", w)]:
        write_raw(os.path.join(args.work, name + ".f32"), a)
    write_raw(os.path.join(args.work, "labels.i32"), y.astype(np.int32))
    java = ["java", "-Xmx4g", "-cp", args.jar, "io.probestream.loadtests.sidebyside.SideBySide"]
    probe_cmd = [args.probestream, "probe", "--model", model_path]
    for f in files:
        probe_cmd += ["--data", f]
    probe_cmd += ["--layer", "h1=h1", "--layer", "h2=h2", "--logits", "logits",
                  "--classifier-weight", "classifier.weight"]
    blas = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if re.search(r"blas|lapack", ln)})
    print("BLAS loaded by numpy/torch:", ", ".join(blas) or "none found")
    print(f"data: {model_path}, {n_samples} samples in {len(files)} files, K = {k}, "
          f"d(h1) = {h1.shape[1]}, d(h2) = {h2.shape[1]}; {threads} CPUs; numpy {np.__version__}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)", flush=True)

    # ---------------- value checks first
    ref = {"h1": nc_reference.neural_collapse(h1, y)[0], "h2": nc_reference.neural_collapse(h2, y, z, w)[0]}
    _, out = wall(java + ["kernel", args.work, "2", str(args.batch)])
    _, jm, _ = parse_java(out)
    checks = []
    for layer in ("h1", "h2"):
        checks.append(("Probestream kernel vs nc_reference (same features)", layer, max_rel(jm[layer], ref[layer], layer), 1e-6))
        npm = np_collapse(h1, y) if layer == "h1" else np_collapse(h2, y, z, w)
        checks.append(("vectorized numpy vs nc_reference", layer, max_rel(npm, ref[layer], layer), 1e-6))
        tm = torch_collapse(torch, h1, y) if layer == "h1" else torch_collapse(torch, h2, y, z, w)
        checks.append(("PyTorch vs nc_reference", layer, max_rel(tm, ref[layer], layer), 1e-6))
    e2e_json = os.path.join(args.work, "numpy-e2e.json")
    _, _ = wall([sys.executable, os.path.abspath(__file__), "numpy-e2e", model_path, e2e_json] + files)
    with open(e2e_json) as f:
        e2e = json.load(f)
    _, pout = wall(probe_cmd)
    got = {}
    for line in pout.splitlines():
        r = json.loads(line)
        if r.get("probe") == "neural_collapse":
            got[r["layer"]] = r["metrics"]
    for layer in ("h1", "h2"):
        checks.append(("probestream probe (ORT features) vs numpy end to end", layer,
                       max_rel(got[layer], e2e[layer], layer), 1e-4))
    print("\nValue checks (max relative difference over every metric; counts, sb_rank and nc4 equal):")
    for what, layer, d, tol in checks:
        print(f"  {what:55s} {layer}: {d:.2e} (limit {tol:g})")
        if not d <= tol:
            raise SystemExit("value check failed: no timing reported")

    # ---------------- timings
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((2048, 2048), dtype=np.float32)
    hd = {"h1": h1, "h2": h2}
    r = {}

    def put(key, v):
        r.setdefault(key, []).append(v)

    for rep in range(args.repeats):
        print(f"repeat {rep + 1}/{args.repeats} …", flush=True)
        put("gemm", 2 * 2048 ** 3 / best_of(lambda: a @ b, 5) / 1e9)
        _, out = wall(java + ["kernel", args.work, str(args.reps), str(args.batch)])
        jt, _, ranks = parse_java(out)
        for layer in ("h1", "h2"):
            hh = hd[layer]
            zz = z if layer == "h2" else None
            put(f"java.{layer}.pass1", jt[f"{layer}.pass1"])
            put(f"java.{layer}.pass2", jt[f"{layer}.pass2"])
            n, mu, _ = np_pass1(hh, y, k)
            _, _, basis = np_freeze(n, mu)
            put(f"np.{layer}.pass1", best_of(lambda: np_pass1(hh, y, k), args.reps))
            put(f"np.{layer}.pass2", best_of(lambda: np_pass2(hh, y, n, mu, basis, zz), args.reps))
        put("java.nc", jt["nc.both"])
        put("java.nc.cold", jt["nc.cold"])
        put("np.nc", best_of(lambda: (np_collapse(h1, y), np_collapse(h2, y, z, w)), args.reps))
        put("ref.nc", best_of(lambda: (nc_reference.neural_collapse(h1, y), nc_reference.neural_collapse(h2, y, z, w)), 3))
        put("torch.nc", best_of(lambda: (torch_collapse(torch, h1, y), torch_collapse(torch, h2, y, z, w)), args.reps))
        # (c) end to end
        put("e2e.probestream", wall(probe_cmd)[0])
        # the CLI's own evaluation time on stderr: "probestream: N samples, L layers, cpu, T ms"
        put("e2e.probestream.eval", float(re.search(r"(\d+) ms", wall.stderr).group(1)) / 1e3)
        put("e2e.ort.process", wall(java + ["ort", model_path, args.work, "0", str(args.batch)])[0])
        _, out = wall(java + ["ort", model_path, args.work, str(args.reps), str(args.batch)])
        jt, _, _ = parse_java(out)
        put("e2e.ort.run", jt["ort.run"])
        put("e2e.ort.first", jt["ort.first"])
        put("e2e.numpy", wall([sys.executable, os.path.abspath(__file__), "numpy-e2e", model_path, e2e_json] + files)[0])
        tw = {n_: torch.from_numpy(v.copy()) for n_, v in inits.items()}
        xt = torch.from_numpy(x)

        def tfwd():
            with torch.no_grad():
                t1 = torch.relu(torch.nn.functional.linear(xt, tw["fc1.weight"], tw["fc1.bias"]))
                t2 = torch.relu(torch.nn.functional.linear(t1, tw["fc2.weight"], tw["fc2.bias"]))
                return torch.nn.functional.linear(t2, tw["classifier.weight"], tw["classifier.bias"])
        put("e2e.torch.fwd", best_of(tfwd, args.reps))
        put("e2e.np.fwd", best_of(lambda: np_forward(model, inits, x), args.reps))

    # ---------------- table
    n_ = n_samples
    d1, d2 = h1.shape[1], h2.shape[1]
    r1, r2 = ranks["h1"], ranks["h2"]
    flops = {"h1.pass1": 4 * n_ * d1, "h1.pass2": (1 + 2 * r1) * n_ * d1,
             "h2.pass1": 4 * n_ * d2, "h2.pass2": (1 + 2 * r2 + 3 * k) * n_ * d2}
    gemm = r["gemm"]
    print(f"\nfloat32 GEMM (numpy/OpenBLAS, 2048², 2·n³ flops, best of 5): {spread(gemm)} GFLOP/s")
    print("\n(a) statistics kernels, whole reference set, best of", args.reps, "calls; median (min–max) of",
          args.repeats, "repeats")
    print(f"{'kernel':10s} {'flops':>9s} {'Probestream ms':>22s} {'numpy ms':>22s} {'PS/numpy':>18s} "
          f"{'PS GFLOP/s':>20s} {'PS / GEMM rate':>22s}")
    for key, f in flops.items():
        js, ns = r[f"java.{key}"], r[f"np.{key}"]
        rate = [f / t / 1e9 for t in js]
        frac = [f / t / 1e9 / g for t, g in zip(js, gemm)]
        print(f"{key:10s} {f:9.3g} {spread([t * 1e3 for t in js]):>22s} {spread([t * 1e3 for t in ns]):>22s} "
              f"{spread([a_ / b_ for a_, b_ in zip(js, ns)]):>18s} {spread(rate):>20s} "
              f"{spread([q * 100 for q in frac], '{:.2f}') + ' %':>22s}")
    print("\n(b) all of PROBES.md §1 on h1 and h2 from features (best of calls; median (min–max))")
    java_nc = r["java.nc"]
    for label, key in [("Probestream (pass 1, freeze, pass 2, finish)", "java.nc"),
                       ("Probestream, first call in a fresh JVM (cold)", "java.nc.cold"),
                       ("numpy vectorized two-pass", "np.nc"), ("PyTorch CPU float64", "torch.nc"),
                       ("nc_reference.py (textbook, d×d Σ_W)", "ref.nc")]:
        print(f"  {label:46s} {spread([t * 1e3 for t in r[key]]):>24s} ms   Probestream / this: "
              f"{spread([a_ / b_ for a_, b_ in zip(java_nc, r[key])])}")
    print("\n(c) end to end, 10,000 samples, h1 and h2")
    ps = r["e2e.probestream"]
    rows = [("probestream probe, whole process (JVM start incl.)", "e2e.probestream"),
            ("probestream probe, evaluation as it reports it (inference + NC)", "e2e.probestream.eval"),
            ("bare ORT, whole Java process (JVM start, read input, session, one pass)", "e2e.ort.process"),
            ("bare ORT, one inference pass (in process, warm)", "e2e.ort.run"),
            ("bare ORT, first inference pass (in process, cold)", "e2e.ort.first"),
            ("numpy end to end, whole process (forward + NC)", "e2e.numpy"),
            ("PyTorch forward only (in process, warm)", "e2e.torch.fwd"),
            ("numpy forward only (in process, warm)", "e2e.np.fwd")]
    for label, key in rows:
        print(f"  {label:72s} {spread([t * 1e3 for t in r[key]]):>22s} ms   probestream / this: "
              f"{spread([a_ / b_ for a_, b_ in zip(ps, r[key])])}")
    print(json.dumps({"raw_seconds_or_gflops": r}), file=open(os.path.join(args.work, "raw.json"), "w"))


if __name__ == "__main__":
    main()
