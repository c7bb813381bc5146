#!/usr/bin/python3
"""Independent float64 reference for the `predictive_multiplicity` probe (PROBES.md §3).

  /usr/bin/python3 multiplicity_reference.py --model [RUN[@STEP]=]MODEL.onnx [--model ...] \
      --data D1.safetensors [--data D2 ...] --logits logits [--epsilon 0.05] \
      [--scope experiment|run] [--window W] --out expected.json
  /usr/bin/python3 multiplicity_reference.py --self-test

Candidates: each --model is one checkpoint. RUN defaults to the file's stem, STEP to the checkpoint's position
(0-based) in the --model list; `RUN=MODEL` keeps the positional step. The offline canonical order is the order
given (PROBES.md §3.1); (run, step) must be unique. The reference set is the --data files concatenated in the
order given (the reference-set index of §0); each file holds `labels` and one input tensor, whose name must be
the model's graph input.

Logits: nc_reference.py's numpy evaluation of the ONNX graph, in float32 like ONNX Runtime
(--forward-precision float64 to gauge rounding), widened to float64. One logit column (binary) becomes
z = (0, z). log p = z - max z - ln sum exp(z - max z) and p = exp(log p), all float64. A model whose logits are
non-finite anywhere on the reference set is left out (models_nonfinite) and is never the baseline.

Set and metrics, computed directly from the whole N x K probability arrays of the members (not streamed):
L_m = -mean ln p_m(i, y_i); b = argmin L (np.argmin: the earliest candidate on exact ties); S = {m : L_m <= L_b +
epsilon} in canonical order; predictions by np.argmax (lowest class on ties); ambiguity, discrepancy, vpr_mean
(through the baseline's class), disagreement_mean (all unordered pairs of S) exactly as tabulated in §3.2.

Rashomon capacity (§3.3) is computed with a DIFFERENT algorithm from the §3.3 reference method (over-relaxed
Blahut-Arimoto): a primal log-barrier interior-point method (damped Newton on
I(r) + tau * sum ln r_m over the simplex, in the scaled variables dr = r * u so that vanishing weights stay
well conditioned; tau divided by 10 per stage). Identical member rows are merged first (C does not change) and
all-zero columns dropped. Every Newton iterate r gives the certified bounds
    lower = I(r) = sum_m r_m D(Q_m || q),   upper = max_m D(Q_m || q),   q = r^T Q,
and the solver stops as soon as upper - lower <= 1e-8 nats (PROBES.md §0; --capacity-gap to tighten) and
reports the lower bound. RC_i = exp(C_i). Iteration counts (Newton steps per sample) go to stderr and to the
output's `diagnostics`.

Scopes: `experiment` (default): all candidates. `run`: per run (in order of first appearance), the last
--window W checkpoints of that run in canonical order (all of them without --window); the window is taken over
checkpoints, then the non-finite ones in it are left out (they count in models_seen and models_nonfinite).

Output (experiment): {"metrics": {ambiguity, discrepancy, vpr_mean, rashomon_capacity_mean, disagreement_mean,
rashomon_set_size, models_seen, models_nonfinite, samples, baseline_loss}, "members": [{"run", "step"}, ...],
"baseline": position in members, "losses": {"run@step": L or null (non-finite)}, "notes": str (only when there
is one), "params": {"epsilon"}, "diagnostics": {...}, "source": {...}}. Scope run: {"runs": {run: {metrics,
members, baseline, losses, notes, params, diagnostics}}, "params", "source"}. Counts are JSON integers, values
full float64. With no finite candidate the value metrics, rashomon_set_size and baseline_loss are null,
members is empty, baseline null and samples 0 (the model counts stay numbers).

On stderr: the losses, the distance of every candidate from the epsilon boundary and of the runner-up from the
baseline, and the smallest relative top-2 probability gap over the members (a prediction that a float32
rounding of the probabilities could flip), so you can tell whether another runtime could change a count.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nc_reference  # noqa: E402  (ONNX forward pass)
import safetensors_io  # noqa: E402

EPSILON = 0.05          # PROBES.md §0 default, nats (absolute)
CAPACITY_GAP = 1e-8     # PROBES.md §0: certified upper - lower, nats
METRIC_ORDER = ["ambiguity", "discrepancy", "vpr_mean", "rashomon_capacity_mean", "disagreement_mean",
                "rashomon_set_size", "models_seen", "models_nonfinite", "samples", "baseline_loss"]


# --------------------------------------------------------------------------------------------------
# §3.3 Rashomon capacity: log-barrier interior point with a certified gap
# --------------------------------------------------------------------------------------------------

def _divergences(qm, logqm, r):
    """q = r^T Q and D_m = KL(Q_m || q) (0 ln 0 = 0). qm: [M, K] rows > 0 somewhere in each column."""
    q = r @ qm
    with np.errstate(divide="ignore"):
        logq = np.log(q)
    pos = qm > 0
    d = np.where(pos, qm * (logqm - logq), 0.0).sum(axis=1)
    return q, d


def channel_capacity(rows, gap=CAPACITY_GAP, max_iter=2000):
    """Capacity (nats) of the channel whose rows are `rows` [M, K] (each a probability vector).

    Returns (C as the certified lower bound, iterations, converged, final certified gap, r over the
    original rows). Method: barrier interior point (see the module docstring)."""
    q0 = np.asarray(rows, dtype=np.float64)
    m0 = q0.shape[0]
    # Merge identical rows (duplicates do not change C) and drop all-zero columns.
    uniq, inverse = np.unique(q0, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    uniq = uniq[:, (uniq > 0).any(axis=0)]
    m = uniq.shape[0]
    if m == 1:
        return 0.0, 0, True, 0.0, np.full(m0, 1.0 / m0)
    with np.errstate(divide="ignore"):
        logqm = np.where(uniq > 0, np.log(np.where(uniq > 0, uniq, 1.0)), 0.0)

    r = np.full(m, 1.0 / m)
    q, d = _divergences(uniq, logqm, r)
    lower = float(r @ d)
    cert = float(d.max()) - lower
    tau = max(cert / m, 1e-300)
    it = 0
    converged = cert <= gap
    while not converged and it < max_iter:
        # One centring stage for this tau: damped Newton, scaled variables dr = r * u, sum(r * u) = 0.
        for _ in range(60):
            rq = uniq * r[:, None]
            p = (rq / q) @ rq.T + tau * np.eye(m)      # R (Q diag(1/q) Q^T) R + tau I, positive definite
            g = r * d + tau                             # R (grad I + tau / r), the constant -1 of grad I drops
            try:
                cf = np.linalg.cholesky(p)
                sol = np.linalg.solve(cf.T, np.linalg.solve(cf, np.stack([g, r], axis=1)))
            except np.linalg.LinAlgError:
                sol = np.linalg.lstsq(p, np.stack([g, r], axis=1), rcond=None)[0]
            nu = (r @ sol[:, 0]) / (r @ sol[:, 1])
            u = sol[:, 0] - nu * sol[:, 1]
            dec = float(g @ u)                          # Newton decrement^2 (>= 0)
            if not dec > 1e-3 * tau:
                break
            neg = u < 0
            t = min(1.0, 0.99 / float((-u[neg]).max())) if neg.any() else 1.0
            phi = lower + tau * np.log(r).sum()
            while True:                                 # backtracking (Armijo) on the barrier objective
                rn = r * (1.0 + t * u)
                rn /= rn.sum()
                qn, dn = _divergences(uniq, logqm, rn)
                ln = float(rn @ dn)
                if ln + tau * np.log(rn).sum() >= phi + 0.25 * t * dec or t < 1e-12:
                    break
                t *= 0.5
            it += 1
            r, q, d, lower = rn, qn, dn, ln
            cert = float(d.max()) - lower
            if cert <= gap:
                converged = True
                break
            if it >= max_iter:
                break
        if not converged:
            if tau < 1e-300:
                break
            tau /= 10.0
    # Weights back on the original rows (duplicates share their row's weight equally).
    counts = np.bincount(inverse, minlength=m)
    r_full = r[inverse] / counts[inverse]
    return max(lower, 0.0), it, converged, cert, r_full


def rashomon_capacity(rows, gap=CAPACITY_GAP):
    c, it, ok, _, _ = channel_capacity(rows, gap)
    return math.exp(c), it, ok


# --------------------------------------------------------------------------------------------------
# §3.1, §3.2 on arrays
# --------------------------------------------------------------------------------------------------

def log_softmax(z):
    """Row-wise log-softmax in float64 with max subtraction; one column -> (0, z) first."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be N x K, got {z.shape}")
    if z.shape[1] == 1:
        z = np.concatenate([np.zeros_like(z), z], axis=1)
    mx = z.max(axis=1, keepdims=True)
    s = z - mx
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def multiplicity(logits_list, labels, names=None, epsilon=EPSILON, gap=CAPACITY_GAP, per_sample=False):
    """PROBES.md §3 on candidates given in canonical order.

    logits_list: list of [N, K] (or [N, 1]) arrays, one per candidate; labels: [N].
    names: list of (run, step) per candidate (default (str(j), j)).
    Returns a dict {metrics, members, baseline, losses, notes (list), diagnostics[, rc]}."""
    y = np.asarray(labels).astype(np.int64)
    n = y.shape[0]
    if names is None:
        names = [(str(j), j) for j in range(len(logits_list))]
    keys = [f"{run}@{step}" for run, step in names]
    logp, losses, finite_idx = [], {}, []
    kk = None
    for j, z in enumerate(logits_list):
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != n:
            raise ValueError(f"candidate {keys[j]}: logits {z.shape} do not line up with {n} labels")
        k = 2 if z.shape[1] == 1 else z.shape[1]
        if kk is None:
            kk = k
        elif k != kk:
            raise ValueError(f"candidate {keys[j]}: {k} classes, earlier candidates have {kk}")
        if not np.isfinite(z).all():
            logp.append(None)
            losses[keys[j]] = None
            continue
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels outside [0, {k})")
        lp = log_softmax(z)
        logp.append(lp)
        losses[keys[j]] = float(-lp[np.arange(n), y].mean()) if n else float("nan")
        finite_idx.append(j)
    met = {key: None for key in METRIC_ORDER}
    met["models_seen"] = len(logits_list)
    met["models_nonfinite"] = len(logits_list) - len(finite_idx)
    met["samples"] = 0
    notes = []
    out = {"metrics": met, "members": [], "baseline": None, "losses": losses, "notes": notes, "diagnostics": {}}
    if not finite_idx:
        notes.append("no candidate with finite logits")
        return out
    if n == 0:
        raise ValueError("empty reference set")
    met["samples"] = n
    lvec = np.array([losses[keys[j]] for j in finite_idx])
    b_pos = int(np.argmin(lvec))                    # earliest on exact ties (finite candidates only)
    lb = float(lvec[b_pos])
    members = [j for j in finite_idx if losses[keys[j]] <= lb + epsilon]
    b = members.index(finite_idx[b_pos])
    s = len(members)
    out["members"] = [{"run": names[j][0], "step": names[j][1]} for j in members]
    out["baseline"] = b
    met["baseline_loss"] = lb
    met["rashomon_set_size"] = s

    probs = np.stack([np.exp(logp[j]) for j in members])          # [S, N, K]
    pred = np.argmax(probs, axis=2)                               # [S, N], lowest class on ties
    differs = pred != pred[b]
    met["ambiguity"] = float(differs.any(axis=0).sum()) / n
    met["discrepancy"] = float(differs.sum(axis=1).max()) / n
    kb = pred[b]
    pk = probs[:, np.arange(n), kb]                                # [S, N]
    met["vpr_mean"] = float((pk.max(axis=0) - pk.min(axis=0)).sum()) / n
    pairs = [(a, c) for a in range(s) for c in range(a + 1, s)]
    met["disagreement_mean"] = (sum(float((pred[a] != pred[c]).sum()) / n for a, c in pairs) / len(pairs)
                                if pairs else 0.0)
    rc = np.ones(n)
    iters = np.zeros(n, dtype=np.int64)
    bad = 0
    if s > 1:
        for i in range(n):
            rc[i], iters[i], ok = rashomon_capacity(probs[:, i, :], gap)
            bad += not ok
    else:
        notes.append("rashomon set has a single member")
    if bad:
        notes.append(f"capacity not converged for {bad} samples")
    met["rashomon_capacity_mean"] = float(rc.sum()) / n

    # Diagnostics: how far counts and membership are from flipping.
    others = [losses[keys[j]] for j in finite_idx if j != finite_idx[b_pos]]
    srt = np.sort(probs, axis=2)
    top2 = (srt[:, :, -1] - srt[:, :, -2]) / srt[:, :, -1]
    out["diagnostics"] = {
        "capacity_iterations": {"median": float(np.median(iters)), "p90": float(np.percentile(iters, 90)),
                                "max": int(iters.max()), "mean": float(iters.mean())} if s > 1 else None,
        "baseline_runner_up_loss_gap": (min(others) - lb) if others else None,
        "epsilon_boundary_distance": min(abs(losses[keys[j]] - (lb + epsilon)) for j in finite_idx),
        "min_relative_top2_probability_gap": float(top2.min()),
        "samples_top2_gap_below_1e-5": int((top2 < 1e-5).any(axis=0).sum()),
    }
    if per_sample:
        out["rc"] = rc
        out["iterations"] = iters
    return out


