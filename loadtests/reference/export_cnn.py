#!/usr/bin/python3
"""Train a small residual CNN (batch-norm, one residual block) on synthetic oriented bars, export it to ONNX
with only `logits` as a graph output, and write the reference set, the PyTorch forward-hook features, the
layer -> ONNX tensor mapping and the neural-collapse numbers computed from those PyTorch features.

Network (input [N, 3, 16, 16]; every conv 3x3 without bias, followed by BatchNorm2d):
  stem    = ReLU(BN(Conv 3->8, pad 1))                                   [N, 8, 16, 16]
  block1  = ReLU(BN(Conv 8->8)(ReLU(BN(Conv 8->8)(stem))) + stem)        [N, 8, 16, 16]   (the residual Add)
  block2  = ReLU(BN(Conv 8->16, stride 2, pad 1)(block1))                [N, 16, 8, 8]
  pooled  = Flatten(GlobalAveragePool(block2))                           [N, 16]
  logits  = classifier(pooled), Linear 16->4                             [N, 4]
The graph (opset 17, dynamic batch) has one input `input` and one output `logits`; BatchNormalization stays
a node of its own (inference form), the classifier is Gemm(pooled, classifier.weight, classifier.bias,
transB=1). The intermediate layers are NOT graph outputs: a consumer exposes them itself, by the ONNX
tensor names written to layers.json.

Data: 4 classes of 16x16 RGB images, one bar each: class 0 horizontal, 1 vertical, 2 diagonal (45 deg),
3 anti-diagonal (135 deg), each with +-15 deg jitter, a random offset, width and colour, plus a random
Gaussian blob as a distractor and N(0, noise_std^2) pixel noise. Labels balanced (i mod 4) and shuffled;
training and reference sets are independent draws. Everything is a function of --seed, and training runs
on one CPU thread, so a rerun on the same machine and library versions gives byte-identical files.

Files in --out-dir:
  model.onnx                                  the checkpoint
  reference-<i>.safetensors                   `input` F32 [n_i, 3, 16, 16], `labels` I64 [n_i], in order
  layers.json                                 {"stem": onnx tensor, ..., "classifier_weight", "logits", "input"}
  features.safetensors                        PyTorch hook features of the first --feature-samples samples of
                                              reference-0, F32 in native shapes: stem, block1, block2, pooled,
                                              and logits
  expected.json                               neural_collapse (PROBES.md §1) for stem, block1, block2, pooled
                                              on all reference samples, from the PyTorch features (rank-4
                                              layers GAP-reduced in float64), classifier layer pooled

Checks the script runs (and fails on): onnx.checker (full_check); graph input/output names; no intermediate
graph output; the residual Add and BatchNormalization nodes exist; each mapped tensor equals the PyTorch
hook feature under an independent numpy forward of the ONNX graph (nc_reference.forward) and no other graph
tensor does; the metrics from those numpy-ONNX features agree with expected.json.

Example (the committed examples/cnn):
  /usr/bin/python3 loadtests/reference/export_cnn.py --seed 3 --out-dir examples/cnn
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nc_reference  # noqa: E402
import safetensors_io  # noqa: E402

LAYERS = ["stem", "block1", "block2", "pooled"]
CLASSES = 4
SIZE = 16
# module whose forward output is each probed layer (each module instance is used exactly once)
HOOKED = {"stem": "stem.relu", "block1": "block1.relu2", "block2": "block2.relu", "pooled": "flatten"}
# the ONNX node torch.onnx (1.13) emits for that module call: scope "/<module path>/" + op type
ONNX_NODE = {"stem": "/stem/relu/Relu", "block1": "/block1/relu2/Relu", "block2": "/block2/relu/Relu",
             "pooled": "/flatten/Flatten"}


class ConvBnRelu(torch.nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv = torch.nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(c_out)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class ResidualBlock(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)
        self.relu2 = torch.nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + x)


class SmallResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBnRelu(3, 8)
        self.block1 = ResidualBlock(8)
        self.block2 = ConvBnRelu(8, 16, stride=2)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.flatten = torch.nn.Flatten()
        self.classifier = torch.nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.classifier(self.flatten(self.pool(self.block2(self.block1(self.stem(x))))))


def make_bars(rng, n, noise_std):
    """n images [n, 3, 16, 16] float32 and balanced shuffled labels [n] int64 (see the module docstring)."""
    labels = np.arange(n, dtype=np.int64) % CLASSES
    rng.shuffle(labels)
    angle = np.deg2rad(np.array([0.0, 90.0, 45.0, 135.0])[labels] + rng.uniform(-15, 15, n))
    centre = rng.uniform(4.5, 10.5, (n, 2))                       # (row, col) the bar passes through
    width = rng.uniform(0.8, 1.8, n)
    colour = rng.uniform(0.4, 1.0, (n, 3))
    rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    # distance of each pixel from the line through `centre` with direction (sin a, cos a) in (row, col)
    dr = rows[None] - centre[:, 0, None, None]
    dc = cols[None] - centre[:, 1, None, None]
    dist = np.abs(dr * np.cos(angle)[:, None, None] - dc * np.sin(angle)[:, None, None])
    bar = np.exp(-(dist / width[:, None, None]) ** 2)                               # [n, 16, 16]
    blob_at = rng.uniform(0, SIZE - 1, (n, 2))
    blob_r = rng.uniform(1.0, 2.5, n)
    blob = np.exp(-((rows[None] - blob_at[:, 0, None, None]) ** 2 + (cols[None] - blob_at[:, 1, None, None]) ** 2)
                  / (2 * blob_r[:, None, None] ** 2))
    blob_colour = rng.uniform(0.2, 0.8, (n, 3))
    x = colour[:, :, None, None] * bar[:, None] + blob_colour[:, :, None, None] * blob[:, None]
    x = x + noise_std * rng.standard_normal(x.shape)
    return x.astype(np.float32), labels


def train(model, x, y, epochs, lr, weight_decay, batch_size, seed):
    g = torch.Generator().manual_seed(seed + 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = xt.shape[0]
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        model.eval()
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).double().mean().item()
        print(f"epoch {epoch + 1:3d}  loss {total / n:.4f}  train acc {acc:.4f}")


def hook_features(model, x):
    """Forward x through the eval-mode model; returns ({layer: float32 array}, logits float32)."""
    feats = {}
    modules = dict(model.named_modules())
    handles = []
    for layer, path in HOOKED.items():
        def hook(_module, _inputs, output, layer=layer):
            if layer in feats:
                raise RuntimeError(f"module {HOOKED[layer]} ran twice in one forward")
            feats[layer] = output.detach().numpy().copy()
        handles.append(modules[path].register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(torch.from_numpy(x)).numpy().copy()
    finally:
        for h in handles:
            h.remove()
    return {layer: feats[layer] for layer in LAYERS}, logits


def export(model, path):
    model.eval()
    torch.onnx.export(
        model,
        torch.zeros(2, 3, SIZE, SIZE),
        path,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        export_params=True,
        keep_initializers_as_inputs=False,
        do_constant_folding=False,
        # PRESERVE keeps BatchNormalization as its own (inference-form) node; EVAL would fold it into Conv
        training=torch.onnx.TrainingMode.PRESERVE,
    )


def verify_graph(path):
    """Structural checks; returns {layer: onnx tensor name} plus the classifier weight initializer name."""
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    inits = {i.name for i in g.initializer}
    ins = [i.name for i in g.input if i.name not in inits]
    outs = [o.name for o in g.output]
    print(f"onnx: opset {[(o.domain or 'ai.onnx', o.version) for o in m.opset_import]}, ir_version {m.ir_version}, "
          f"producer {m.producer_name} {m.producer_version}")
    print(f"onnx inputs: {ins}; outputs: {outs}")
    print("onnx initializers: " + ", ".join(f"{i.name} {list(i.dims)}" for i in g.initializer))
    print("onnx nodes:\n  " + "\n  ".join(f"{n.name}: {n.op_type}({', '.join(n.input)}) -> {', '.join(n.output)}"
                                        for n in g.node))
    problems = []
    if ins != ["input"] or [i.name for i in g.input] != ["input"]:
        problems.append(f"graph inputs are {[i.name for i in g.input]}, expected ['input']")
    if outs != ["logits"]:
        problems.append(f"graph outputs are {outs}, expected only ['logits'] (no intermediate may be an output)")
    ops = [n.op_type for n in g.node]
    for op in ["Add", "BatchNormalization", "Conv", "GlobalAveragePool", "Flatten", "Gemm"]:
        if op not in ops:
            problems.append(f"no {op} node in the graph")
    by_name = {n.name: n for n in g.node}
    mapping = {}
    for layer, node_name in ONNX_NODE.items():
        node = by_name.get(node_name)
        if node is None:
            problems.append(f"no node {node_name!r} for layer {layer}")
        else:
            mapping[layer] = node.output[0]
    adds = [n for n in g.node if n.op_type == "Add"]
    if len(adds) != 1 or "block1" in mapping and by_name[ONNX_NODE["block1"]].input[0] != adds[0].output[0]:
        problems.append("block1's ReLU does not read the single residual Add")
    cls = [n for n in g.node if n.op_type == "Gemm"]
    if len(cls) != 1 or list(cls[0].input) != [mapping.get("pooled"), "classifier.weight", "classifier.bias"] \
            or list(cls[0].output) != ["logits"]:
        problems.append("no single Gemm(pooled, classifier.weight, classifier.bias) -> logits")
    elif [a.i for a in cls[0].attribute if a.name == "transB"] != [1]:
        problems.append("classifier Gemm is not transB=1")
    if problems:
        raise SystemExit("ONNX export check failed:\n  " + "\n  ".join(problems))
    print("onnx check: OK (checker passed; only `logits` is an output; residual Add, BatchNormalization present)")
    return mapping


def max_rel_metric_diff(a, b):
    worst = (0.0, None)
    for layer, ma in a["layers"].items():
        for key, va in ma.items():
            vb = b["layers"][layer][key]
            if (va is None) != (vb is None):
                return float("inf"), f"{layer}.{key}"
            if va is None:
                continue
            d = abs(va - vb) / max(abs(va), 1e-300) if va != vb else 0.0
            if d > worst[0]:
                worst = (d, f"{layer}.{key}")
    return worst


def cross_check(path, mapping, x, y, hook, logits, expected):
    """Numpy forward of the ONNX graph (nc_reference.forward) against the PyTorch hooks and expected.json."""
    model, inits = nc_reference.load_model(path)
    env, _ = nc_reference.forward(model, inits, x, np.float32)
    report = {}
    for layer in LAYERS + ["logits"]:
        name = mapping[layer] if layer != "logits" else "logits"
        ref = hook[layer] if layer != "logits" else logits
        got = env[name]
        if got.shape != ref.shape:
            raise SystemExit(f"{layer}: ONNX tensor {name} has shape {got.shape}, PyTorch {ref.shape}")
        err = float(np.abs(got - ref).max())
        scale = float(np.abs(ref).max())
        others = [t for t, v in env.items() if t != name and v.shape == ref.shape and np.abs(v - ref).max() <= 1e-4 * scale]
        print(f"{layer:7s} {name:28s} {list(ref.shape)}: numpy-ONNX vs PyTorch max |diff| {err:.3g} "
              f"(max |value| {scale:.3g}); other tensors that also match: {others or 'none'}")
        if err > 1e-5 * max(scale, 1.0) or others:
            raise SystemExit(f"{layer}: mapping to {name} not confirmed")
        report[layer] = err
    w, _ = nc_reference.classifier_weight(model, inits, "classifier.weight", "logits")
    for prec, dtype in (("float32", np.float32), ("float64", np.float64)):
        env, _ = nc_reference.forward(model, inits, x, dtype)
        out, _ = nc_reference.collapse_layers({layer: env[mapping[layer]] for layer in LAYERS}, y, "pooled",
                                              env["logits"], w)
        d, where = max_rel_metric_diff(expected, out)
        print(f"metrics from the numpy-ONNX {prec} forward vs expected.json (PyTorch features): "
              f"max relative difference {d:.3g} ({where})")
        if prec == "float32" and d > 1e-5:
            raise SystemExit("metrics from the ONNX graph disagree with the PyTorch-feature metrics beyond 1e-5")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--train-epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--noise-std", type=float, default=0.6, help="pixel noise std")
    ap.add_argument("--file-sizes", default="240,160", help="reference samples per file, in order")
    ap.add_argument("--feature-samples", type=int, default=32, help="samples of reference-0 in features.safetensors")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()

    sizes = [int(s) for s in args.file_sizes.split(",")]
    if min(sizes) < 1 or args.feature_samples > sizes[0]:
        raise SystemExit(f"--file-sizes {args.file_sizes} must be positive and the first >= --feature-samples")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_bars(rng, args.train_samples, args.noise_std)
    x_ref, y_ref = make_bars(rng, sum(sizes), args.noise_std)

    model = SmallResNet()
    train(model, x_train, y_train, args.train_epochs, args.lr, args.weight_decay, args.batch_size, args.seed)
    model.eval()
    hook, logits = hook_features(model, x_ref)
    print(f"reference accuracy (PyTorch): {(logits.argmax(1) == y_ref).mean():.4f}")

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "model.onnx")
    export(model, path)
    mapping = verify_graph(path)

    onnx_w = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}["classifier.weight"]
    w = model.classifier.weight.detach().numpy()
    if not np.array_equal(onnx_w, w):
        raise SystemExit("classifier.weight in the ONNX file differs from the PyTorch parameter")

    start = 0
    data_files = []
    for i, n in enumerate(sizes):
        f = os.path.join(args.out_dir, f"reference-{i}.safetensors")
        safetensors_io.save(f, {"input": x_ref[start:start + n], "labels": y_ref[start:start + n]})
        data_files.append(os.path.basename(f))
        print(f"wrote {f}: input float32 [{n}, 3, {SIZE}, {SIZE}], labels int64 [{n}]")
        start += n

    layers_json = {**mapping, "classifier_weight": "classifier.weight", "logits": "logits", "input": "input"}
    with open(os.path.join(args.out_dir, "layers.json"), "w") as f:
        f.write(json.dumps(layers_json, indent=2) + "\n")

    k = args.feature_samples
    safetensors_io.save(os.path.join(args.out_dir, "features.safetensors"),
                        {**{layer: hook[layer][:k] for layer in LAYERS}, "logits": logits[:k]},
                        metadata={"source": f"PyTorch {torch.__version__} forward hooks, eval mode, float32; "
                                            f"samples 0-{k - 1} of reference-0.safetensors",
                                  "onnx_tensors": json.dumps(layers_json, separators=(",", ":"))})

    expected, applied = nc_reference.collapse_layers(hook, y_ref, "pooled", logits, w, report_margins=True)
    expected["source"] = {
        "model": "model.onnx",
        "data": data_files,
        "features": f"PyTorch {torch.__version__} forward hooks (float32, eval mode), not the ONNX graph",
        "tensors": mapping,
        "reduction": applied,
        "classifier_layer": "pooled",
        "logits": "logits",
        "classifier_weight": "classifier.weight",
        "generator": "loadtests/reference/export_cnn.py + nc_reference.collapse_layers "
                     "(numpy float64, textbook formulas, PROBES.md section 1)",
    }
    with open(os.path.join(args.out_dir, "expected.json"), "w") as f:
        f.write(json.dumps(expected, indent=2) + "\n")

    cross_check(path, mapping, x_ref, y_ref, hook, logits, expected)
    for name in ["model.onnx", *data_files, "layers.json", "features.safetensors", "expected.json"]:
        print(f"{name:26s} {os.path.getsize(os.path.join(args.out_dir, name)):8d} bytes")
    print("layers.json: " + json.dumps(layers_json))


if __name__ == "__main__":
    main()
