#!/usr/bin/env bash
# The load generator (loadtests/loadgen): publishes an experiment to a running Probestream and
# prints checkpoint-to-result latency percentiles and live-batch throughput; `bare-ort` runs the
# ONNX Runtime baseline. Builds the module first when its jar is missing. See loadtests/README.md.
#   loadtests/loadgen.sh --bootstrap-servers 127.0.0.1:9192 [options]
#   loadtests/loadgen.sh bare-ort [--threads 2 --intra-op 1 ...]   (ONNX Runtime alone)
#   loadtests/loadgen.sh live-path [...]   (the service's per-batch calls timed alone, no Kafka)
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
jar=$root/loadtests/loadgen/target/loadgen.jar
if [[ ! -f $jar ]]; then
  echo "loadgen: building loadtests/loadgen…" >&2
  (cd "$root" && mvn -B -q -DskipTests -pl loadtests/loadgen -am package) >&2
fi
if [[ ${1:-} == live-path ]]; then
  shift
  exec java ${LOADGEN_JAVA_OPTS:-} -cp "$jar" io.probestream.loadtests.loadgen.LivePathTiming "$@"
fi
if [[ ${1:-} == bare-ort ]]; then
  shift
  exec java ${LOADGEN_JAVA_OPTS:-} -cp "$jar" io.probestream.loadtests.loadgen.BareOrt "$@"
fi
exec java ${LOADGEN_JAVA_OPTS:-} -jar "$jar" "$@"