def finish(res, epsilon, extra_params=None):
    """Result dict -> JSON object (notes joined, absent when empty)."""
    obj = {"metrics": {k: res["metrics"][k] for k in METRIC_ORDER}, "members": res["members"],
           "baseline": res["baseline"], "losses": res["losses"]}
    if res["notes"]:
        obj["notes"] = "; ".join(res["notes"])
    obj["params"] = {"epsilon": epsilon, **(extra_params or {})}
    obj["diagnostics"] = res["diagnostics"]
    return obj


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def parse_model_spec(spec, position):
    """[RUN[@STEP]=]MODEL.onnx -> (run, step, path)."""
    left, sep, path = spec.partition("=")
    if not sep:
        path = spec
        run, step = os.path.splitext(os.path.basename(spec))[0], position
    else:
        run, at, step_s = left.partition("@")
        if not run:
            raise SystemExit(f"--model {spec!r}: empty run name")
        if at:
            try:
                step = int(step_s)
            except ValueError:
                raise SystemExit(f"--model {spec!r}: step {step_s!r} is not an integer")
        else:
            step = position
    return run, step, path


def load_data(paths):
    xs, ys, input_name = [], [], None
    for p in paths:
        t = safetensors_io.load(p)
        if "labels" not in t:
            raise SystemExit(f"{p}: no `labels` tensor (has {sorted(t)})")
        feats = [k for k in t if k != "labels"]
        if len(feats) != 1:
            raise SystemExit(f"{p}: expected one input tensor besides labels, found {feats}")
        input_name = input_name or feats[0]
        if feats[0] != input_name:
            raise SystemExit(f"{p}: input tensor {feats[0]!r} differs from {input_name!r} in an earlier file")
        xs.append(t[input_name])
        ys.append(t["labels"])
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64), input_name


