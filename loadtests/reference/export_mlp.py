#!/usr/bin/python3
"""Build (and optionally train) a ReLU MLP on synthetic Gaussian clusters, export it to ONNX and write
reference data as safetensors.

The ONNX graph (opset 17) has one input `input` [batch, d_in] (dynamic batch) and these outputs:
  h1, h2, ...  every hidden activation after its ReLU   [batch, width_k]
  logits       the last Linear layer's output            [batch, classes]
Hidden Linear layers are `fc1`, `fc2`, ... (initializers `fc1.weight`, `fc1.bias`, ...); the last one is
`classifier` (initializers `classifier.weight` [classes, d_last] and `classifier.bias` [classes]), each
exported as Gemm(transB=1). The script verifies these names and runs onnx.checker.

Data: K = classes class centres mu_c ~ N(0, center_scale^2 I) in R^d_in, samples x = mu_c + noise_std * N(0, I),
labels balanced (i mod K, then shuffled). The training set and the reference set are independent draws
around the same centres. Everything is a function of --seed.

Reference files: reference-0.safetensors, reference-1.safetensors, ... in --out-dir, each with
`input` (F32 [n_i, d_in]) and `labels` (I64 [n_i]); the samples are split across the files in order.

Example (the committed examples/mlp):
  /usr/bin/python3 loadtests/reference/export_mlp.py --widths 20,64,32,5 --train-epochs 30 --seed 7 \
      --samples 1000 --file-sizes 600,400 --out-dir examples/mlp

Planted duplicates (--plant SPEC, applied after training, before export; without it nothing changes): SPEC is
`LAYER:ITEM,ITEM;LAYER:...` with LAYER = h1, h2, ... and ITEM = `SRC=DST` (unit DST of that layer becomes an
exact copy of unit SRC) or `SRC~DST` (a scaled near-duplicate: c = 1 + --plant-scale). DST's incoming row and
bias become SRC's (times c for `~`); in the next Linear, SRC's outgoing column v is shared among SRC and its m - 1
copies: SRC gets v/m, an exact copy v/m, a scaled copy v/(m*c). For ReLU every copy then computes exactly (up
to float32 rounding) what SRC contributed, so the planted network is the trained one with the DST units'
own contributions removed. The committed examples/mlp-planted:
  /usr/bin/python3 loadtests/reference/export_mlp.py --widths 20,64,32,5 --train-epochs 30 --seed 10 \
      --samples 1000 --file-sizes 600,400 --out-dir examples/mlp-planted \
      --plant 'h1:3=40,10=41,10=50,5~20,17~33;h2:2=20,7=25'
"""
import argparse
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


class MLP(torch.nn.Module):
    """Linear+ReLU blocks fc1..fc{L-1}, then the `classifier` Linear. forward returns (h1, ..., logits)."""

    def __init__(self, widths):
        super().__init__()
        if len(widths) < 2:
            raise ValueError("--widths needs at least d_in and the number of classes")
        self.n_hidden = len(widths) - 2
        for k in range(self.n_hidden):
            self.add_module(f"fc{k + 1}", torch.nn.Linear(widths[k], widths[k + 1]))
        self.classifier = torch.nn.Linear(widths[-2], widths[-1])

    def forward(self, x):
        outs = []
        h = x
        for k in range(self.n_hidden):
            h = torch.relu(getattr(self, f"fc{k + 1}")(h))
            outs.append(h)
        outs.append(self.classifier(h))
        return tuple(outs)


def make_clusters(rng, centres, n, noise_std):
    k, d = centres.shape
    labels = np.arange(n, dtype=np.int64) % k
    rng.shuffle(labels)
    x = centres[labels] + noise_std * rng.standard_normal((n, d))
    return x.astype(np.float32), labels


