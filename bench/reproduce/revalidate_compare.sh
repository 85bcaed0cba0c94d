#!/usr/bin/env bash
# Validate again the last state of same-budget runs of bench/reproduce/compare_lspet.sh with the current
# evaluation code (e.g. for metrics added since, such as pdj@0.2/limb_joints), on the 900 LSPet
# validation images, pinned to one core:
#
#   bench/reproduce/revalidate_compare.sh CORE NAME [NAME ...]
#
# Reads each run's arguments from runs/compare/summary.tsv; output runs/compare/NAME/revalidate/
# (validate.log and the run folder with val_metrics.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
CORE=${1:?usage: bench/reproduce/revalidate_compare.sh CORE NAME [NAME ...]}
shift
REPO=$(pwd)
DATA=${LIGHTNING_POSE_DATA_ROOT:-$REPO/../shared/data}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_MODE=disabled
for NAME in "$@"; do
    line=$(awk -F'\t' -v n="$NAME" '$1 == n' runs/compare/summary.tsv | tail -1)
    [[ -n $line ]] || { echo "no run $NAME in runs/compare/summary.tsv" >&2; exit 2; }
    RUN_DIR=$(cut -f6 <<< "$line")
    read -r -a ARGS <<< "$(cut -f7 <<< "$line")"
    OUT=$REPO/runs/compare/$NAME/revalidate
    mkdir -p "$OUT"
    (cd "$OUT" && taskset -c "$CORE" "$REPO/.venv/bin/python" -m lightning_pose validate \
        -c "$REPO/conf/lspet.yaml" "${ARGS[@]}" --data.root="$DATA" --data.num_workers=1 \
        --trainer.accelerator=cpu --trainer.devices=1 \
        --ckpt_path="$(dirname "$RUN_DIR")/version_0/checkpoints/last.ckpt" > validate.log 2>&1)
    echo "$NAME: $(ls -td "$OUT"/runs/lspet/version_* | head -1)/val_metrics.json"
done
