#!/usr/bin/env python3
"""Round trip of the Python client through a running Probestream service.

    /usr/bin/python3 clients/python/tests/test_roundtrip.py --bootstrap-servers HOST:PORT --workdir DIR

Trains a tiny torch MLP (20-16-8-3; graph outputs h1, h2, logits; classifier.weight), publishes a
reference set of two batches and two checkpoints with probestream_client, then one live train
batch, waits for the neural_collapse results and writes to DIR: results.jsonl (every result JSON
received), step-<N>.onnx (the exact bytes published), reference-<i>.safetensors (the exact
batches published) and checkpoints.json (experiment, run, steps, layers), so `probestream probe`
can be run on the same files. Exit 0 on success, 1 on failure, 77 when a Debian package is missing
(python3-confluent-kafka, python3-torch, python3-onnx, python3-numpy).
"""

import argparse
import json
import os
import sys
import time
import uuid

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SKIP = 77
PACKAGES = {
    "numpy": "python3-numpy",
    "torch": "python3-torch",
    "onnx": "python3-onnx",
    "confluent_kafka": "python3-confluent-kafka",
}


def require_packages():
    missing = []
    for module, package in PACKAGES.items():
        try:
            __import__(module)
        except Exception:  # ImportError, or a broken install
            missing.append(package)
    if missing:
        print(
            f"SKIP: {sys.executable} lacks {', '.join(missing)}; "
            f"install with: apt-get install {' '.join(missing)}",
            file=sys.stderr,
        )
        sys.exit(SKIP)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--experiment", default=f"pyclient-{uuid.uuid4().hex[:8]}")
    ap.add_argument("--topic-prefix", default="probestream.")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    require_packages()

    import numpy as np
    import torch
    from torch import nn

    from probestream_client import ProbestreamCallback, Publisher

    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    # Three Gaussian classes in 20 dimensions.
    centres = rng.normal(0.0, 1.5, size=(3, 20))

    def sample(n):
        y = rng.integers(0, 3, size=n)
        return (centres[y] + rng.normal(size=(n, 20))).astype(np.float32), y.astype(np.int64)

    x_train, y_train = sample(256)
    x_ref, y_ref = sample(200)

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(20, 16)
            self.fc2 = nn.Linear(16, 8)
            self.classifier = nn.Linear(8, 3)

        def forward(self, x):
            h1 = torch.relu(self.fc1(x))
            h2 = torch.relu(self.fc2(h1))
            return h1, h2, self.classifier(h2)

    model = Mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    layers = {"h1": "h1", "h2": "h2"}
    run = "seed-1"
    steps = [10, 30]
    published = {}

    started = time.monotonic()
    with Publisher(args.bootstrap_servers, args.experiment, run, topic_prefix=args.topic_prefix) as pub:
        batches = pub.reference_set(x_ref, y_ref, batch_size=100)
        assert len(batches) == 2, len(batches)
        for i, b in enumerate(batches):
            with open(os.path.join(args.workdir, f"reference-{i}.safetensors"), "wb") as f:
                f.write(b)

        class Recording(ProbestreamCallback):
            def step(self, model, step, metrics=None):
                if step not in steps:
                    return False
                manifest, onnx_bytes = self.publisher.checkpoint(step, model, metrics=metrics, **self.checkpoint_kwargs)
                published[step] = (manifest, onnx_bytes)
                return True

        cb = Recording(pub, every=1, layers=layers, logits="logits", classifier_weight="classifier.weight")
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        for step in range(1, max(steps) + 1):
            idx = torch.from_numpy(rng.integers(0, len(x_train), size=32))
            _, _, logits = model(xt[idx])
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                acc = (model(xt)[2].argmax(1) == yt).float().mean().item()
            cb.step(model, step, {"loss": loss.item(), "accuracy": acc})
        pub.flush()

        checkpoints = []
        for step in steps:
            manifest, onnx_bytes = published[step]
            path = os.path.join(args.workdir, f"step-{step}.onnx")
            with open(path, "wb") as f:
                f.write(onnx_bytes)
            checkpoints.append({"step": step, "file": os.path.basename(path), "sha256": manifest["model"]["blob"]["sha256"]})
            assert manifest["classes"] == 3, manifest
        with open(os.path.join(args.workdir, "checkpoints.json"), "w") as f:
            json.dump(
                {
                    "experiment": args.experiment,
                    "run": run,
                    "layers": layers,
                    "logits": "logits",
                    "classifier_weight": "classifier.weight",
                    "references": [f"reference-{i}.safetensors" for i in range(len(batches))],
                    "checkpoints": checkpoints,
                },
                f,
                indent=2,
            )

        # 2 checkpoints x 2 layers on the reference set ...
        results = pub.results(timeout=args.timeout, expected=len(steps) * len(layers), probe="neural_collapse")
        # ... then one live train batch: the service evaluates it against the run's latest
        # checkpoint whose results are out (step 30 by now), one result per layer.
        pub.batch(x_train[:64], y_train[:64], split="train", step=max(steps))
        pub.flush()
        results += pub.results(timeout=args.timeout, expected=len(layers), probe="neural_collapse")
    with open(os.path.join(args.workdir, "results.jsonl"), "w") as f:
        for r in results:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")

    got = sorted((r["split"], r["step"], r["layer"]) for r in results)
    want = sorted([("reference", s, l) for s in steps for l in layers] + [("train", max(steps), l) for l in layers])
    if got != want:
        print(f"FAIL: results {got}, expected {want}", file=sys.stderr)
        return 1
    for r in results:
        if r["experiment"] != args.experiment or r["run"] != run:
            print(f"FAIL: result of {r['experiment']}/{r['run']}: {r}", file=sys.stderr)
            return 1
        if r["split"] == "reference":
            sha = published[r["step"]][1]
            import hashlib

            if r["model_sha256"] != hashlib.sha256(sha).hexdigest():
                print(f"FAIL: model_sha256 of step {r['step']} is not the published model's", file=sys.stderr)
                return 1
            if r["metrics"]["samples"] != len(x_ref):
                print(f"FAIL: samples {r['metrics']['samples']}, expected {len(x_ref)}", file=sys.stderr)
                return 1
    print(
        f"ok: experiment {args.experiment}: {len(results)} neural_collapse results for steps {steps} "
        f"in {time.monotonic() - started:.1f} s; files in {args.workdir}"
    )
    for r in sorted(results, key=lambda r: (r["split"], r["step"], r["layer"])):
        print(f"  {r['split']:9} step {r['step']:3} {r['layer']}: nc1 {r['metrics'].get('nc1')} samples {r['metrics']['samples']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
