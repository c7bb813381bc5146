#!/usr/bin/python3
"""Independent float64 reference for the `feature_complexity` probe (PROBES.md §2).

  /usr/bin/python3 complexity_reference.py MODEL.onnx DATA1.safetensors [DATA2 ...] --layers h1,h2 \
      --logits logits --classifier-weight classifier.weight [--beta 0.1 --tau 0.01 --k 8 --alpha 1e-3] \
      --out expected-complexity.json
  /usr/bin/python3 complexity_reference.py --self-test

Features: nc_reference.py's numpy evaluation of the ONNX graph (float32 like ONNX Runtime, or
--forward-precision float64), widened to float64; a layer tensor of rank > 2 is reduced as PROBES.md §0 says
(--reduction gap|flatten). The classifier-feeding layer is the input tensor of the Gemm/MatMul whose weight
initializer is --classifier-weight; it must be one of --layers.

Metrics, computed directly rather than in the service's streaming forms:
  * IFM (§2.1), weights only: the pattern producer (Gemm, or MatMul[+Add]) -> [BatchNormalization] ->
    Relu/LeakyRelu -> layer -> consumer (Gemm/MatMul) is read off the graph, BatchNorm folded; unit vectors
    f_u = [W_in[u,:], b_in[u], W_out[:,u]]; every step recomputes all pairwise D from direct float64
    differences of the centroids, merges the first minimal pair in row-major order of positions into g*'s
    position and stops when dmin > beta * dmax. O(n0^3 * D), fine for small layers.
  * data-aware IFM (§2.2): the same merge sequence without the beta test, X = the producer's input tensor on
    the reference set (finite rows); Y and every Y_t are evaluated directly from the (compact) layer's
    weights (incoming rows and biases summed over a group, outgoing columns averaged), not incrementally.
  * effective_rank (§2.3): numpy.linalg.svd of the centred N x d feature matrix.
  * V-information (§2.4): directions from numpy.linalg.eigh of the classifier-feeding layer's biased
    covariance; per layer and direction a ridge fitted with numpy.linalg.solve on the even-index samples'
    biased covariances, R^2 scored on the odd-index samples from the residuals themselves.

Output: {"layers": {layer: {key: number|null}}, "notes": {layer: str} (only layers with a note),
"params": {beta, tau, k, alpha}, "source": {...}}. Counts are JSON integers. On stderr the script prints,
per layer, how far the IFM stop and the data-aware cut are from flipping (dmin/dmax against beta at the stop
step, change_t against tau), so you can tell whether another implementation's rounding could move a count.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nc_reference  # noqa: E402  (ONNX forward pass, classifier weight lookup, §0 reduction)
import safetensors_io  # noqa: E402

# PROBES.md §0 defaults and fixed tolerances
BETA, TAU, K_DIRS, ALPHA = 0.1, 0.01, 8, 1e-3
MAX_WIDTH = 4096            # effective_rank, vinfo_*: wider layers -> null
IFM_DATA_MAX_UNITS = 1024   # ifm_data_*: wider layers -> null
COV_EIG_CUT = 1e-12         # covariance eigenvalue cut (relative to lambda_max); s_j^2 <= 1e-12 s_max^2

KEY_ORDER = ["ifm_units", "ifm_ratio", "ifm_data_units", "ifm_data_ratio", "effective_rank", "vinfo_r2",
             "width", "samples", "nonfinite", "vinfo_complexity", "vinfo_directions"]


# --------------------------------------------------------------------------------------------------
# §2.1 IFM, §2.2 data-aware IFM
# --------------------------------------------------------------------------------------------------

def unit_vectors(w_in, b_in, w_out):
    """f_u = [W_in[u,:], b_in[u], W_out[:,u]] as rows (n0 x (d_in + 1 + d_out)), float64."""
    return np.concatenate([np.asarray(w_in, np.float64), np.asarray(b_in, np.float64)[:, None],
                           np.asarray(w_out, np.float64).T], axis=1)


def ifm_merge(w_in, b_in, w_out, beta=None):
    """The §2.1 loop. beta=None runs the merge sequence to one unit (no stop test), as §2.2 needs.

    Returns (groups, steps): groups = lists of original unit indices in position order after the last merge;
    steps = one dict per merge performed (and, when the beta test stopped the loop, a final one with
    "stopped": True): positions g, h, the members merged, dmin, dmax, and the groups after the merge."""
    f = unit_vectors(w_in, b_in, w_out)
    cent = [f[u].copy() for u in range(f.shape[0])]
    count = [1] * f.shape[0]
    groups = [[u] for u in range(f.shape[0])]
    steps = []
    while len(cent) >= 2:
        m = len(cent)
        fm = np.array(cent)
        d = np.full((m, m), np.inf)
        for i in range(m - 1):                    # D(g, h) for g before h, direct differences
            diff = fm[i + 1:] - fm[i]
            d[i, i + 1:] = (diff * diff).sum(axis=1)
        iu = np.triu_indices(m, 1)                # pairs in row-major order of positions
        vals = d[iu]
        j = int(np.argmin(vals))                  # first minimal pair on ties
        g, h = int(iu[0][j]), int(iu[1][j])
        dmin, dmax = float(vals[j]), float(vals.max())
        if beta is not None and dmin > beta * dmax:
            steps.append({"g": g, "h": h, "dmin": dmin, "dmax": dmax, "stopped": True})
            break
        merged = (count[g] * cent[g] + count[h] * cent[h]) / (count[g] + count[h])
        step = {"g": g, "h": h, "members_g": list(groups[g]), "members_h": list(groups[h]), "dmin": dmin,
                "dmax": dmax, "stopped": False}
        cent[g], count[g], groups[g] = merged, count[g] + count[h], sorted(groups[g] + groups[h])
        del cent[h], count[h], groups[h]
        step["groups"] = [list(x) for x in groups]
        steps.append(step)
    return groups, steps


def ifm_units(w_in, b_in, w_out, beta):
    groups, _ = ifm_merge(w_in, b_in, w_out, beta)
    return len(groups)


def compact_layer(w_in, b_in, w_out, groups):
    """The compact layer the groups define: incoming rows and biases summed, outgoing columns averaged."""
    w_in, b_in, w_out = (np.asarray(a, np.float64) for a in (w_in, b_in, w_out))
    wc = np.stack([w_in[g].sum(axis=0) for g in groups])
    bc = np.array([b_in[g].sum() for g in groups])
    oc = np.stack([w_out[:, g].mean(axis=1) for g in groups], axis=1)
    return wc, bc, oc


def activation(kind, slope):
    if kind == "Relu":
        return lambda a: np.maximum(a, 0.0)
    if kind == "LeakyRelu":
        return lambda a: np.where(a >= 0.0, a, slope * a)
    raise ValueError(f"unsupported activation {kind}")


def layer_output(x, w_in, b_in, w_out, act):
    """Y = sigma(X W_in^T + b_in) W_out^T (the next layer's bias left out), float64."""
    return act(x @ w_in.T + b_in) @ w_out.T


def ifm_data(x, w_in, b_in, w_out, tau, act):
    """§2.2. Returns (units, changes [change_1..change_{n0-1}], y_norm); units is None when ||Y|| = 0."""
    x = np.asarray(x, np.float64)
    n0 = np.asarray(w_in).shape[0]
    _, steps = ifm_merge(w_in, b_in, w_out, beta=None)
    y = layer_output(x, np.asarray(w_in, np.float64), np.asarray(b_in, np.float64), np.asarray(w_out, np.float64),
                     act)
    y_norm = float(np.linalg.norm(y))
    if y_norm == 0.0:
        return None, [], y_norm
    changes = []
    for step in steps:
        wc, bc, oc = compact_layer(w_in, b_in, w_out, step["groups"])
        changes.append(float(np.linalg.norm(layer_output(x, wc, bc, oc, act) - y)) / y_norm)
    t_star = 0
    while t_star < len(changes) and changes[t_star] <= tau:
        t_star += 1
    return n0 - t_star, changes, y_norm


# --------------------------------------------------------------------------------------------------
# The IFM pattern in the ONNX graph
# --------------------------------------------------------------------------------------------------

class Unsupported(Exception):
    pass


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _init(inits, name, what):
    if name not in inits:
        raise Unsupported(f"{what} {name!r} is not an initializer")
    return inits[name].astype(np.float64)


def ifm_pattern(model, inits, layer):
    """producer -> [BatchNormalization] -> Relu/LeakyRelu -> layer -> consumer, from the graph.

    Returns dict(w_in [n0, d_in], b_in [n0], w_out [d_out, n0], x_name, act, slope, desc) or raises
    Unsupported with the reason."""
    nodes = list(model.graph.node)
    producer_of = {o: n for n in nodes for o in n.output if o}
    users = {}
    for n in nodes:
        for i in n.input:
            if i:
                users.setdefault(i, []).append(n)
    act = producer_of.get(layer)
    if act is None or act.op_type not in ("Relu", "LeakyRelu"):
        raise Unsupported(f"{layer!r} is not the output of Relu/LeakyRelu")
    slope = float(_attrs(act).get("alpha", 0.01)) if act.op_type == "LeakyRelu" else 0.0
    desc = [act.op_type]
    t = act.input[0]
    p = producer_of.get(t)
    bn = None
    if p is not None and p.op_type == "BatchNormalization":
        bn = p
        desc.insert(0, "BatchNormalization")
        t = p.input[0]
        p = producer_of.get(t)
    if p is None:
        raise Unsupported("no producer node")
    if p.op_type == "Gemm":
        a = _attrs(p)
        if a.get("transA", 0):
            raise Unsupported("producer Gemm with transA=1")
        b = _init(inits, p.input[1], "producer weight")
        if b.ndim != 2:
            raise Unsupported("producer weight is not 2-D")
        w_in = float(a.get("alpha", 1.0)) * (b if a.get("transB", 0) else b.T)
        n0 = w_in.shape[0]
        if len(p.input) > 2 and p.input[2]:
            c = _init(inits, p.input[2], "producer bias")
            if c.size not in (1, n0) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
                raise Unsupported(f"producer bias shape {list(c.shape)}")
            b_in = float(a.get("beta", 1.0)) * np.broadcast_to(c.reshape(-1), (n0,)).astype(np.float64)
        else:
            b_in = np.zeros(n0)
        x_name = p.input[0]
        desc.insert(0, f"Gemm(transB={a.get('transB', 0)}, alpha={a.get('alpha', 1.0)}, beta={a.get('beta', 1.0)})")
    elif p.op_type in ("Add", "MatMul"):
        if p.op_type == "Add":
            mm = [producer_of.get(i) for i in p.input]
            k = [j for j in (0, 1) if mm[j] is not None and mm[j].op_type == "MatMul"]
            if len(k) != 1:
                raise Unsupported("Add producer is not MatMul + bias")
            bias = _init(inits, p.input[1 - k[0]], "producer bias")
            mm = mm[k[0]]
            desc.insert(0, "MatMul+Add")
        else:
            mm, bias = p, None
            desc.insert(0, "MatMul")
        w = _init(inits, mm.input[1], "producer weight")
        if w.ndim != 2:
            raise Unsupported("producer weight is not 2-D")
        w_in = w.T
        n0 = w_in.shape[0]
        if bias is None:
            b_in = np.zeros(n0)
        else:
            if bias.size not in (1, n0) or bias.ndim > 2 or (bias.ndim == 2 and bias.shape[0] != 1):
                raise Unsupported(f"producer bias shape {list(bias.shape)}")
            b_in = np.broadcast_to(bias.reshape(-1), (n0,)).astype(np.float64)
        x_name = mm.input[0]
    else:
        raise Unsupported(f"producer {p.op_type}")
    if bn is not None:
        eps = float(_attrs(bn).get("epsilon", 1e-5))
        gamma, beta_bn, mean, var = (_init(inits, bn.input[i], "BatchNormalization parameter") for i in (1, 2, 3, 4))
        s = gamma / np.sqrt(var + eps)
        w_in = s[:, None] * w_in
        b_in = s * (b_in - mean) + beta_bn
    cons = users.get(layer, [])
    if len(cons) != 1:
        raise Unsupported(f"{len(cons)} consumer nodes")
    c = cons[0]
    if c.input[0] != layer:
        raise Unsupported("the layer is not the consumer's data input")
    if c.op_type == "Gemm":
        a = _attrs(c)
        if a.get("transA", 0):
            raise Unsupported("consumer Gemm with transA=1")
        b = _init(inits, c.input[1], "consumer weight")
        w_out = float(a.get("alpha", 1.0)) * (b if a.get("transB", 0) else b.T)
        desc.append(f"Gemm(transB={a.get('transB', 0)}, alpha={a.get('alpha', 1.0)})")
    elif c.op_type == "MatMul":
        w_out = _init(inits, c.input[1], "consumer weight").T
        desc.append("MatMul")
    else:
        raise Unsupported(f"consumer {c.op_type}")
    if w_out.ndim != 2 or w_out.shape[1] != n0:
        raise Unsupported(f"consumer weight {list(w_out.shape)} does not fit {n0} units")
    return {"w_in": w_in, "b_in": b_in, "w_out": w_out, "x_name": x_name, "act": act.op_type, "slope": slope,
            "desc": " -> ".join(desc[:-1]) + f" -> {layer} -> " + desc[-1]}


# --------------------------------------------------------------------------------------------------
# §2.3 effective rank, §2.4 V-information
# --------------------------------------------------------------------------------------------------

def effective_rank(h):
    """h: finite N x d float64. Returns (value or None, note or None)."""
    n, d = h.shape
    if d > MAX_WIDTH:
        return None, f"effective_rank: width {d} > max_width {MAX_WIDTH}"
    if n < 2:
        return None, "effective_rank: fewer than 2 samples"
    s = np.linalg.svd(h - h.mean(axis=0), compute_uv=False)
    smax = s.max()
    if not smax > 0:
        return None, "effective_rank: all singular values are 0"
    s = s[s * s > COV_EIG_CUT * smax * smax]
    p = s / s.sum()
    return float(math.exp(-(p * np.log(p)).sum())), None


def vinfo_directions(h_cls, k):
    """Top k' eigenvectors of the biased covariance of the classifier-feeding features (finite rows).
    Returns (mu, vecs [d, k'], lams [k'])."""
    mu = h_cls.mean(axis=0)
    hc = h_cls - mu
    cov = hc.T @ hc / h_cls.shape[0]
    lam, vec = np.linalg.eigh(cov)
    order = np.argsort(-lam, kind="stable")
    lam, vec = lam[order], vec[:, order]
    if not lam.size or not lam[0] > 0:
        return mu, vec[:, :0], lam[:0]
    kk = min(k, int((lam > COV_EIG_CUT * lam[0]).sum()))
    return mu, vec[:, :kk], lam[:kk]


def ridge_r2(xe, ze, xo, zo, alpha):
    """§2.4 step 3 for one layer and one direction, directly: fit on (xe, ze), R^2 on (xo, zo)."""
    xbar, zbar = xe.mean(axis=0), ze.mean()
    xc = xe - xbar
    cxx = xc.T @ xc / xe.shape[0]
    cxz = xc.T @ (ze - zbar) / xe.shape[0]
    tr = float(np.trace(cxx))
    if tr == 0.0:
        theta = np.zeros(xe.shape[1])
    else:
        lam = alpha * tr / xe.shape[1]
        theta = np.linalg.solve(cxx + lam * np.eye(xe.shape[1]), cxz)
    zhat = zbar + (xo - xbar) @ theta
    sse = float(((zo - zhat) ** 2).sum())
    sst = float(((zo - zo.mean()) ** 2).sum())
    return 1.0 - sse / sst


def vinfo(features, ok, cls_layer, k, alpha):
    """§2.4 on {layer: N x d float64} (all N rows, reference-set order) with per-layer finite masks `ok`.

    Returns ({layer: vinfo_r2 or None}, complexity, directions, per_direction_complexity, {layer: note})."""
    notes = {}
    r2 = {layer: None for layer in features}
    d_cls = features[cls_layer].shape[1]
    if d_cls > MAX_WIDTH:
        for layer in features:
            notes[layer] = f"vinfo: classifier-feeding layer width {d_cls} > max_width {MAX_WIDTH}"
        return r2, None, None, None, notes
    mu, vecs, lams = vinfo_directions(features[cls_layer][ok[cls_layer]], k)
    usable = np.logical_and.reduce([ok[layer] for layer in features])
    idx = np.arange(usable.size)
    even, odd = usable & (idx % 2 == 0), usable & (idx % 2 == 1)
    reason = None
    if even.sum() < 2 or odd.sum() < 2:
        reason = "vinfo: fewer than 2 samples in a half"
    else:
        z = (features[cls_layer] - mu) @ vecs / np.sqrt(lams) if lams.size else np.zeros((usable.size, 0))
        zo = z[odd]
        keep = [j for j in range(z.shape[1]) if float(((zo[:, j] - zo[:, j].mean()) ** 2).sum()) != 0.0]
        if not keep:
            reason = "vinfo: no usable direction"
    if reason:
        for layer in features:
            notes[layer] = reason
        return r2, None, None, None, notes
    per_layer = {}
    for layer, x in features.items():
        if x.shape[1] > MAX_WIDTH:
            notes[layer] = f"vinfo: width {x.shape[1]} > max_width {MAX_WIDTH}"
            continue
        per_layer[layer] = np.array([max(0.0, ridge_r2(x[even], z[even, j], x[odd], z[odd, j], alpha)) for j in keep])
        r2[layer] = float(per_layer[layer].mean())
    rows = np.stack(list(per_layer.values()))            # layers x directions
    per_dir = 1.0 - rows.mean(axis=0)
    return r2, float(per_dir.mean()), len(keep), per_dir, notes


# --------------------------------------------------------------------------------------------------
# The whole probe on a model and reference set
# --------------------------------------------------------------------------------------------------

def feature_complexity(model, inits, env, layers, cls_layer, logits, beta, tau, k, alpha, reduction="gap",
                       log=sys.stderr):
    out = {"layers": {}, "notes": {}}
    notes = {layer: [] for layer in layers}
    features, ok = {}, {}
    for layer in layers:
        h, _ = nc_reference.reduce_features(env[layer], reduction)
        features[layer] = h
        m = np.isfinite(h).all(axis=1)
        if layer == cls_layer:
            m &= np.isfinite(logits).all(axis=1)
        ok[layer] = m
    for layer in layers:
        h = features[layer]
        n0 = h.shape[1]
        m = {key: None for key in KEY_ORDER if key not in ("vinfo_complexity", "vinfo_directions")}
        if layer == cls_layer:
            m["vinfo_complexity"] = m["vinfo_directions"] = None
        m["width"] = n0
        m["samples"] = int(ok[layer].sum())
        m["nonfinite"] = int((~ok[layer]).sum())
        # IFM
        try:
            pat = ifm_pattern(model, inits, layer)
        except Unsupported as e:
            pat = None
            notes[layer].append("ifm: unsupported pattern")
            print(f"{layer}: ifm unsupported pattern ({e})", file=log)
        if pat is not None and not all(np.isfinite(pat[a]).all() for a in ("w_in", "b_in", "w_out")):
            notes[layer].append("ifm: non-finite weights")
            pat = None
        if pat is not None:
            n0 = pat["w_in"].shape[0]
            print(f"{layer}: {pat['desc']}; W_in {list(pat['w_in'].shape)}, W_out {list(pat['w_out'].shape)}, "
                  f"X = {pat['x_name']!r}", file=log)
            groups, steps = ifm_merge(pat["w_in"], pat["b_in"], pat["w_out"], beta)
            m["ifm_units"] = len(groups)
            m["ifm_ratio"] = len(groups) / n0
            merged = [s for s in steps if not s["stopped"]]
            ratios = [s["dmin"] / s["dmax"] if s["dmax"] > 0 else float("nan") for s in steps]
            last_merge = max((r for s, r in zip(steps, ratios) if not s["stopped"]), default=0.0)
            stop = ratios[-1] if steps and steps[-1]["stopped"] else float("nan")
            print(f"{layer}: ifm {len(merged)} merge(s) at beta={beta}: "
                  + ", ".join(f"{s['members_g']}+{s['members_h']} (dmin/dmax {r:.3g})"
                              for s, r in zip(merged, ratios)), file=log)
            print(f"{layer}: ifm margin: largest merged dmin/dmax {last_merge:.6g}, stop step dmin/dmax {stop:.6g} "
                  f"(beta {beta})", file=log)
            if n0 > IFM_DATA_MAX_UNITS:
                notes[layer].append(f"ifm_data: {n0} units > ifm_data_max_units {IFM_DATA_MAX_UNITS}")
            else:
                x, _ = nc_reference.reduce_features(env[pat["x_name"]], "flatten")
                x = x[np.isfinite(x).all(axis=1)]
                units, changes, y_norm = ifm_data(x, pat["w_in"], pat["b_in"], pat["w_out"], tau,
                                                  activation(pat["act"], pat["slope"]))
                if units is None:
                    notes[layer].append("ifm_data: ||Y|| = 0")
                else:
                    m["ifm_data_units"] = units
                    m["ifm_data_ratio"] = units / n0
                    t_star = n0 - units
                    shown = changes[:t_star + 1]
                    print(f"{layer}: ifm_data t*={t_star} (X {list(x.shape)}): change_t = "
                          + ", ".join(f"{c:.3g}" for c in shown), file=log)
                    if t_star < len(changes):
                        print(f"{layer}: ifm_data margin: largest change within t* {max(changes[:t_star], default=0):.6g}, "
                              f"change_{t_star + 1} = {changes[t_star]:.6g} (tau {tau})", file=log)
        # effective rank
        er, note = effective_rank(h[ok[layer]])
        m["effective_rank"] = er
        if note:
            notes[layer].append(note)
        out["layers"][layer] = m
    r2, complexity, ndir, per_dir, vnotes = vinfo(features, ok, cls_layer, k, alpha)
    for layer in layers:
        out["layers"][layer]["vinfo_r2"] = r2[layer]
        if layer in vnotes:
            notes[layer].append(vnotes[layer])
    out["layers"][cls_layer]["vinfo_complexity"] = complexity
    out["layers"][cls_layer]["vinfo_directions"] = ndir
    if per_dir is not None:
        print(f"vinfo: {ndir} direction(s), per-direction complexity "
              + ", ".join(f"{c:.6g}" for c in per_dir), file=log)
    for layer in layers:
        out["layers"][layer] = {key: out["layers"][layer][key] for key in KEY_ORDER if key in out["layers"][layer]}
        if notes[layer]:
            out["notes"][layer] = "; ".join(notes[layer])
    if not out["notes"]:
        del out["notes"]
    return out


def run_reference(args):
    model, inits = nc_reference.load_model(args.model)
    xs, ys = [], []
    input_name = None
    for p in args.data:
        t = safetensors_io.load(p)
        feats = [name for name in t if name != "labels"]
        if len(feats) != 1:
            raise SystemExit(f"{p}: expected one input tensor besides labels, found {feats}")
        input_name = input_name or feats[0]
        if feats[0] != input_name:
            raise SystemExit(f"{p}: input tensor {feats[0]!r} differs from {input_name!r} in an earlier file")
        xs.append(t[input_name])
        if "labels" in t:
            ys.append(t["labels"])
    x = np.concatenate(xs)
    dtype = np.float32 if args.forward_precision == "float32" else np.float64
    env, graph_input = nc_reference.forward(model, inits, x, dtype)
    if graph_input != input_name:
        raise SystemExit(f"data tensor {input_name!r} does not match the model input {graph_input!r}")
    env = {name: np.asarray(v) for name, v in env.items()}
    layers = [s for s in args.layers.split(",") if s]
    for layer in layers:
        if layer not in env:
            raise SystemExit(f"layer tensor {layer!r} not in the graph; tensors: {sorted(env)}")
    _, cls_layer = nc_reference.classifier_weight(model, inits, args.classifier_weight, args.logits)
    if cls_layer not in layers:
        raise SystemExit(f"the classifier-feeding layer {cls_layer!r} is not among --layers {layers}")
    if args.logits not in env:
        raise SystemExit(f"logits tensor {args.logits!r} not in the graph")
    logits = env[args.logits].astype(np.float64)
    out = feature_complexity(model, inits, env, layers, cls_layer, logits, args.beta, args.tau, args.k, args.alpha,
                             reduction=args.reduction)
    out["params"] = {"beta": args.beta, "tau": args.tau, "k": args.k, "alpha": args.alpha}
    out["source"] = {
        "model": os.path.basename(args.model),
        "data": [os.path.basename(p) for p in args.data],
        "classifier_layer": cls_layer,
        "logits": args.logits,
        "classifier_weight": args.classifier_weight,
        "forward_precision": args.forward_precision,
        "generator": "loadtests/reference/complexity_reference.py (numpy float64, direct formulas, PROBES.md section 2)",
    }
    return out


# --------------------------------------------------------------------------------------------------
# Self-test on the PROBES.md §2.5 hand cases
# --------------------------------------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.bad = 0

    def __call__(self, case, what, got, want, digits=None):
        """Exact comparison for ints, lists and None; `digits` decimals (half a unit in the last place) for floats."""
        if digits is None:
            ok = got == want
        else:
            g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
            ok = g.shape == w.shape and bool((np.abs(g - w) <= 0.5 * 10.0 ** -digits + 1e-12).all())
        self.bad += not ok
        gs = np.array2string(np.asarray(got), precision=max(digits or 0, 7), separator=", ") \
            if isinstance(got, np.ndarray) else (f"{got:.{digits + 2}f}" if digits is not None and isinstance(got, float) else repr(got))
        print(f"  {case:8s} {what:34s} got {gs:40s} want {want!r:30} {'ok' if ok else 'FAIL'}")


def _pattern_models(two_consumers=False):
    """Tiny graphs x [N, 2] -> 5 ReLU units `h` -> 3 outputs in the supported layouts (see self_test)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(5)

    def build(nodes, arrays, name):
        inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()]
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model, {k: numpy_helper.to_array(i) for k, i in zip(arrays, inits)}

    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    bn = {"g": np.abs(r(5)) + 0.5, "bb": np.abs(r(5)) + 0.5, "m": 0.3 * r(5), "v": np.abs(r(5)) + 0.5}
    gemm_bn = build(
        [helper.make_node("Gemm", ["x", "B1", "C1"], ["p"], transB=0, alpha=0.5, beta=2.0),
         helper.make_node("BatchNormalization", ["p", "g", "bb", "m", "v"], ["q"], epsilon=1e-3),
         helper.make_node("Relu", ["q"], ["h"]),
         helper.make_node("MatMul", ["h", "W2"], ["out"])],
        {"B1": r(2, 5), "C1": r(5), **bn, "W2": r(5, 3)}, "gemm_bn")
    matmul_add = build(
        [helper.make_node("MatMul", ["x", "W1"], ["p"]),
         helper.make_node("Add", ["b1", "p"], ["q"]),
         helper.make_node("Relu", ["q"], ["h"]),
         helper.make_node("Gemm", ["h", "B2"], ["out"], transB=1, alpha=1.5)],
        {"W1": r(2, 5), "b1": r(1, 5), "B2": r(3, 5)}, "matmul_add")
    gemm_t = build(
        [helper.make_node("Gemm", ["x", "B1", "C1"], ["p"], transB=1),
         helper.make_node("Relu", ["p"], ["h"]),
         helper.make_node("Gemm", ["h", "B2"], ["out"], transB=0)],
        {"B1": r(5, 2), "C1": r(5), "B2": r(5, 3)}, "gemm_t")
    if two_consumers:
        m, inits = gemm_t
        m.graph.node.append(helper.make_node("Relu", ["h"], ["h_again"]))
        return m, inits
    return [("Gemm(transB=0, alpha, beta)+BN -> MatMul", *gemm_bn), ("MatMul+Add -> Gemm(transB=1, alpha)", *matmul_add),
            ("Gemm(transB=1) -> Gemm(transB=0)", *gemm_t)]


def self_test():
    c = Checker()
    x = np.array([[1, 2], [-1, 3], [0.5, -2], [2, 2]], dtype=np.float64)
    relu = activation("Relu", 0.0)

    # IFM-A
    w_in, b_in, w_out = np.array([[1, 0], [1, 0], [0, 1.0]]), np.zeros(3), np.array([[1, 1, 1.0]])
    groups, steps = ifm_merge(w_in, b_in, w_out, BETA)
    c("IFM-A", "unit vectors", unit_vectors(w_in, b_in, w_out).tolist(), [[1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1]])
    c("IFM-A", "D step 1 (dmin, dmax)", [steps[0]["dmin"], steps[0]["dmax"]], [0.0, 2.0], 12)
    c("IFM-A", "D step 2 (dmin = dmax, stop)", [steps[1]["dmin"], steps[1]["dmax"], steps[1]["stopped"]], [2.0, 2.0, True])
    c("IFM-A", "ifm_units", len(groups), 2)
    c("IFM-A", "ifm_ratio", len(groups) / 3, 0.6666667, 7)
    wc, bc, oc = compact_layer(w_in, b_in, w_out, groups)
    c("IFM-A", "compact W_in, b, W_out", [wc.tolist(), bc.tolist(), oc.tolist()], [[[2, 0], [0, 1]], [0, 0], [[1, 1]]])
    probe = np.random.default_rng(0).standard_normal((50, 2))
    c("IFM-A", "compact layer, same outputs", float(np.abs(layer_output(probe, wc, bc, oc, relu)
                                                          - layer_output(probe, w_in, b_in, w_out, relu)).max()), 0.0, 12)
    units, changes, _ = ifm_data(x, w_in, b_in, w_out, TAU, relu)
    c("IFM-A", "change_t", changes, [0.0, 0.283981], 6)
    c("IFM-A", "ifm_data_units", units, 2)

    # IFM-B
    w_in, b_in, w_out = np.array([[1, 0], [1, 0], [1, 0], [0, 1.0]]), np.zeros(4), np.array([[1, 1, 1, 1.0]])
    groups, _ = ifm_merge(w_in, b_in, w_out, BETA)
    c("IFM-B", "ifm_units", len(groups), 2)
    c("IFM-B", "groups", groups, [[0, 1, 2], [3]])

    # IFM-C
    w_in, b_in, w_out = np.array([[1, 0], [1, 0], [0, 1.0]]), np.array([0, 1, 0.0]), np.array([[1, 1, 1.0]])
    groups, steps = ifm_merge(w_in, b_in, w_out, 0.1)
    f = unit_vectors(w_in, b_in, w_out)
    c("IFM-C", "D(0,1), D(0,2), D(1,2)", [float(((f[i] - f[j]) ** 2).sum()) for i, j in ((0, 1), (0, 2), (1, 2))],
      [1.0, 2.0, 3.0], 12)
    c("IFM-C", "beta 0.1: stop at dmin 1 > 0.3", [steps[0]["dmin"], steps[0]["dmax"], steps[0]["stopped"]], [1.0, 3.0, True])
    c("IFM-C", "beta 0.1: ifm_units", len(groups), 3)
    groups, steps = ifm_merge(w_in, b_in, w_out, 0.4)
    c("IFM-C", "beta 0.4: first merge", [steps[0]["members_g"], steps[0]["members_h"]], [[0], [1]])
    merged = (unit_vectors(w_in, b_in, w_out)[0] + unit_vectors(w_in, b_in, w_out)[1]) / 2
    c("IFM-C", "beta 0.4: centroid", merged.tolist(), [1, 0, 0.5, 1], 12)
    c("IFM-C", "beta 0.4: step 2 D = dmax", [steps[1]["dmin"], steps[1]["dmax"], steps[1]["stopped"]], [2.25, 2.25, True])
    c("IFM-C", "beta 0.4: ifm_units", len(groups), 2)

    # IFM-D
    w_in = np.array([[1, 0], [1, 0.2], [0, 1], [0.1, 1], [-1, -1]])
    b_in, w_out = np.zeros(5), np.array([[1, 2, 1, 1, 1.0]])
    _, steps = ifm_merge(w_in, b_in, w_out, None)
    want_pairs = [([2], [3]), ([0], [1]), ([0, 1], [2, 3]), ([0, 1, 2, 3], [4])]
    want_d = [(0.01, 6.44, 0.001553), (1.04, 6.44, 0.161491), (1.9625, 5.46, 0.359432), (4.790625, 4.790625, 1.0)]
    units, changes, _ = ifm_data(x, w_in, b_in, w_out, TAU, relu)
    want_change = [0.0, 0.023194, 0.055163, 0.505375]
    for t, s in enumerate(steps):
        c("IFM-D", f"step {t + 1} pair", (s["members_g"], s["members_h"]), want_pairs[t])
        c("IFM-D", f"step {t + 1} dmin, dmax", [s["dmin"], s["dmax"]], list(want_d[t][:2]), 10)
        c("IFM-D", f"step {t + 1} dmin/dmax", s["dmin"] / s["dmax"], want_d[t][2], 6)
        c("IFM-D", f"step {t + 1} change_t", changes[t], want_change[t], 6)
    c("IFM-D", "steps", len(steps), 4)
    sweep = [ifm_units(w_in, b_in, w_out, b) for b in (0.001, 0.01, 0.1, 0.2, 0.5, 1.0)]
    c("IFM-D", "ifm_units, beta 0.001..1.0", sweep, [5, 4, 4, 3, 2, 1])
    c("IFM-D", "ifm_data_units (tau 0.01)", units, 4)
    wc, bc, oc = compact_layer(w_in, b_in, w_out, steps[1]["groups"])
    c("IFM-D", "compact after step 2: W_in", wc.tolist(), [[2, 0.2], [0.1, 2], [-1, -1]], 12)
    c("IFM-D", "compact after step 2: b, W_out", [bc.tolist(), oc.tolist()], [[0, 0, 0], [[1.5, 1, 1]]])

    # ER-1..3
    er, _ = effective_rank(np.array([[2, 0], [-2, 0], [0, 1], [0, -1.0]]))
    c("ER-1", "effective_rank", er, 1.8898816, 7)
    s = np.linalg.svd(np.array([[2, 0], [-2, 0], [0, 1], [0, -1.0]]), compute_uv=False)
    c("ER-1", "s", s.tolist(), [math.sqrt(8), math.sqrt(2)], 12)
    er, _ = effective_rank(np.array([[6, 5, 5], [4, 5, 5], [5, 6, 5], [5, 4, 5.0]]))
    c("ER-2", "effective_rank (zero dropped)", er, 2.0, 7)
    er, _ = effective_rank(np.array([[1.0], [2.0], [3.0]]))
    c("ER-3", "effective_rank d=1", er, 1.0, 7)
    er, note = effective_rank(np.array([[1.0], [1.0]]))
    c("ER-3", "effective_rank (1),(1)", er, None)
    er, note = effective_rank(np.array([[1.0]]))
    c("ER-3", "effective_rank N=1", er, None)

    # VI-1
    a = np.array([2, 2, -2, -2, 1, 1, -1, -1.0])
    b = np.array([1, -1, 1, -1, -1, 1, -1, 1.0])
    feats = {"L1": (a + b)[:, None], "L2": np.stack([a, b], axis=1)}
    ok = {name: np.ones(8, bool) for name in feats}
    r2, complexity, ndir, per_dir, _ = vinfo(feats, ok, "L2", K_DIRS, ALPHA)
    c("VI-1", "vinfo_r2 L1", r2["L1"], 0.4999995, 7)
    c("VI-1", "vinfo_r2 L2", r2["L2"], 0.9999982, 7)
    c("VI-1", "per-direction complexity", per_dir, [0.1428577, 0.3571445], 7)
    c("VI-1", "vinfo_complexity", complexity, 0.2500011, 7)
    c("VI-1", "vinfo_directions", ndir, 2)
    r2, complexity, _, per_dir, _ = vinfo(feats, ok, "L2", K_DIRS, 0.0)
    c("VI-1", "no ridge: complexity exactly 1/4", complexity, 0.25, 12)
    c("VI-1", "no ridge: R2 L1 per direction", [1 - 2 * p for p in per_dir], [5 / 7, 2 / 7], 12)

    # Not a PROBES.md case: the graph pattern reader (Gemm alpha/beta/transB, MatMul+Add, BatchNorm folding,
    # MatMul/Gemm consumers) must give W_in, b_in, W_out such that sigma(X W_in^T + b_in) W_out^T is what the
    # graph itself computes (evaluated by nc_reference.forward in float64; the consumers have no bias).
    for name, model, inits in _pattern_models():
        pat = ifm_pattern(model, inits, "h")
        xs = 2.0 * np.random.default_rng(1).standard_normal((64, 2))
        env, _ = nc_reference.forward(model, inits, xs, np.float64)
        assert (env["h"] > 0).any(axis=0).all(), "a unit is never active; the pattern check would be weak"
        got = layer_output(xs, pat["w_in"], pat["b_in"], pat["w_out"], relu)
        c("pattern", f"{name}: Y from the graph", float(np.abs(got - env["out"]).max()), 0.0, 12)
    bad_model, bad_inits = _pattern_models(two_consumers=True)
    try:
        ifm_pattern(bad_model, bad_inits, "h")
        c("pattern", "two consumers -> unsupported", "accepted", "Unsupported")
    except Unsupported:
        c("pattern", "two consumers -> unsupported", "Unsupported", "Unsupported")
    print(f"self-test: {'PASS' if c.bad == 0 else f'{c.bad} FAILED'}")
    return c.bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?")
    ap.add_argument("data", nargs="*", help="safetensors files in reference order")
    ap.add_argument("--layers", help="comma-separated graph tensor names, e.g. h1,h2")
    ap.add_argument("--logits", default="logits", help="logits tensor name (default %(default)s)")
    ap.add_argument("--classifier-weight", default="classifier.weight",
                    help="classifier weight initializer; its Gemm/MatMul's input is the classifier-feeding layer")
    ap.add_argument("--beta", type=float, default=BETA)
    ap.add_argument("--tau", type=float, default=TAU)
    ap.add_argument("--k", type=int, default=K_DIRS)
    ap.add_argument("--alpha", type=float, default=ALPHA)
    ap.add_argument("--forward-precision", choices=["float32", "float64"], default="float32")
    ap.add_argument("--reduction", choices=["gap", "flatten"], default="gap")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--self-test", action="store_true", help="run the PROBES.md §2.5 hand cases and exit")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    if not args.model or not args.data or not args.layers:
        ap.error("MODEL, at least one DATA file and --layers are required (or --self-test)")
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