def model_logits(path, x, input_name, logits_name, precision):
    model, inits = nc_reference.load_model(path)
    dtype = np.float32 if precision == "float32" else np.float64
    env, graph_input = nc_reference.forward(model, inits, x, dtype)
    if graph_input != input_name:
        raise SystemExit(f"{path}: data tensor {input_name!r} does not match the model input {graph_input!r}")
    if logits_name not in env:
        raise SystemExit(f"{path}: no tensor {logits_name!r}; tensors: {sorted(env)}")
    return env[logits_name].astype(np.float64)


def run_windows(names, window=None):
    """Scope run: {run: candidate indices} -- per run (in order of first appearance) its checkpoints in canonical
    order, the last `window` of them when window is given (non-finite ones included; multiplicity() leaves
    them out and counts them)."""
    groups = {}
    for j, (run, _) in enumerate(names):
        groups.setdefault(run, []).append(j)
    return {run: (idx[-window:] if window is not None else idx) for run, idx in groups.items()}


def report(label, res, epsilon, file=sys.stderr):
    met = res["metrics"]
    print(f"[{label}] losses: " + ", ".join(f"{k} {v:.6f}" if v is not None else f"{k} non-finite"
                                           for k, v in res["losses"].items()), file=file)
    if res["baseline"] is None:
        print(f"[{label}] no finite candidate", file=file)
        return
    mem = [f"{m['run']}@{m['step']}" for m in res["members"]]
    print(f"[{label}] baseline {mem[res['baseline']]} L_b {met['baseline_loss']:.6f}; S = {mem}", file=file)
    dg = res["diagnostics"]
    print(f"[{label}] margins: runner-up loss - L_b = {dg['baseline_runner_up_loss_gap']}, smallest |L_m - (L_b + eps)|"
          f" = {dg['epsilon_boundary_distance']:.3g}, smallest relative top-2 probability gap in S = "
          f"{dg['min_relative_top2_probability_gap']:.3g} ({dg['samples_top2_gap_below_1e-5']} samples below 1e-5)",
          file=file)
    ci = dg["capacity_iterations"]
    if ci:
        print(f"[{label}] capacity Newton iterations per sample: median {ci['median']:g}, p90 {ci['p90']:g}, "
              f"max {ci['max']}, mean {ci['mean']:.2f}", file=file)
    print(f"[{label}] " + ", ".join(f"{k} {met[k]}" for k in METRIC_ORDER), file=file)


