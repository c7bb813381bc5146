#!/usr/bin/env bash
# Time from a checkpoint manifest being produced to its results being produced, through
# `probestream serve --embedded-kafka`, measured with the records' own Kafka timestamps
# (CreateTime of the manifest, set by kcat; CreateTime of the last result, set by the service). The blob and the reference set are sent
# first (as a training job would before its checkpoints), so the figure is the service's own
# latency: consume, load the model from the blob store, ORT on the whole reference set, both
# neural-collapse passes, publish, acknowledge.
#
# usage: loadtests/pipeline-latency.sh MODEL.onnx LAYERS CLASSES REF.safetensors [REF …]
#   e.g. loadtests/pipeline-latency.sh examples/mlp/model.onnx h1,h2 5 examples/mlp/reference-*.safetensors
# needs: kcat, curl; repeats the checkpoint REPEAT times (default 5) with new steps.
set -euo pipefail
model=$1; layers=$2; classes=$3; shift 3
repeat=${REPEAT:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
L=$root/probestream
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kp=$(port); hp=$(port)
set -m; $L serve --embedded-kafka --kafka-port "$kp" --http-port "$hp" --data-dir "$work/data" >"$work/serve.log" 2>&1 </dev/null & pid=$!; set +m
trap 'kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 90); do curl -fs "localhost:$hp/health/ready" >/dev/null 2>&1 && break; sleep 1; done
B=127.0.0.1:$kp
$L publish reference --bootstrap-servers $B --experiment lat "$@" 2>/dev/null
layer_args=(); for l in ${layers//,/ }; do layer_args+=(--layer "$l=$l"); done
# step 0 warms the JVM and ORT and stores the blob; its time is not counted
$L publish checkpoint --bootstrap-servers $B --experiment lat --run r --step 0 --model "$model" \
  "${layer_args[@]}" --logits logits --classifier-weight classifier.weight --classes "$classes" 2>"$work/pub.log"
n=$(echo "${layers//,/ }" | wc -w)
until [ "$(kcat -C -b $B -t probestream.results -o beginning -e -q 2>/dev/null | wc -l)" -ge "$n" ]; do sleep 0.2; done
sha=$(sha256sum "$model" | cut -d' ' -f1); size=$(stat -c %s "$model"); chunks=$(( (size + 524287) / 524288 ))
layers_json=$(for l in ${layers//,/ }; do printf '"%s":"%s",' "$l" "$l"; done); layers_json="{${layers_json%,}}"
for step in $(seq 1 "$repeat"); do
  printf '{"experiment":"lat","run":"r","step":%d,"model":{"blob":{"sha256":"%s","size":%d,"chunks":%d}},"input":"input","layers":%s,"logits":"logits","classifier_weight":"classifier.weight","classes":%d}' \
    "$step" "$sha" "$size" "$chunks" "$layers_json" "$classes" >"$work/m.json"
  want=$(( (step + 1) * n ))
  kcat -P -b $B -t probestream.checkpoints -k lat -H ce_specversion=1.0 -H ce_id=lat-$step -H ce_source=loadtest \
    -H ce_type=probestream.checkpoint.v1 "$work/m.json"
  until [ "$(kcat -C -b $B -t probestream.results -o beginning -e -q 2>/dev/null | wc -l)" -ge "$want" ]; do sleep 0.05; done
done
kcat -C -b $B -t probestream.checkpoints -o beginning -e -q -f '%T %s\n' >"$work/c.txt" 2>/dev/null
kcat -C -b $B -t probestream.results -o beginning -e -q -f '%T %s\n' >"$work/r.txt" 2>/dev/null
python3 - "$work/c.txt" "$work/r.txt" <<'PY'
import json, sys
sent = {}
for line in open(sys.argv[1]):
    ts, body = line.split(" ", 1); sent[json.loads(body)["step"]] = int(ts)
done = {}
for line in open(sys.argv[2]):
    ts, body = line.split(" ", 1); step = json.loads(body)["step"]; done[step] = max(done.get(step, 0), int(ts))
ms = [done[s] - sent[s] for s in sorted(sent) if s > 0]
for s, v in zip(sorted(s for s in sent if s > 0), ms):
    print("step %d: %d ms from manifest produced to last result produced" % (s, v))
ms.sort(); print("median %d ms, min %d, max %d (n=%d)" % (ms[len(ms)//2], ms[0], ms[-1], len(ms)))
PY
kcat -C -b $B -t probestream.results -o beginning -e -q 2>/dev/null | tail -n "$n" | python3 -c '
import json,sys
for l in sys.stdin:
    o=json.loads(l); print("  %s: latency_ms (evaluation) %d, samples %d" % (o["layer"], o["latency_ms"], o["metrics"]["samples"]))'
