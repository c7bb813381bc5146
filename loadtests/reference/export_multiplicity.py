#!/usr/bin/python3
"""Train several runs of one small ReLU MLP recipe on the SAME synthetic data, export chosen checkpoints to
ONNX and write one shared reference set: an experiment for `predictive_multiplicity` (PROBES.md §3).

Data (as export_mlp.py with --seed DATA_SEED): K = classes class centres mu_c ~ N(0, center_scale^2 I) in
R^d_in, samples x = mu_c + noise_std * N(0, I), labels balanced (i mod K, then shuffled); centres, the training
set and the reference set are drawn in that order from numpy's default_rng(--data-seed), so every run sees the
same training samples and is evaluated on the same reference samples.

Runs (--checkpoints 'RUN=SEED:STEP,STEP;RUN=SEED:STEP;...'): run RUN is the model export_mlp.MLP(--widths)
initialised after torch.manual_seed(SEED), trained with Adam (--lr, --weight-decay) on mini-batches of
--batch-size in the order of torch.randperm(generator seeded SEED + 1) per epoch; `step` counts optimizer
updates. After update STEP the model is exported (export_mlp.export, checked by export_mlp.verify) as
`<RUN>-step<STEP>.onnx` in --out-dir: input `input`, outputs `h1`, ..., `logits`. Training runs on one CPU thread,
so a rerun on the same machine and library versions gives byte-identical files.

Reference files: reference-0.safetensors, reference-1.safetensors, ... (`input` F32 [n_i, d_in], `labels`
I64 [n_i]), the samples split across the files in order (--file-sizes).

The committed examples/multiplicity:
  /usr/bin/python3 loadtests/reference/export_multiplicity.py --widths 20,32,5 --center-scale 0.6 \
      --data-seed 3 --samples 1000 --file-sizes 600,400 \
      --checkpoints 'seed-1=1:100,300,800;seed-2=2:800;seed-3=3:800' --out-dir examples/multiplicity
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_mlp  # noqa: E402  (MLP, make_clusters, export, verify)
import safetensors_io  # noqa: E402


def parse_checkpoints(spec):
    """'RUN=SEED:S1,S2;RUN=SEED:S' -> [(run, seed, [steps ascending])]."""
    plan = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        run, eq, rest = part.partition("=")
        seed, colon, steps = rest.partition(":")
        if not (eq and colon and run and seed.lstrip("-").isdigit()):
            raise SystemExit(f"--checkpoints: {part!r} is not RUN=SEED:STEP,STEP")
        try:
            st = sorted({int(s) for s in steps.split(",") if s.strip()})
        except ValueError:
            raise SystemExit(f"--checkpoints: steps of {part!r} are not integers")
        if not st or st[0] < 0:
            raise SystemExit(f"--checkpoints: {part!r} needs steps >= 0")
        if run in [p[0] for p in plan]:
            raise SystemExit(f"--checkpoints: run {run} appears twice")
        plan.append((run, int(seed), st))
    if not plan:
        raise SystemExit("--checkpoints: no run")
    return plan


def reference_stats(model, x, y):
    model.eval()
    with torch.no_grad():
        z = model(torch.from_numpy(x))[-1].double()
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(y)).item()
    acc = (z.argmax(1).numpy() == y).mean()
    return loss, acc


def train_run(run, seed, steps, widths, x_train, y_train, x_ref, y_ref, args):
    torch.manual_seed(seed)
    model = export_mlp.MLP(widths)
    g = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    n = xt.shape[0]
    step = 0
    todo = list(steps)
    written = []

    def save():
        path = os.path.join(args.out_dir, f"{run}-step{step}.onnx")
        loss, acc = reference_stats(model, x_ref, y_ref)
        names = export_mlp.export(model, widths[0], path)
        export_mlp.verify(path, widths, names)
        print(f"{run} step {step}: reference loss {loss:.6f}, accuracy {acc:.4f} (PyTorch) -> {path}")
        written.append(path)

    while todo and todo[0] == 0:
        save()
        todo.pop(0)
    while todo:
        model.train()
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, args.batch_size):
            idx = perm[s:s + args.batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx])[-1], yt[idx])
            loss.backward()
            opt.step()
            step += 1
            if step == todo[0]:
                save()
                model.train()
                todo.pop(0)
                if not todo:
                    break
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="20,32,5", help="d_in,hidden...,classes (default %(default)s)")
    ap.add_argument("--checkpoints", required=True, metavar="SPEC",
                    help="'RUN=SEED:STEP,STEP;...' (init/batch-order seed and the optimizer steps to export)")
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--center-scale", type=float, default=1.0, help="std of each class-centre coordinate")
    ap.add_argument("--noise-std", type=float, default=1.0, help="within-class std per coordinate")
    ap.add_argument("--data-seed", type=int, default=0, help="seeds the centres, training and reference draws")
    ap.add_argument("--samples", type=int, default=1000, help="reference samples in total")
    ap.add_argument("--file-sizes", default=None, help="per-file sample counts, e.g. 600,400 (default: one file)")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()

    widths = [int(w) for w in args.widths.split(",")]
    d_in, classes = widths[0], widths[-1]
    sizes = [int(s) for s in args.file_sizes.split(",")] if args.file_sizes else [args.samples]
    if sum(sizes) != args.samples or min(sizes) < 1:
        raise SystemExit(f"--file-sizes {args.file_sizes} must be positive and sum to --samples {args.samples}")
    plan = parse_checkpoints(args.checkpoints)

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.data_seed)
    centres = args.center_scale * rng.standard_normal((classes, d_in))
    x_train, y_train = export_mlp.make_clusters(rng, centres, args.train_samples, args.noise_std)
    x_ref, y_ref = export_mlp.make_clusters(rng, centres, args.samples, args.noise_std)

    os.makedirs(args.out_dir, exist_ok=True)
    for run, seed, steps in plan:
        train_run(run, seed, steps, widths, x_train, y_train, x_ref, y_ref, args)

    start = 0
    for i, n in enumerate(sizes):
        f = os.path.join(args.out_dir, f"reference-{i}.safetensors")
        safetensors_io.save(f, {"input": x_ref[start:start + n], "labels": y_ref[start:start + n]})
        print(f"wrote {f}: input float32 [{n}, {d_in}], labels int64 [{n}]")
        start += n


if __name__ == "__main__":
    main()