def train(model, x, y, epochs, lr, weight_decay, batch_size, seed):
    if epochs <= 0:
        return
    g = torch.Generator().manual_seed(seed + 1)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
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
            loss = loss_fn(model(xt[idx])[-1], yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        model.eval()
        with torch.no_grad():
            acc = (model(xt)[-1].argmax(1) == yt).double().mean().item()
        print(f"epoch {epoch + 1:3d}  loss {total / n:.4f}  train acc {acc:.4f}")


def parse_plant(spec, n_hidden, widths):
    """--plant SPEC -> {layer index k (1-based): [(src, dst, scaled)]}, validated."""
    plan = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        layer, _, items = part.partition(":")
        if not (layer.startswith("h") and layer[1:].isdigit() and 1 <= int(layer[1:]) <= n_hidden):
            raise SystemExit(f"--plant: layer {layer!r} is not one of h1..h{n_hidden}")
        k = int(layer[1:])
        if k in plan:
            raise SystemExit(f"--plant: layer {layer} appears twice")
        entries = []
        for item in filter(None, (i.strip() for i in items.split(","))):
            sep = "~" if "~" in item else "="
            src, _, dst = item.partition(sep)
            if not (src.isdigit() and dst.isdigit()):
                raise SystemExit(f"--plant: item {item!r} in {layer} is not SRC=DST or SRC~DST")
            src, dst = int(src), int(dst)
            if max(src, dst) >= widths[k] or src == dst:
                raise SystemExit(f"--plant: item {item!r}: units must differ and be < {widths[k]} (width of {layer})")
            entries.append((src, dst, sep == "~"))
        srcs, dsts = {e[0] for e in entries}, [e[1] for e in entries]
        if len(set(dsts)) != len(dsts) or srcs & set(dsts):
            raise SystemExit(f"--plant: in {layer} every DST must be distinct and no DST may be a SRC")
        plan[k] = entries
    return plan


def plant(model, plan, scale):
    """Plant exact and scaled duplicate units (see --plant) in place; layers in increasing order."""
    c = 1.0 + scale
    with torch.no_grad():
        for k in sorted(plan):
            fc = getattr(model, f"fc{k}")
            nxt = getattr(model, f"fc{k + 1}") if k < model.n_hidden else model.classifier
            by_src = {}
            for src, dst, scaled in plan[k]:
                by_src.setdefault(src, []).append((dst, scaled))
            for src, copies in by_src.items():
                m = 1 + len(copies)
                v = nxt.weight[:, src].clone()
                nxt.weight[:, src] = v / m
                for dst, scaled in copies:
                    fc.weight[dst] = fc.weight[src] * c if scaled else fc.weight[src]
                    fc.bias[dst] = fc.bias[src] * c if scaled else fc.bias[src]
                    nxt.weight[:, dst] = v / (m * c) if scaled else v / m
                    print(f"plant h{k}: unit {dst} = {'scaled (c = %r) ' % c if scaled else 'exact '}copy of unit {src}"
                          f" (outgoing column shared {m} ways)")


def export(model, d_in, path):
    names = [f"h{k + 1}" for k in range(model.n_hidden)] + ["logits"]
    model.eval()
    torch.onnx.export(
        model,
        torch.zeros(2, d_in),
        path,
        input_names=["input"],
        output_names=names,
        dynamic_axes={n: {0: "batch"} for n in ["input"] + names},
        opset_version=17,
        export_params=True,
        keep_initializers_as_inputs=False,
        do_constant_folding=False,
    )
    return names


def verify(path, widths, output_names):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    inits = {i.name: list(i.dims) for i in g.initializer}
    ins = [i.name for i in g.input]
    outs = [o.name for o in g.output]
    print(f"onnx: opset {[(o.domain or 'ai.onnx', o.version) for o in m.opset_import]}, ir_version {m.ir_version}")
    print(f"onnx inputs: {ins}")
    print(f"onnx outputs: {outs}")
    print("onnx initializers: " + ", ".join(f"{k} {v}" for k, v in inits.items()))
    print("onnx nodes: " + ", ".join(f"{n.op_type}({','.join(n.input)})->{','.join(n.output)}" for n in g.node))
    problems = []
    if ins != ["input"]:
        problems.append(f"graph inputs are {ins}, expected ['input']")
    if outs != output_names:
        problems.append(f"graph outputs are {outs}, expected {output_names}")
    want = {}
    for k in range(len(widths) - 2):
        want[f"fc{k + 1}.weight"] = [widths[k + 1], widths[k]]
        want[f"fc{k + 1}.bias"] = [widths[k + 1]]
    want["classifier.weight"] = [widths[-1], widths[-2]]
    want["classifier.bias"] = [widths[-1]]
    if inits != want:
        problems.append(f"initializers are {inits}, expected {want}")
    gemms = [n for n in g.node if n.op_type == "Gemm"]
    cls = [n for n in gemms if len(n.input) > 1 and n.input[1] == "classifier.weight"]
    if len(cls) != 1 or cls[0].output[0] != "logits" or cls[0].input[2] != "classifier.bias":
        problems.append("no single Gemm(·, classifier.weight, classifier.bias) -> logits")
    for n in gemms:
        tb = [a.i for a in n.attribute if a.name == "transB"]
        if tb != [1]:
            problems.append(f"Gemm {n.name} has transB={tb}, expected 1")
    if problems:
        raise SystemExit("ONNX export check failed:\n  " + "\n  ".join(problems))
    print("onnx check: OK (checker passed; input/outputs/initializer names as expected)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="784,512,256,10", help="d_in,hidden...,classes (default %(default)s)")
    ap.add_argument("--train-epochs", type=int, default=0)
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--center-scale", type=float, default=1.0, help="std of each class-centre coordinate")
    ap.add_argument("--noise-std", type=float, default=1.0, help="within-class std per coordinate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=1000, help="reference samples in total")
    ap.add_argument("--files", type=int, default=1, help="split the reference samples into this many files (near-equal, in order)")
    ap.add_argument("--file-sizes", default=None, help="explicit per-file sample counts, e.g. 600,400 (overrides --files; must sum to --samples)")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--model-name", default="model.onnx")
    ap.add_argument("--plant", default=None, metavar="SPEC",
                    help="after training, plant duplicate units, e.g. 'h1:3=40,5~20;h2:2=20' (= exact copy, ~ scaled)")
    ap.add_argument("--plant-scale", type=float, default=1e-3, help="c - 1 for scaled near-duplicates (default %(default)s)")
    args = ap.parse_args()

    widths = [int(w) for w in args.widths.split(",")]
    d_in, classes = widths[0], widths[-1]
    if args.file_sizes:
        sizes = [int(s) for s in args.file_sizes.split(",")]
        if sum(sizes) != args.samples or min(sizes) < 1:
            raise SystemExit(f"--file-sizes {args.file_sizes} must be positive and sum to --samples {args.samples}")
    else:
        if not 1 <= args.files <= args.samples:
            raise SystemExit(f"--files {args.files} must be between 1 and --samples {args.samples}")
        sizes = [len(a) for a in np.array_split(np.arange(args.samples), args.files)]

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    centres = args.center_scale * rng.standard_normal((classes, d_in))
    x_train, y_train = make_clusters(rng, centres, args.train_samples, args.noise_std)
    x_ref, y_ref = make_clusters(rng, centres, args.samples, args.noise_std)

    plan = parse_plant(args.plant, len(widths) - 2, widths) if args.plant else None
    model = MLP(widths)
    train(model, x_train, y_train, args.train_epochs, args.lr, args.weight_decay, args.batch_size, args.seed)
    model.eval()
    if plan:
        with torch.no_grad():
            acc = (model(torch.from_numpy(x_ref))[-1].argmax(1).numpy() == y_ref).mean()
        print(f"reference accuracy before planting (PyTorch): {acc:.4f}")
        plant(model, plan, args.plant_scale)
    with torch.no_grad():
        acc = (model(torch.from_numpy(x_ref))[-1].argmax(1).numpy() == y_ref).mean()
    print(f"reference accuracy (PyTorch): {acc:.4f}")

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, args.model_name)
    names = export(model, d_in, path)
    verify(path, widths, names)

    start = 0
    for i, n in enumerate(sizes):
        f = os.path.join(args.out_dir, f"reference-{i}.safetensors")
        safetensors_io.save(f, {"input": x_ref[start:start + n], "labels": y_ref[start:start + n]})
        print(f"wrote {f}: input float32 [{n}, {d_in}], labels int64 [{n}]")
        start += n
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
