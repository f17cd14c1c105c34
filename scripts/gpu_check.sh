#!/usr/bin/env bash
# Every GPU check as one script for a lent machine, in groups named on the command line:
#   cuda        the CUDA-only tests: graphed sampling equals eager bit for bit (1 minute at most)
#   speed       scripts/gpu_speed.py: a model trained for a minute on structured synthetic images
#               of CIFAR10's shape, its sampling eager and graphed (equal bit for bit), Inception
#               features, the three evaluation passes, and repro bench's variants on it and on a
#               fresh imagenet64-2res-small (6 minutes at most)
#   projection  the projected hours of every Table 5 experiment (2.5 minutes)
#   smoke       a CUDA smoke run of train / eval bpd / sample whose bpd is compared with the CPU's on
#               the same model (2.5 minutes)
#   solver      the authors' solver details on cifar10-2res-small after 100 iterations on synthetic
#               images: bpd with and without the exact end at t = 1, NFE with and without their first
#               step (scripts/solver_details.py; 5 minutes)
#
# Usage: OUT=<folder for results> scripts/gpu_check.sh GROUP...   (default: cuda speed, ≤ 7 minutes)
# Needs: the repository's Python dependencies (torch with CUDA, torchdiffeq, click, rich, pyyaml,
# pytest, …); data/mnist (the offline MNIST copy that `dvc repro` fetches) for the smoke run and
# data/cache (the converted Inception weights) for the feature timing.
set -uo pipefail
OUT=${OUT:?set OUT to a folder for the results}
export PYTHONUNBUFFERED=1 MRCNF_RUNS=${MRCNF_RUNS:-/tmp/mrcnf-runs}
step() {  # step NAME SECONDS COMMAND...: run one check with its own time limit and log
  local name=$1 limit=$2
  shift 2
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@" 2>&1 | grep -v -E '^(USDT|ERROR:.*DeviceProperties|STAGE:)' | tee -a "$OUT/log.txt"
  echo "=== $name exit ${PIPESTATUS[0]}"
}

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
python3 -c 'import torch, torchdiffeq; print("torch", torch.__version__, "torchdiffeq", torchdiffeq.__version__)'

cuda() {
  # No addopts: pytest-xdist need not be installed there.
  step cuda_tests 60 python3 -m pytest -o addopts="" -q -p no:cacheprovider tests/test_per_sample.py \
    -k cuda
}

speed() {
  step speed 360 python3 scripts/gpu_speed.py --out "$OUT" --train-seconds 60 --images 500 \
    --bench-iterations 1
}

projection() {
  # Every Table 5 experiment, one line each as it finishes (the big ones fall back to adjoint).
  step projection 150 python3 -m repro bench cifar10-2res-small --profile paper --device cuda \
    --iterations 1 --variant direct+vjp --project --out "$OUT/projection.json"
}

smoke() {
  run=$MRCNF_RUNS/smoke/cifar10-2res-small
  step smoke_train 45 python3 -m repro train cifar10-2res-small --profile smoke --device cuda
  step smoke_bpd_cuda 30 python3 -m repro eval bpd cifar10-2res-small --profile smoke --device cuda
  cp "$run/eval_bpd.json" "$OUT/smoke_bpd_cuda.json"
  step smoke_bpd_cpu 45 python3 -m repro eval bpd cifar10-2res-small --profile smoke --device cpu
  cp "$run/eval_bpd.json" "$OUT/smoke_bpd_cpu.json"
  step smoke_sample 30 python3 -m repro sample cifar10-2res-small --profile smoke --device cuda -n 16
  python3 -c 'import json, sys
cuda, cpu = (json.load(open(f"{sys.argv[1]}/smoke_bpd_{d}.json"))["bpd"] for d in ("cuda", "cpu"))
print(f"smoke bpd on the same model: cuda {cuda:.6f}, cpu {cpu:.6f}, difference {cuda - cpu:+.2e}")
' "$OUT"
}

solver() {
  step solver 300 python3 scripts/solver_details.py --device cuda --iterations 100 \
    --out "$OUT/solver_details.json"
}

for group in "${@:-cuda speed}"; do
  for name in $group; do
    case $name in
      cuda | speed | projection | smoke | solver) "$name" ;;
      *) echo "unknown group $name: use cuda, speed, projection, smoke or solver" >&2; exit 2 ;;
    esac
  done
done