def run_reference(args):
    specs = [parse_model_spec(s, i) for i, s in enumerate(args.model)]
    keys = [f"{r}@{s}" for r, s, _ in specs]
    if len(set(keys)) != len(keys):
        raise SystemExit(f"(run, step) must be unique, got {keys}")
    data = [p for group in args.data for p in group]
    x, y, input_name = load_data(data)
    logits = [model_logits(p, x, input_name, args.logits, args.forward_precision) for _, _, p in specs]
    names = [(r, s) for r, s, _ in specs]
    source = {
        "models": [{"run": r, "step": s, "file": os.path.basename(p)} for r, s, p in specs],
        "data": [os.path.basename(p) for p in data],
        "logits": args.logits,
        "forward_precision": args.forward_precision,
        "capacity_method": f"log-barrier interior point, certified gap <= {args.capacity_gap:g} nats, lower bound",
        "generator": "loadtests/reference/multiplicity_reference.py (numpy float64, PROBES.md section 3)",
    }
    if args.scope == "experiment":
        if args.window is not None:
            raise SystemExit("--window applies only to --scope run")
        res = multiplicity(logits, y, names, args.epsilon, args.capacity_gap)
        report("experiment", res, args.epsilon)
        out = finish(res, args.epsilon)
        out["source"] = source
        return out
    out = {"runs": {}}
    extra = {"scope": "run", "window": args.window}
    for run, idx in run_windows(names, args.window).items():
        res = multiplicity([logits[j] for j in idx], y, [names[j] for j in idx], args.epsilon, args.capacity_gap)
        report(f"run {run}", res, args.epsilon)
        out["runs"][run] = finish(res, args.epsilon, extra)
    out["params"] = {"epsilon": args.epsilon, **extra}
    out["source"] = source
    return out


