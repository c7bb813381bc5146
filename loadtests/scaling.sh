#!/usr/bin/env bash
# How the offline probe's cost grows (issue 11 item 4): runs `probestream probe` on untrained ReLU
# MLPs exported by reference/export_mlp.py while one size varies at a time, and records the
# evaluation time (the results' latency_ms: inference plus probe math, JVM start excluded) and the
# process's peak RSS (/usr/bin/time -v). The model is given three times (as three checkpoints) so
# that the fastest evaluation is a warm one, as in the long-running service; a single cold call
# mostly measures the JIT compiler. Prints one table per axis and the exponent of a
# least-squares fit of log(time) on log(size). Needs /usr/bin/python3 with numpy and torch.
#
# usage: loadtests/scaling.sh [AXIS ...]    AXIS: n d k models ifm (default: all)
#   SCALING_REPEAT=3 (runs per point; the median counts), SCALING_OUT=/tmp/probestream-scaling
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
L=$root/probestream
PY=/usr/bin/python3
out=${SCALING_OUT:-/tmp/probestream-scaling}
repeat=${SCALING_REPEAT:-3}
axes=("$@")
[ ${#axes[@]} -eq 0 ] && axes=(n d k models ifm)
mkdir -p "$out"

# export WIDTHS SAMPLES SEED DIR: an untrained MLP and its reference set, once
export_mlp() {
  local widths=$1 samples=$2 seed=$3 dir=$4
  [ -f "$dir/model.onnx" ] && return
  $PY "$root/loadtests/reference/export_mlp.py" --widths "$widths" --train-epochs 0 \
    --seed "$seed" --samples "$samples" --files 1 --out-dir "$dir" >/dev/null
}

# run LABEL SIZE ARGS...: median evaluation ms and peak RSS MB of `probe ARGS` over $repeat runs
run() {
  local label=$1 size=$2; shift 2
  local times=() rss=()
  for _ in $(seq 1 "$repeat"); do
    /usr/bin/time -v -o "$out/time.txt" "$L" probe -q "$@" >"$out/out.jsonl" 2>"$out/err.txt" || {
      cat "$out/err.txt" >&2; exit 1; }
    times+=("$($PY -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pm = [r["latency_ms"] for r in rs if r["probe"] == "predictive_multiplicity"]
# one model given three times: its last evaluations run warm (JIT-compiled); the minimum counts
print(max(pm) if pm else min(r["latency_ms"] for r in rs))' "$out/out.jsonl")")
    rss+=("$(awk -F: '/Maximum resident/ {print int($2/1024)}' "$out/time.txt")")
  done
  local t r
  t=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p")
  r=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p")
  printf '%s\t%s\t%s\t%s\n' "$label" "$size" "$t" "$r" | tee -a "$out/points.tsv"
}

fit() {
  $PY - "$out/points.tsv" "$1" <<'EOF'
import sys, numpy as np
rows = [l.split("\t") for l in open(sys.argv[1]) if l.startswith(sys.argv[2] + "\t")]
x = np.log([float(r[1]) for r in rows]); y = np.log([max(float(r[2]), 1.0) for r in rows])
slope = np.polyfit(x, y, 1)[0] if len(rows) > 1 else float("nan")
# A fixed cost per run (ORT session, first use of the probe code) flattens the small sizes; the
# slope between the two largest points is closer to the asymptotic growth.
top = (y[-1] - y[-2]) / (x[-1] - x[-2]) if len(rows) > 1 else float("nan")
print(f"{sys.argv[2]}: time ~ size^{slope:.2f} over {len(rows)} points; between the two largest: size^{top:.2f}")
EOF
}

: >"$out/points.tsv"
printf 'axis\tsize\teval_ms\tpeak_rss_mb\n'
for axis in "${axes[@]}"; do
  case $axis in
    n) # samples N; MLP 784-512-10, neural_collapse on h1 (d = 512), K = 10
      for n in 2500 5000 10000 20000 40000; do
        d=$out/n-$n; export_mlp 784,512,10 "$n" 1 "$d"
        run n "$n" --model "w@1=$d/model.onnx" --model "w@2=$d/model.onnx" --model "w@3=$d/model.onnx" --data "$d/reference-0.safetensors" --layer h1=h1 \
          --logits logits --classifier-weight classifier.weight
      done ;;
    d) # width d of the probed layer; N = 5000, K = 10
      for w in 128 256 512 1024 2048; do
        d=$out/d-$w; export_mlp 784,$w,10 5000 1 "$d"
        run d "$w" --model "w@1=$d/model.onnx" --model "w@2=$d/model.onnx" --model "w@3=$d/model.onnx" --data "$d/reference-0.safetensors" --layer h1=h1 \
          --logits logits --classifier-weight classifier.weight
      done ;;
    k) # classes K; N = 10000, d = 256
      for k in 10 50 100 200 400 800; do
        d=$out/k-$k; export_mlp 256,256,$k 10000 1 "$d"
        run k "$k" --model "w@1=$d/model.onnx" --model "w@2=$d/model.onnx" --model "w@3=$d/model.onnx" --data "$d/reference-0.safetensors" --layer h1=h1 \
          --logits logits --classifier-weight classifier.weight
      done ;;
    models) # models in the Rashomon set; N = 20000, K = 10 (untrained models of one recipe)
      for m in 4 8 16 32; do
        args=()
        for s in $(seq 1 "$m"); do
          d=$out/models-seed$s; export_mlp 64,32,10 20000 "$s" "$d"
          args+=(--model "seed-$s@100=$d/model.onnx")
        done
        run models "$m" "${args[@]}" --data "$out/models-seed1/reference-0.safetensors" \
          --logits logits --probe predictive_multiplicity --epsilon 1000
      done ;;
    ifm) # units n0 of the layer given to Iterative Feature Merging (d_in = d_out = n0); N = 2000
      for u in 128 256 512 1024 2048; do
        d=$out/ifm-$u; export_mlp $u,$u,$u,10 2000 1 "$d"
        run ifm "$u" --model "w@1=$d/model.onnx" --model "w@2=$d/model.onnx" --data "$d/reference-0.safetensors" --layer h1=h1 \
          --logits logits --probe feature_complexity
      done ;;
    *) echo "unknown axis '$axis' (n d k models ifm)" >&2; exit 2 ;;
  esac
  fit "$axis"
done
