#!/usr/bin/python3
"""Two tiny classifiers whose classifier weight is stored features x classes (d x C), for testing how the
classifier is found and oriented; written with the onnx helper API (opset 17, IR 8), not exported by torch.

  matmul_add.onnx       h = Relu(Add(MatMul(input, fc1.weight), fc1.bias))
                        logits = Add(MatMul(h, classifier.weight), classifier.bias)
  gemm_transposed.onnx  h = Relu(Gemm(input, fc1.weight, fc1.bias))                 (no transB attribute)
                        logits = Gemm(h, classifier.weight, classifier.bias, transB=0)  (attribute explicit)

Both use the same initializers, so they compute the same function:
  fc1.weight [6, 5], fc1.bias [5], classifier.weight [5, 3] (d x C: rows = features), classifier.bias [3].
Input `input` F32 [batch, 6] (dynamic batch), the only graph output `logits` [batch, 3]; `h` [batch, 5] is an
intermediate tensor, not a graph output. PROBES.md §0 wants W with rows = classes, so nc3 uses
classifier.weight TRANSPOSED (3 x 5) for both models.

Data (reference.safetensors, shared by both models): 64 samples around 3 class centres ~ N(0, 1.5^2 I) in R^6
plus N(0, I) noise, labels balanced (i mod 3) and shuffled: `input` F32 [64, 6], `labels` I64 [64].
Weights: N(0, 0.5^2) matrices, N(0, 0.1^2) biases; all from --seed.

expected: <model>.expected.json, neural_collapse (PROBES.md §1) for layer `h` (classifier-feeding) from a
numpy float32 forward pass written out here (features and logits widened to float64; metrics by
nc_reference.collapse_layers). The script checks that nc_reference's own ONNX interpreter and classifier-weight
orientation (nc_reference.forward / classifier_weight) give the same h, logits and W, and runs onnx.checker.

  /usr/bin/python3 loadtests/reference/build_layouts.py --seed 11 --out-dir examples/layouts
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nc_reference  # noqa: E402
import safetensors_io  # noqa: E402

D_IN, D_H, CLASSES, SAMPLES = 6, 5, 3, 64
MODELS = ["matmul_add", "gemm_transposed"]


def make_weights(rng):
    return {
        "fc1.weight": (0.5 * rng.standard_normal((D_IN, D_H))).astype(np.float32),
        "fc1.bias": (0.1 * rng.standard_normal(D_H)).astype(np.float32),
        "classifier.weight": (0.5 * rng.standard_normal((D_H, CLASSES))).astype(np.float32),
        "classifier.bias": (0.1 * rng.standard_normal(CLASSES)).astype(np.float32),
    }


def make_data(rng):
    centres = 1.5 * rng.standard_normal((CLASSES, D_IN))
    labels = np.arange(SAMPLES, dtype=np.int64) % CLASSES
    rng.shuffle(labels)
    x = centres[labels] + rng.standard_normal((SAMPLES, D_IN))
    return x.astype(np.float32), labels


def build(kind, weights):
    if kind == "matmul_add":
        nodes = [
            helper.make_node("MatMul", ["input", "fc1.weight"], ["fc1_matmul"], name="fc1_matmul"),
            helper.make_node("Add", ["fc1_matmul", "fc1.bias"], ["fc1_out"], name="fc1_add"),
            helper.make_node("Relu", ["fc1_out"], ["h"], name="relu"),
            helper.make_node("MatMul", ["h", "classifier.weight"], ["classifier_matmul"], name="classifier_matmul"),
            helper.make_node("Add", ["classifier_matmul", "classifier.bias"], ["logits"], name="classifier_add"),
        ]
    elif kind == "gemm_transposed":
        nodes = [
            helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1_gemm"),
            helper.make_node("Relu", ["fc1_out"], ["h"], name="relu"),
            helper.make_node("Gemm", ["h", "classifier.weight", "classifier.bias"], ["logits"],
                             name="classifier_gemm", transB=0),
        ]
    else:
        raise ValueError(kind)
    graph = helper.make_graph(
        nodes, kind,
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", D_IN])],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=[numpy_helper.from_array(v, name=k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="probestream build_layouts.py")
    onnx.checker.check_model(model, full_check=True)
    return model


def numpy_forward(weights, x):
    """float32 forward pass, written out (shared by both layouts: they compute the same function)."""
    h = np.maximum(x @ weights["fc1.weight"] + weights["fc1.bias"], np.float32(0))
    logits = h @ weights["classifier.weight"] + weights["classifier.bias"]
    return h.astype(np.float32), logits.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    weights = make_weights(rng)
    x, y = make_data(rng)
    os.makedirs(args.out_dir, exist_ok=True)
    safetensors_io.save(os.path.join(args.out_dir, "reference.safetensors"), {"input": x, "labels": y})
    print(f"wrote reference.safetensors: input float32 {list(x.shape)}, labels int64 {list(y.shape)}, "
          f"per class {np.bincount(y).tolist()}")

    h, logits = numpy_forward(weights, x)
    w_rows = weights["classifier.weight"].T.astype(np.float64)          # rows = classes (C x d)
    for kind in MODELS:
        path = os.path.join(args.out_dir, f"{kind}.onnx")
        onnx.save(build(kind, weights), path)
        # independent check: nc_reference's interpreter and its orientation rule on the saved file
        model, inits = nc_reference.load_model(path)
        env, _ = nc_reference.forward(model, inits, x, np.float32)
        w_ref, fed_by = nc_reference.classifier_weight(model, inits, "classifier.weight", "logits")
        dh, dz = float(np.abs(env["h"] - h).max()), float(np.abs(env["logits"] - logits).max())
        if dh > 1e-6 or dz > 1e-6 or fed_by != "h" or not np.array_equal(w_ref, w_rows):
            raise SystemExit(f"{kind}: nc_reference disagrees (h {dh}, logits {dz}, fed by {fed_by}, W {w_ref.shape})")
        print(f"{kind}: nodes " + ", ".join(f"{n.op_type}({','.join(n.input)})->{n.output[0]}" for n in model.graph.node)
              + f"; nc_reference forward max|diff| h {dh:.3g}, logits {dz:.3g}")

        out, applied = nc_reference.collapse_layers({"h": h}, y, "h", logits, w_rows, report_margins=True)
        out["source"] = {
            "model": os.path.basename(path),
            "data": ["reference.safetensors"],
            "classifier_layer": "h",
            "logits": "logits",
            "classifier_weight": "classifier.weight",
            "classifier_weight_layout": "stored [5, 3] = features x classes; nc3 uses its transpose (rows = classes)",
            "forward_precision": "float32",
            "generator": "loadtests/reference/build_layouts.py + nc_reference.collapse_layers "
                         "(numpy float64, textbook formulas, PROBES.md section 1)",
        }
        with open(os.path.join(args.out_dir, f"{kind}.expected.json"), "w") as f:
            f.write(json.dumps(out, indent=2) + "\n")
        print(f"wrote {kind}.onnx ({os.path.getsize(path)} bytes) and {kind}.expected.json")


if __name__ == "__main__":
    main()
