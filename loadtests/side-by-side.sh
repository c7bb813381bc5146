#!/usr/bin/env bash
# Side by side (loadtests/README.md): Probestream's neural_collapse kernels, the whole §1 computation
# and `probestream probe` end to end against numpy (OpenBLAS), PyTorch (CPU) and bare ONNX Runtime, on
# the same data and machine in one run; values are checked before any time is printed.
# Usage: loadtests/side-by-side.sh [--repeats 3] [--reps 10] [--batch 256]
#   DATA_DIR (default /tmp/big-mlp; exported on first use), WORK (default /tmp/side-by-side).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
data=${DATA_DIR:-/tmp/big-mlp}
work=${WORK:-/tmp/side-by-side}
py=/usr/bin/python3
mkdir -p "$work"

if [[ ! -f $data/model.onnx || ! -f $data/reference-3.safetensors ]]; then
  echo "side-by-side: exporting the 784-512-256-10 MLP to $data" >&2
  "$py" "$root/loadtests/reference/export_mlp.py" --widths 784,512,256,10 --train-epochs 2 \
    --center-scale 0.1 --seed 5 --samples 10000 --files 4 --out-dir "$data" >"$work/export.log"
fi

echo "side-by-side: building probestream.jar and benchmarks.jar (offline)" >&2
(cd "$root" && mvn -B -o -q -pl services/probestream-cli,loadtests/jmh -am package -DskipTests) \
  >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
touch "$root/services/probestream-cli/target/probestream.jar" # the launcher must not rebuild mid-run

# numpy and torch from Debian link libblas.so.3, which may be the reference (netlib) BLAS; point
# them at OpenBLAS: the installed one, or one unpacked from apt's cache (nothing is installed).
ob=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [[ ! -f $ob/libblas.so.3 ]]; then
  deb=$(ls /var/cache/apt/archives/libopenblas0-pthread_*.deb 2>/dev/null | head -n 1 || true)
  if [[ -n $deb ]]; then
    [[ -f $work/openblas/$ob/libblas.so.3 ]] || dpkg-deb -x "$deb" "$work/openblas"
    ob=$work/openblas$ob
  else
    echo "side-by-side: no OpenBLAS found (apt-get install libopenblas0-pthread); numpy uses whatever libblas.so.3 is" >&2
    ob=
  fi
fi
export LD_LIBRARY_PATH=${ob}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

exec "$py" "$root/loadtests/reference/side_by_side.py" --data-dir "$data" --work "$work" \
  --jar "$root/loadtests/jmh/target/benchmarks.jar" --probestream "$root/probestream" "$@"