# --------------------------------------------------------------------------------------------------
# Self-test on the PROBES.md §3.5 hand cases and the §3.4 edge cases
# --------------------------------------------------------------------------------------------------

def _line(case, key, got, want, tol):
    if want is None:
        ok = got is None
    elif got is None or isinstance(got, str):
        ok = False
    elif isinstance(want, (list, tuple)):
        ok = list(got) == list(want)
    else:
        ok = abs(got - want) <= tol * max(1.0, abs(want))
    print(f"  {case:9s} {key:26s} got {got!r:24} want {want!r:24} {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


def self_test():
    bad = 0
    d7 = 5e-8     # "to 7 digits": |got - want| <= half a unit in the 7th decimal
    # ---- PM-1 ----
    pa = [[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.2, 0.7, 0.1]]
    pb = [[0.7, 0.2, 0.1], [0.3, 0.2, 0.5], [0.2, 0.65, 0.15]]
    pc = [[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.2, 0.65, 0.15]]
    pd = [[0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.3, 0.3, 0.4]]
    y = np.array([0, 0, 1])
    lg = [np.log(np.array(p)) for p in (pa, pb, pc, pd)]
    names = [("A", 0), ("B", 1), ("C", 2), ("D", 3)]
    res = multiplicity(lg, y, names, per_sample=True)
    met = res["metrics"]
    for key, want in [("A@0", 0.6391076), ("B@1", 0.6638102), ("C@2", 0.6638102), ("D@3", 1.7053319)]:
        bad += _line("PM-1", f"L {key}", res["losses"][key], want, d7)
    bad += _line("PM-1", "members", [m["run"] for m in res["members"]], ["A", "B", "C"], 0)
    bad += _line("PM-1", "baseline", res["baseline"], 0, 0)
    h = lambda *p: -sum(v * math.log(v) for v in p)  # noqa: E731
    rc1 = math.exp(h(0.3, 0.35, 0.35) - h(0.3, 0.5, 0.2))
    for key, want in [("rashomon_set_size", 3), ("ambiguity", 1 / 3), ("discrepancy", 1 / 3),
                      ("disagreement_mean", 0.2222222), ("vpr_mean", 0.1166667),
                      ("rashomon_capacity_mean", 1.0238854), ("baseline_loss", 0.6391076),
                      ("models_seen", 4), ("models_nonfinite", 0), ("samples", 3)]:
        bad += _line("PM-1", key, met[key], want, d7)
    for i, want in enumerate([1.0, 1.0686694, 1.0029867]):
        bad += _line("PM-1", f"RC sample {i}", float(res["rc"][i]), want, d7)
    bad += _line("PM-1", "RC sample 1 closed form", float(res["rc"][1]), rc1, 1e-9)
    # Sample 2 by an independent 1-D search (golden section on the weight of row A's distinct row).
    qa, qb = np.array(pa[2]), np.array(pb[2])

    def mi(w):
        q = w * qa + (1 - w) * qb
        return w * (qa * np.log(qa / q)).sum() + (1 - w) * (qb * np.log(qb / q)).sum()
    lo, hi = 0.0, 1.0
    gr = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        a, c = hi - gr * (hi - lo), lo + gr * (hi - lo)
        lo, hi = (lo, c) if mi(a) > mi(c) else (a, hi)
    bad += _line("PM-1", "RC sample 2 1-D search", float(res["rc"][2]), math.exp(mi((lo + hi) / 2)), 1e-8)
    # ---- PM-2 ----
    hb = lambda *p: -sum(v * math.log2(v) for v in p if v > 0)  # noqa: E731
    pm2 = [
        ("2 one-hot", [[1, 0], [0, 1]], 2.0),
        ("3 one-hot", [[1, 0, 0], [0, 1, 0], [0, 0, 1]], 3.0),
        ("Z-channel", [[1, 0], [0.5, 0.5]], 1.25),
        ("duplicates", [[1, 0], [1, 0], [1, 0], [0, 1]], 2.0),
        ("BSC 0.1", [[0.9, 0.1], [0.1, 0.9]], 1.4449348),
        ("cyclic", [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], 1.5834095),
        ("middle 0", [[1, 0], [0.5, 0.5], [0, 1]], 2.0),
    ]
    for label, rows, want in pm2:
        c, it, ok, cert, r = channel_capacity(np.array(rows, dtype=np.float64))
        bad += _line("PM-2", f"{label} RC ({it} it)", math.exp(c), want, d7)
        bad += _line("PM-2", f"{label} gap<=1e-8", float(ok and cert <= 1e-8), 1.0, 0)
    bad += _line("PM-2", "BSC closed form", math.exp(channel_capacity(np.array(pm2[4][1], float))[0]),
                 2 ** (1 - hb(0.1, 0.9)), 1e-8)
    bad += _line("PM-2", "cyclic closed form", math.exp(channel_capacity(np.array(pm2[5][1], float))[0]),
                 3 * 2 ** (-hb(0.8, 0.1, 0.1)), 1e-8)
    r_mid = channel_capacity(np.array(pm2[6][1], float))[4]
    bad += _line("PM-2", "middle weight < 1e-6", float(r_mid[1] < 1e-6), 1.0, 0)
    # Nearly agreeing members (the hard case for plain Blahut-Arimoto): certificate still met.
    rng = np.random.default_rng(0)
    base = rng.dirichlet(np.ones(5))
    rows = base + 1e-4 * rng.standard_normal((4, 5))
    rows /= rows.sum(axis=1, keepdims=True)
    c, it, ok, cert, _ = channel_capacity(rows)
    bad += _line("near", f"certified ({it} it, C={c:.3g})", float(ok and 0 <= cert <= 1e-8), 1.0, 0)
    # ---- identical models ----
    z = rng.standard_normal((50, 4))
    yy = rng.integers(0, 4, 50)
    res = multiplicity([z, z.copy(), z.copy()], yy, [("a", 1), ("b", 1), ("c", 1)])
    met = res["metrics"]
    for key, want in [("rashomon_set_size", 3), ("ambiguity", 0.0), ("discrepancy", 0.0), ("vpr_mean", 0.0),
                      ("disagreement_mean", 0.0), ("rashomon_capacity_mean", 1.0)]:
        bad += _line("identical", key, met[key], want, 1e-12)
    bad += _line("identical", "baseline (tie -> earliest)", res["baseline"], 0, 0)
    # ---- |S| = 1 ----
    z2 = z + 3.0 * rng.standard_normal((50, 4))          # much worse than z
    res = multiplicity([z2, z], yy, [("bad", 0), ("good", 0)])
    met = res["metrics"]
    bad += _line("|S|=1", "members", [m["run"] for m in res["members"]], ["good"], 0)
    for key, want in [("rashomon_set_size", 1), ("ambiguity", 0.0), ("discrepancy", 0.0), ("vpr_mean", 0.0),
                      ("disagreement_mean", 0.0), ("rashomon_capacity_mean", 1.0), ("models_seen", 2)]:
        bad += _line("|S|=1", key, met[key], want, 0)
    bad += _line("|S|=1", "note", float("single member" in "; ".join(res["notes"])), 1.0, 0)
    # ---- non-finite model: perfect except one NaN; never baseline, counted ----
    zn = np.zeros((50, 4))
    zn[np.arange(50), yy] = 50.0                         # would have loss ~ 0
    zn[7, 2] = np.nan
    res = multiplicity([zn, z, 1.01 * z], yy, [("nan", 0), ("x", 0), ("y", 0)])
    met = res["metrics"]
    bad += _line("nonfinite", "models_nonfinite", met["models_nonfinite"], 1, 0)
    bad += _line("nonfinite", "models_seen", met["models_seen"], 3, 0)
    bad += _line("nonfinite", "members", [m["run"] for m in res["members"]], ["x", "y"], 0)
    bad += _line("nonfinite", "loss of nan model", res["losses"]["nan@0"], None, 0)
    bad += _line("nonfinite", "samples", met["samples"], 50, 0)
    res = multiplicity([zn], yy, [("nan", 0)])
    bad += _line("nonfinite", "all non-finite -> null", res["metrics"]["ambiguity"], None, 0)
    # ---- binary logits: one column z == two columns (0, z) ----
    zb = rng.standard_normal((40, 1))
    yb = rng.integers(0, 2, 40)
    r1 = multiplicity([zb, 1.1 * zb], yb)
    r2 = multiplicity([np.hstack([np.zeros_like(zb), zb]), np.hstack([np.zeros_like(zb), 1.1 * zb])], yb)
    for key in ["ambiguity", "vpr_mean", "rashomon_capacity_mean", "baseline_loss"]:
        bad += _line("binary", key, r1["metrics"][key], r2["metrics"][key], 1e-14)
    # ---- window: the last W of one run ----
    zs = [z, z2, z, 1.01 * z, zn, z2]
    nm = [("r", 0), ("s", 0), ("r", 1), ("r", 2), ("r", 3), ("s", 1)]
    win = run_windows(nm, 3)
    bad += _line("window", "W=3 groups", sorted(win.items()), [("r", [2, 3, 4]), ("s", [1, 5])], 0)
    bad += _line("window", "no window", run_windows(nm)["r"], [0, 2, 3, 4], 0)
    res = multiplicity([zs[j] for j in win["r"]], yy, [nm[j] for j in win["r"]])
    bad += _line("window", "members (W=3 of r)", [m["step"] for m in res["members"]], [1, 2], 0)
    bad += _line("window", "models_seen", res["metrics"]["models_seen"], 3, 0)
    bad += _line("window", "models_nonfinite", res["metrics"]["models_nonfinite"], 1, 0)
    print(f"self-test: {'PASS' if bad == 0 else f'{bad} FAILED'}")
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[], metavar="[RUN[@STEP]=]MODEL.onnx",
                    help="one checkpoint; repeat, in canonical order")
    ap.add_argument("--data", action="append", nargs="+", default=[], help="safetensors files in reference order")
    ap.add_argument("--logits", default="logits", help="logits tensor name (default %(default)s)")
    ap.add_argument("--epsilon", type=float, default=EPSILON, help="absolute, nats (default %(default)s)")
    ap.add_argument("--scope", choices=["experiment", "run"], default="experiment")
    ap.add_argument("--window", type=int, default=None, help="scope run: the last W checkpoints of each run")
    ap.add_argument("--capacity-gap", type=float, default=CAPACITY_GAP,
                    help="certified upper - lower for the capacity, nats (default %(default)g, PROBES.md §0)")
    ap.add_argument("--forward-precision", choices=["float32", "float64"], default="float32")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--self-test", action="store_true", help="run the PROBES.md §3.5 hand cases and exit")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    if not args.model or not args.data:
        ap.error("at least one --model and one --data are required (or --self-test)")
    if args.window is not None and args.window < 1:
        ap.error("--window must be >= 1")
    out = run_reference(args)
    text = json.dumps(out, indent=2) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
