#!/usr/bin/env python3
"""A small PyTorch MLP on synthetic MNIST-like data, trained a few hundred steps and published to
Probestream every N steps with clients/python's probestream_client.

    ./probestream serve --embedded-kafka --kafka-port 9192 --http-port 8080 &
    /usr/bin/python3 examples/pytorch_mnist_like.py --bootstrap-servers 127.0.0.1:9192

then open http://localhost:8080/ (experiment mnist-like). Needs numpy, torch, onnx and
confluent_kafka (Debian: python3-numpy python3-torch python3-onnx python3-confluent-kafka).
The data: 10 classes in 64 dimensions ("8x8 images"), each class a noisy copy of a random
prototype, 2000 training and 1000 reference samples.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from probestream_client import ProbestreamCallback, Publisher  # noqa: E402


class Mlp(nn.Module):
    """64 -> 128 -> 64 -> 10; forward returns (h1, h2, logits), the graph outputs' names."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 64)
        self.classifier = nn.Linear(64, 10)

    def forward(self, x):
        h1 = torch.relu(self.fc1(x))
        h2 = torch.relu(self.fc2(h1))
        return h1, h2, self.classifier(h2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", default="127.0.0.1:9192")
    ap.add_argument("--experiment", default="mnist-like")
    ap.add_argument("--run", default="seed-1")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50, help="publish a checkpoint every N steps")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the results at the end")
    args = ap.parse_args()

    rng = np.random.default_rng(0)  # the data is the same for every seed
    prototypes = rng.normal(size=(10, 64))

    def sample(n):
        y = rng.integers(0, 10, size=n)
        return (prototypes[y] + 2.5 * rng.normal(size=(n, 64))).astype(np.float32), y

    x_train, y_train = sample(2000)
    x_ref, y_ref = sample(1000)
    torch.manual_seed(args.seed)
    model = Mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(args.seed)

    with Publisher(args.bootstrap_servers, args.experiment, args.run) as pub:
        pub.reference_set(x_ref, y_ref, batch_size=500)
        cb = ProbestreamCallback(
            pub,
            every=args.every,
            layers={"h1": "h1", "h2": "h2"},
            logits="logits",
            classifier_weight="classifier.weight",
        )
        for step in range(1, args.steps + 1):
            idx = torch.randint(0, len(xt), (64,), generator=gen)
            _, _, logits = model(xt[idx])
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % args.every == 0:
                with torch.no_grad():
                    accuracy = (model(xt)[2].argmax(1) == yt).float().mean().item()
                    val = (model(torch.from_numpy(x_ref))[2].argmax(1).numpy() == y_ref).mean()
                cb.step(model, step, {"loss": loss.item(), "accuracy": accuracy, "val_accuracy": float(val)})
                pub.batch(x_train[:256], y_train[:256], split="train", step=step)  # a live batch
                print(f"step {step} loss {loss.item():.4f} accuracy {accuracy:.3f} val_accuracy {val:.3f}", file=sys.stderr)
        pub.flush()
        # neural_collapse on h1 and h2 of every checkpoint, on the reference set (other probes
        # and the live train split arrive too; they are skipped here).
        want = len(cb.published) * 2
        seen = 0
        for r in _reference_results(pub, want, args.wait):
            seen += 1
            print(f"{r['probe']} {r['run']} step {r['step']} layer {r['layer']}: nc1 {r['metrics'].get('nc1')}")
        if seen < want:
            print(f"only {seen} of {want} results within {args.wait} s", file=sys.stderr)


def _reference_results(pub, want, timeout):
    import time

    deadline = time.monotonic() + timeout
    seen = 0
    while seen < want and time.monotonic() < deadline:
        for r in pub.results(timeout=min(1.0, max(0.0, deadline - time.monotonic())), probe="neural_collapse"):
            if r["split"] == "reference":
                seen += 1
                yield r

if __name__ == "__main__":
    main()
