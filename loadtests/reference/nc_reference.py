#!/usr/bin/python3
"""Independent float64 reference for the `neural_collapse` probe (PROBES.md §1).

  /usr/bin/python3 nc_reference.py MODEL.onnx DATA1.safetensors [DATA2 ...] \
      --layers h1,h2 --classifier-layer h2 --out expected.json
  /usr/bin/python3 nc_reference.py --self-test

Features: the ONNX model is evaluated by a small numpy interpreter (this onnx has no onnx.reference) that
supports exactly the node types export_mlp.py, export_cnn.py, build_layouts.py and the NC-B hand model emit --
Gemm, MatMul, Add, Relu, Identity, Conv, BatchNormalization (inference form), GlobalAveragePool, Flatten --
and fails loudly on anything else. The forward pass runs in float32 (like ONNX Runtime; --forward-precision
float64 is available to gauge sensitivity), then features and logits are widened to float64. A layer tensor
of rank > 2 (N x C x H x W) is reduced per sample as PROBES.md §0 says: `--reduction gap` (default) averages
over every axis after the channel axis in float64, `flatten` flattens row-major.

Precomputed features (e.g. PyTorch forward hooks, as export_cnn.py does): call
`collapse_layers({layer: array}, labels, classifier_layer, logits, w)` -- the same metric code the CLI uses.

Metrics: the most direct textbook formulas, not the streaming/two-pass algorithm the service uses: per seen
class mu_c and biased V_c, class-balanced mu_G, M~, the full d x d class-balanced biased Sigma_W, and
Sigma_B = M~^T M~ / K; nc1 = tr(Sigma_W pinv(Sigma_B)) / K with an eigh-based pseudo-inverse that keeps
eigenvalues > 1e-10 * lambda_max.

Output: {"layers": {layer: {metric: number|null}}, "notes": {layer: str} (only layers with a note),
"source": {...}}. A metric that does not apply to a layer (nc3, nc4 off the classifier layer) is omitted.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

SB_EIG_CUT = 1e-10     # PROBES.md §0: Sigma_B eigenvalue cut (relative to lambda_max)
ZERO_NORM = 1e-12      # PROBES.md §0: zero norm, relative to the largest centred-mean norm

METRIC_ORDER = ["samples", "classes_seen", "nonfinite", "nc1", "nc1_trace", "nc2_equinorm",
                "nc2_equiangular", "nc2_etf_distance", "cdnv", "nc3_self_duality", "nc4_ncc_mismatch",
                "sb_rank"]


# --------------------------------------------------------------------------------------------------
# Neural collapse, textbook float64
# --------------------------------------------------------------------------------------------------

def pinv_sym(a, rel_cut):
    """Pseudo-inverse of a symmetric PSD matrix via eigh, keeping eigenvalues > rel_cut * lambda_max.
    Returns (pinv, rank)."""
    lam, vec = np.linalg.eigh(a)
    lmax = lam.max() if lam.size else 0.0
    if not lmax > 0:
        return np.zeros_like(a), 0
    keep = lam > rel_cut * lmax
    vk = vec[:, keep]
    return (vk / lam[keep]) @ vk.T, int(keep.sum())


def neural_collapse(h, labels, logits=None, w=None, report_margins=False):
    """PROBES.md §1 on one layer.

    h: [N, d] features (any float; widened to float64). labels: [N] ints.
    logits: [N, C] or None; w: [C, d] classifier weight (rows = classes) or None. When both are given the
    layer is the classifier-feeding layer and nc3/nc4 are computed.
    Returns (metrics dict, list of note strings).
    """
    h = np.asarray(h, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if h.ndim != 2 or labels.shape != (h.shape[0],):
        raise ValueError(f"features {h.shape} and labels {labels.shape} do not line up")
    is_cls = logits is not None and w is not None
    notes = []

    ok = np.isfinite(h).all(axis=1)
    if is_cls:
        logits = np.asarray(logits, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if logits.shape[0] != h.shape[0]:
            raise ValueError(f"logits {logits.shape} and features {h.shape} do not line up")
        if w.shape != (logits.shape[1], h.shape[1]):
            raise ValueError(f"classifier weight {w.shape} does not match logits {logits.shape} and features {h.shape}")
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= w.shape[0]:
            raise ValueError(f"labels outside [0, {w.shape[0]}) at the classifier layer")
        ok &= np.isfinite(logits).all(axis=1)
    nonfinite = int((~ok).sum())
    h = h[ok]
    y = labels[ok]
    if is_cls:
        z = logits[ok]
    n, d = h.shape

    classes = np.unique(y)            # seen classes, ascending
    k = len(classes)
    m = {"samples": n, "classes_seen": k, "nonfinite": nonfinite}
    keys = ["nc1", "nc1_trace", "nc2_equinorm", "nc2_equiangular", "nc2_etf_distance", "cdnv"]
    if is_cls:
        keys += ["nc3_self_duality", "nc4_ncc_mismatch"]
    keys += ["sb_rank"]
    for key in keys:
        m[key] = None
    if k == 0:
        notes.append("no finite sample")
        return m, notes

    # Per-class statistics.
    n_c = np.array([(y == c).sum() for c in classes], dtype=np.float64)
    mu = np.stack([h[y == c].mean(axis=0) for c in classes])                  # K x d
    v_c = np.array([((h[y == c] - mu[j]) ** 2).sum(axis=1).mean() for j, c in enumerate(classes)])
    mu_g = mu.mean(axis=0)
    mt = mu - mu_g                                                            # M~, K x d
    sigma_w = np.zeros((d, d))
    for j, c in enumerate(classes):
        dev = h[y == c] - mu[j]
        sigma_w += dev.T @ dev / n_c[j]
    sigma_w /= k
    sigma_b = mt.T @ mt / k

    # nc4 (defined for any K >= 1).
    if is_cls:
        pred = np.argmax(z, axis=1)                                           # lowest index on ties
        dist = np.stack([((h - mu[j]) ** 2).sum(axis=1) for j in range(k)], axis=1)
        ncc = classes[np.argmin(dist, axis=1)]                                # lowest class on ties
        m["nc4_ncc_mismatch"] = float((pred != ncc).sum()) / n
        # How close nc4 is to flipping under another runtime's rounding (diagnostic only, on stderr).
        if report_margins and z.shape[1] > 1 and n > 0:
            zs = np.sort(z, axis=1)
            zgap = (zs[:, -1] - zs[:, -2]) / np.maximum(np.abs(zs[:, -1]), 1e-30)
            msg = f"nc4 margins: min relative top-2 logit gap {zgap.min():.3g}"
            if k > 1:
                ds = np.sort(dist, axis=1)
                dgap = (ds[:, 1] - ds[:, 0]) / np.maximum(ds[:, 1], 1e-300)
                msg += f", min relative NCC distance gap {dgap.min():.3g}"
            near = int((zgap < 1e-5).sum()) + (int((dgap < 1e-5).sum()) if k > 1 else 0)
            msg += f"; {near} near-tie(s) below 1e-5" + (" -- nc4 may differ by a sample under float32 rounding" if near else "")
            print(msg, file=sys.stderr)

    sb_inv, rank = pinv_sym(sigma_b, SB_EIG_CUT)
    m["sb_rank"] = rank
    if k == 1:
        notes.append("fewer than 2 classes seen")
        return m, notes
    all_equal = bool((mu == mu[0]).all()) or rank == 0
    if all_equal:
        m["sb_rank"] = 0
        notes.append("all class means equal")
        return m, notes

    m["nc1"] = float(np.trace(sigma_w @ sb_inv)) / k
    norms = np.linalg.norm(mt, axis=1)
    m["nc1_trace"] = float(v_c.sum() / (norms ** 2).sum())
    m["nc2_equinorm"] = float(norms.std(ddof=1) / norms.mean())
    zero_tol = ZERO_NORM * norms.max()
    if (norms <= zero_tol).any():
        notes.append("a centred class mean has zero norm")
    else:
        cos = (mt @ mt.T) / np.outer(norms, norms)
        off = ~np.eye(k, dtype=bool)
        m["nc2_equiangular"] = float(np.abs(cos[off] + 1.0 / (k - 1)).mean())
    g = mt @ mt.T
    target = (np.eye(k) - np.ones((k, k)) / k) / math.sqrt(k - 1)
    m["nc2_etf_distance"] = float(np.linalg.norm(g / np.linalg.norm(g) - target))
    terms = []
    coincide = False
    for a in range(k):
        for b in range(a + 1, k):
            dist2 = ((mu[a] - mu[b]) ** 2).sum()
            if math.sqrt(dist2) <= zero_tol:
                coincide = True
            else:
                terms.append((v_c[a] + v_c[b]) / (2.0 * dist2))
    if coincide:
        notes.append("two class means coincide")
    else:
        m["cdnv"] = float(np.mean(terms))
    if is_cls:
        ws = w[classes]
        wn = np.linalg.norm(ws)
        if wn == 0:
            notes.append("classifier weight rows of the seen classes are all zero")
        else:
            m["nc3_self_duality"] = float(np.linalg.norm(ws / wn - mt / np.linalg.norm(mt)) ** 2)
    return m, notes


def reduce_features(feats, reduction="gap"):
    """PROBES.md §0 reduction of one layer's tensor to N x d, in float64.

    Rank 2 is used as it is ("none"); rank > 2 (N x C x ...) is averaged over every axis after the channel
    axis ("gap", d = C; the float32 values are widened first, so the mean is a float64 mean) or flattened
    row-major ("flatten"). Returns (features [N, d] float64, the reduction applied)."""
    feats = np.asarray(feats)
    if feats.ndim < 2:
        raise ValueError(f"a layer tensor needs a batch axis and at least one feature axis, got shape {feats.shape}")
    if feats.ndim == 2:
        return feats.astype(np.float64), "none"
    wide = feats.astype(np.float64)
    if reduction == "gap":
        return wide.mean(axis=tuple(range(2, feats.ndim))), "gap"
    if reduction == "flatten":
        return wide.reshape(feats.shape[0], -1), "flatten"
    raise ValueError(f"unknown reduction {reduction!r}; expected gap or flatten")


def collapse_layers(features, labels, classifier_layer=None, logits=None, w=None, reduction="gap",
                    report_margins=False):
    """neural_collapse on several layers given their (precomputed) features.

    features: {layer: array [N, ...]} in the order to report; rank > 2 arrays are reduced (reduce_features).
    labels: [N]. classifier_layer: the layer that feeds the classifier (gets nc3/nc4 from `logits` [N, C]
    and `w` [C, d], rows = classes), or None.
    Returns ({"layers": {layer: {metric: value}}, "notes": {layer: str}}, {layer: reduction applied});
    metrics in METRIC_ORDER, "notes" only when some layer has one."""
    if classifier_layer is not None and classifier_layer not in features:
        raise ValueError(f"classifier layer {classifier_layer!r} is not among the layers {list(features)}")
    out = {"layers": {}, "notes": {}}
    applied = {}
    for layer, feats in features.items():
        h, applied[layer] = reduce_features(feats, reduction)
        cls = layer == classifier_layer
        m, notes = neural_collapse(h, labels, logits if cls else None, w if cls else None,
                                   report_margins=report_margins)
        out["layers"][layer] = {k: m[k] for k in METRIC_ORDER if k in m}
        if notes:
            out["notes"][layer] = "; ".join(notes)
    if not out["notes"]:
        del out["notes"]
    return out, applied


# --------------------------------------------------------------------------------------------------
# ONNX forward pass in numpy
# --------------------------------------------------------------------------------------------------

# op -> the attributes it may carry (anything else is rejected rather than silently ignored)
SUPPORTED_OPS = {
    "Gemm": {"alpha", "beta", "transA", "transB"},
    "MatMul": set(),
    "Add": set(),
    "Relu": set(),
    "Identity": set(),
    "Conv": {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"},
    "BatchNormalization": {"epsilon", "momentum", "training_mode"},
    "GlobalAveragePool": set(),
    "Flatten": {"axis"},
}


def conv2d(x, w, b, attrs, dtype):
    """ONNX Conv for 2-D images (N x C x H x W), group 1, explicit pads, by im2col + one matmul."""
    if x.ndim != 4 or w.ndim != 4:
        raise SystemExit(f"Conv: only 2-D convolution is supported, got input {x.shape} and weight {w.shape}")
    if attrs.get("group", 1) != 1:
        raise SystemExit(f"Conv: group {attrs['group']} is not supported (only 1)")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise SystemExit(f"Conv: auto_pad {attrs['auto_pad']!r} is not supported (only explicit pads)")
    if list(attrs.get("dilations", [1, 1])) != [1, 1]:
        raise SystemExit(f"Conv: dilations {attrs['dilations']} are not supported (only 1)")
    n, c, hh, ww = x.shape
    m, cw, kh, kw = w.shape
    if cw != c or list(attrs.get("kernel_shape", [kh, kw])) != [kh, kw]:
        raise SystemExit(f"Conv: weight {w.shape} does not fit input {x.shape} / kernel_shape {attrs.get('kernel_shape')}")
    sh, sw = attrs.get("strides", [1, 1])
    pt, pl, pb, pr = attrs.get("pads", [0, 0, 0, 0])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (hh + pt + pb - kh) // sh + 1
    ow = (ww + pl + pr - kw) // sw + 1
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, :, i, j] = xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw].transpose(0, 2, 3, 1)
    out = cols.reshape(n * oh * ow, c * kh * kw) @ w.reshape(m, c * kh * kw).T      # [N*OH*OW, M]
    if b is not None:
        out = out + b
    return out.reshape(n, oh, ow, m).transpose(0, 3, 1, 2)


def load_model(path):
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    onnx.checker.check_model(model)
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    bad = sorted({n.op_type for n in g.node} - set(SUPPORTED_OPS))
    if bad:
        raise SystemExit(f"{path}: unsupported node types {bad}; this reference supports {sorted(SUPPORTED_OPS)}")
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            raise SystemExit(f"{path}: node {n.name} in domain {n.domain!r} is not supported")
    return model, inits


def forward(model, inits, x, dtype):
    """Evaluate the graph on x; returns every tensor by name (values in `dtype`)."""
    from onnx import helper
    g = model.graph
    graph_inputs = [i.name for i in g.input if i.name not in inits]
    if len(graph_inputs) != 1:
        raise SystemExit(f"expected exactly one non-initializer graph input, got {graph_inputs}")
    env = {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in inits.items()}
    env[graph_inputs[0]] = x.astype(dtype)
    for node in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if set(attrs) - SUPPORTED_OPS[op]:
            if op == "Gemm":
                raise SystemExit(f"Gemm {node.name}: unsupported attributes {set(attrs) - SUPPORTED_OPS[op]}")
            raise SystemExit(f"{op} {node.name}: unexpected attributes {sorted(set(attrs) - SUPPORTED_OPS[op])}")
        if op == "Gemm":
            a, b = ins[0], ins[1]
            c = ins[2] if len(ins) > 2 else None
            if attrs.get("transA", 0):
                a = a.T
            if attrs.get("transB", 0):
                b = b.T
            out = dtype(attrs.get("alpha", 1.0)) * (a @ b)
            if c is not None:
                out = out + dtype(attrs.get("beta", 1.0)) * c
        elif op == "MatMul":
            out = ins[0] @ ins[1]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Relu":
            out = np.maximum(ins[0], dtype(0))
        elif op == "Identity":
            out = ins[0]
        elif op == "Conv":
            out = conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, attrs, dtype)
        elif op == "BatchNormalization":
            if attrs.get("training_mode", 0) or len([o for o in node.output if o]) != 1:
                raise SystemExit(f"BatchNormalization {node.name}: only the inference form (training_mode=0, one output)")
            x, scale, bias, mean, var = ins
            shape = (1, -1) + (1,) * (x.ndim - 2)
            inv = scale / np.sqrt(var + dtype(attrs.get("epsilon", 1e-5)))
            out = (x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)
        elif op == "GlobalAveragePool":
            out = ins[0].mean(axis=tuple(range(2, ins[0].ndim)), keepdims=True, dtype=dtype)
        elif op == "Flatten":
            axis = attrs.get("axis", 1)
            axis = axis + ins[0].ndim if axis < 0 else axis
            out = ins[0].reshape(int(np.prod(ins[0].shape[:axis], dtype=np.int64)), -1)
        else:  # load_model already rejected these
            raise SystemExit(f"unsupported op {op}")
        env[node.output[0]] = np.asarray(out, dtype=dtype)
    return env, graph_inputs[0]


def classifier_weight(model, inits, name, logits_name):
    """W with rows = classes, from the Gemm/MatMul that consumes initializer `name`."""
    from onnx import helper
    if name not in inits:
        raise SystemExit(f"classifier weight initializer {name!r} not found; initializers: {sorted(inits)}")
    raw = inits[name].astype(np.float64)
    users = [n for n in model.graph.node if len(n.input) > 1 and n.input[1] == name]
    if len(users) != 1:
        raise SystemExit(f"expected one node using {name!r} as its B input, found {len(users)}")
    node = users[0]
    if node.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w = raw if attrs.get("transB", 0) else raw.T
    elif node.op_type == "MatMul":
        w = raw.T
    else:
        raise SystemExit(f"{name!r} feeds a {node.op_type}, not Gemm/MatMul")
    print(f"classifier: {node.op_type}({', '.join(node.input)}) -> {node.output[0]}; W {list(w.shape)} (rows = classes)",
          file=sys.stderr)
    return w, node.input[0]


def run_reference(args):
    model, inits = load_model(args.model)
    xs, ys = [], []
    input_name = None
    for p in args.data:
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
    x = np.concatenate(xs)
    y = np.concatenate(ys).astype(np.int64)
    dtype = np.float32 if args.forward_precision == "float32" else np.float64
    env, graph_input = forward(model, inits, x, dtype)
    if graph_input != input_name:
        raise SystemExit(f"data tensor {input_name!r} does not match the model input {graph_input!r}")
    layers = [s for s in args.layers.split(",") if s]
    if args.classifier_layer and args.classifier_layer not in layers:
        raise SystemExit(f"--classifier-layer {args.classifier_layer} is not among --layers {layers}")
    w = z = None
    if args.classifier_layer:
        w, fed_by = classifier_weight(model, inits, args.classifier_weight, args.logits)
        if fed_by != args.classifier_layer:
            print(f"warning: the classifier Gemm reads {fed_by!r}, not --classifier-layer {args.classifier_layer!r}",
                  file=sys.stderr)
        z = env[args.logits]
    for layer in layers:
        if layer not in env:
            raise SystemExit(f"layer tensor {layer!r} not in the graph; tensors: {sorted(env)}")
    out, applied = collapse_layers({layer: env[layer] for layer in layers}, y, args.classifier_layer, z, w,
                                   reduction=args.reduction, report_margins=True)
    out["source"] = {
        "model": os.path.basename(args.model),
        "data": [os.path.basename(p) for p in args.data],
        "classifier_layer": args.classifier_layer,
        "logits": args.logits,
        "classifier_weight": args.classifier_weight,
        "forward_precision": args.forward_precision,
        # only when a layer had rank > 2 (keeps the output for 2-D models as it always was)
        **({"reduction": applied} if any(r != "none" for r in applied.values()) else {}),
        "generator": "loadtests/reference/nc_reference.py (numpy float64, textbook formulas, PROBES.md section 1)",
    }
    return out


# --------------------------------------------------------------------------------------------------
# Self-test on the PROBES.md §1.6 hand cases
# --------------------------------------------------------------------------------------------------

def _check(case, m, expected, tol=1e-6, file=None):
    bad = 0
    for key, want in expected.items():
        got = m.get(key, "MISSING")
        if want is None:
            ok = got is None
        elif got is None or got == "MISSING":
            ok = False
        else:
            ok = abs(got - want) <= tol * max(1.0, abs(want))
        bad += not ok
        print(f"  {case:5s} {key:18s} got {got!r:24} want {want!r:24} {'ok' if ok else 'FAIL'}", file=file or sys.stdout)
    return bad


def self_test():
    bad = 0
    s3 = math.sqrt(3) / 2
    # NC-A
    mus = np.array([[1, 0], [-0.5, s3], [-0.5, -s3]])
    h = np.concatenate([mus + [0, 0.3], mus - [0, 0.3]])
    y = np.array([0, 1, 2, 0, 1, 2])
    w = mus.copy()
    m, _ = neural_collapse(h, y, h @ w.T, w)
    z0 = 1e-12
    bad += _check("NC-A", m, {"nc1": 0.06, "nc1_trace": 0.09, "cdnv": 0.03, "sb_rank": 2, "samples": 6,
                              "classes_seen": 3, "nonfinite": 0})
    for key in ["nc2_equinorm", "nc2_equiangular", "nc2_etf_distance", "nc3_self_duality", "nc4_ncc_mismatch"]:
        bad += _check("NC-A", m, {key: 0.0}, tol=z0)
    m, _ = neural_collapse(h, y, h @ w.T + [-10, 0, 0], w)
    bad += _check("NC-A'", m, {"nc4_ncc_mismatch": 1 / 3})
    # NC-B
    h = np.array([[2, 0], [4, 0], [0, 2], [0, 4], [0, 3], [-1, -1], [-3, -3]], dtype=np.float64)
    y = np.array([0, 0, 1, 1, 1, 2, 2])
    w = np.array([[1, 0], [0, 1], [-1, -1]], dtype=np.float64)
    m, _ = neural_collapse(h, y, h @ w.T + [0, -2.5, 0], w)
    bad += _check("NC-B", m, NCB_EXPECTED)
    # NC-C
    h = np.array([[-1], [3], [1], [np.nan], [5], [4]])
    y = np.array([0, 1, 0, 0, 1, 1])
    m, _ = neural_collapse(h, y)
    bad += _check("NC-C", m, {"samples": 5, "nonfinite": 1, "nc1": 5 / 48, "nc1_trace": 5 / 24, "cdnv": 5 / 96,
                              "sb_rank": 1})
    for key in ["nc2_equinorm", "nc2_equiangular", "nc2_etf_distance"]:
        bad += _check("NC-C", m, {key: 0.0}, tol=z0)
    # NC-D
    h = np.array([[1, 0], [1, 0.5], [-1, 0], [-1, 0.5], [0, 0], [0, 0.5]])
    y = np.array([0, 0, 1, 1, 2, 2])
    m, notes = neural_collapse(h, y)
    bad += _check("NC-D", m, {"nc2_equiangular": None, "nc1_trace": 0.09375, "nc2_equinorm": 0.8660254,
                              "nc2_etf_distance": 0.7653669, "cdnv": 0.046875, "sb_rank": 1})
    bad += _check("NC-D", m, {"nc1": 0.0}, tol=z0)
    print(f"  NC-D  notes: {notes}")
    # Edge cases (§1.5): K = 1, K = 2, class absent, all means equal.
    h = np.array([[1.0, 2.0], [3.0, 2.0]])
    m, notes = neural_collapse(h, np.array([1, 1]), h @ np.eye(3, 2).T, np.eye(3, 2))
    bad += _check("K=1", m, {"nc1": None, "nc1_trace": None, "cdnv": None, "nc3_self_duality": None,
                             "nc4_ncc_mismatch": 0.5, "classes_seen": 1})
    h = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 3.0], [-2.0, 5.0], [0.5, 0.5]])
    m, _ = neural_collapse(h, np.array([0, 0, 2, 2, 2]))
    for key in ["nc2_equinorm", "nc2_equiangular", "nc2_etf_distance"]:
        bad += _check("K=2", m, {key: 0.0}, tol=z0)
    m, notes = neural_collapse(np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]), np.array([0, 0, 1, 1]))
    bad += _check("eq-mu", m, {"nc1": None, "nc1_trace": None, "cdnv": None, "nc2_equinorm": None, "sb_rank": 0})
    # Reduction (§0): NC-A lifted to N x 2 x 2 x 3 maps whose spatial mean is the NC-A feature vector; gap
    # must give NC-A back, flatten must keep every cell.
    mus = np.array([[1, 0], [-0.5, s3], [-0.5, -s3]])
    h = np.concatenate([mus + [0, 0.3], mus - [0, 0.3]])
    y = np.array([0, 1, 2, 0, 1, 2])
    pattern = np.array([[1.0, -2.0, 0.5], [0.25, 0.75, -0.5]])                  # zero spatial mean
    maps = h[:, :, None, None] + np.arange(1, 7)[:, None, None, None] * pattern
    red, how = reduce_features(maps.astype(np.float32), "gap")
    bad += _check("gap", {"max_err": float(np.abs(red - h).max()), "how": how == "gap"}, {"max_err": 0.0, "how": 1},
                  tol=1e-6)
    out, applied = collapse_layers({"conv": maps, "flat": maps.reshape(6, -1)}, y, "conv", h @ mus.T, mus)
    bad += _check("gap", out["layers"]["conv"], {"nc1": 0.06, "nc1_trace": 0.09, "cdnv": 0.03, "sb_rank": 2})
    bad += _check("gap", out["layers"]["conv"], {"nc3_self_duality": 0.0, "nc4_ncc_mismatch": 0.0}, tol=z0)
    flat, _ = reduce_features(maps, "flatten")
    bad += _check("flat", {"d": flat.shape[1], "same": float(np.abs(flat - maps.reshape(6, -1)).max()),
                           "applied": applied == {"conv": "gap", "flat": "none"}}, {"d": 12, "same": 0.0, "applied": 1})
    print(f"self-test: {'PASS' if bad == 0 else f'{bad} FAILED'}")
    return bad == 0


NCB_EXPECTED = {
    "samples": 7, "classes_seen": 3, "nonfinite": 0,
    "nc1": 352 / 3969, "nc1_trace": 11 / 76, "nc2_equinorm": 0.1222789, "nc2_equiangular": 0.1605758,
    "nc2_etf_distance": 0.2808407, "cdnv": (5 / 108 + 3 / 58 + 4 / 87) / 3, "nc3_self_duality": 0.0132015,
    "nc4_ncc_mismatch": 1 / 7, "sb_rank": 2,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?")
    ap.add_argument("data", nargs="*", help="safetensors files in reference order")
    ap.add_argument("--layers", help="comma-separated graph tensor names, e.g. h1,h2")
    ap.add_argument("--classifier-layer", default=None, help="the layer that feeds the classifier (gets nc3, nc4)")
    ap.add_argument("--logits", default="logits", help="logits tensor name (default %(default)s)")
    ap.add_argument("--classifier-weight", default="classifier.weight",
                    help="classifier weight initializer (default %(default)s)")
    ap.add_argument("--forward-precision", choices=["float32", "float64"], default="float32")
    ap.add_argument("--reduction", choices=["gap", "flatten"], default="gap",
                    help="how a rank > 2 layer tensor becomes N x d (PROBES.md §0; default %(default)s)")
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    ap.add_argument("--check-ncb", action="store_true",
                    help="compare the classifier layer's metrics with the NC-B table of PROBES.md §1.6")
    ap.add_argument("--self-test", action="store_true", help="run the PROBES.md §1.6 hand cases and exit")
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
    if args.check_ncb:
        bad = _check("NC-B", out["layers"][args.classifier_layer], NCB_EXPECTED, file=sys.stderr)
        print(f"NC-B check: {'PASS' if bad == 0 else f'{bad} FAILED'}", file=sys.stderr)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
