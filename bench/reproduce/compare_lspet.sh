#!/usr/bin/env bash
# Same-CPU-budget comparison of the model families on LSPet. One configuration is trained for BUDGET
# wall-clock on ONE CPU core (taskset; one torch thread, one data worker; batch 16; constant LR;
# no validation during training, so the budget is all training), then its last state is
# validated on all 900 LSPet validation images (every 10th image; not counted in the budget).
#
#   bench/reproduce/compare_lspet.sh NAME CORE BUDGET [CLI args, e.g. -c conf/model/tompson.yaml ...]
#
# Output: runs/compare/NAME/ (fit and validate logs, metrics.csv, val_metrics.md) and one line
# in runs/compare/summary.tsv; `lightning-pose report compare` prints the table of docs/results/HISTORY.md
# ("Same CPU budget on LSPet"); docs/RESULTS.md, "Families at the same CPU budget", is current.
set -euo pipefail
cd "$(dirname "$0")/../.."
NAME=${1:?usage: bench/reproduce/compare_lspet.sh NAME CORE BUDGET [CLI args]}
CORE=${2:?give the CPU core to pin to}
BUDGET=${3:?give the budget, e.g. 00:00:20:00}
shift 3
REPO=$(pwd)
PY=$REPO/.venv/bin/python
DATA=${LIGHTNING_POSE_DATA_ROOT:-$REPO/../shared/data}
OUT=$REPO/runs/compare/$NAME
USER_ARGS=()
while (( $# )); do  # config files relative to the repository, as given
    if [[ $1 == -c ]]; then USER_ARGS+=(-c "$(realpath "$2")"); shift 2
    else USER_ARGS+=("$1"); shift; fi
done
mkdir -p "$OUT"
cd "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WANDB_MODE=${WANDB_MODE:-offline}
ARGS=(-c "$REPO/conf/lspet.yaml" "${USER_ARGS[@]}" --data.root="$DATA" --data.num_workers=1
      --trainer.accelerator=cpu --trainer.devices=1)
start=$(date +%s)
taskset -c "$CORE" "$PY" -m lightning_pose fit "${ARGS[@]}" --trainer.max_time="$BUDGET" \
    --data.batch_size=16 --trainer.limit_val_batches=0 --trainer.num_sanity_val_steps=0 \
    --model.init_args.scheduler=null > fit.log 2>&1
fit_s=$(( $(date +%s) - start ))
RUN=$(ls -td runs/lspet/version_* | head -1)
steps=$(ls "$RUN"/checkpoints/last.ckpt > /dev/null && "$PY" -c "
import torch, sys; print(torch.load(sys.argv[1], map_location='cpu', weights_only=True)['global_step'])" \
    "$RUN/checkpoints/last.ckpt")
start=$(date +%s)
taskset -c "$CORE" "$PY" -m lightning_pose validate "${ARGS[@]}" \
    --ckpt_path="$RUN/checkpoints/last.ckpt" > validate.log 2>&1
val_s=$(( $(date +%s) - start ))
VAL=$(ls -td runs/lspet/version_* | head -1)
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$(git -C "$REPO" rev-parse --short HEAD)" \
    "$steps" "$fit_s" "$val_s" "$OUT/$VAL" "${USER_ARGS[*]}" >> "$REPO/runs/compare/summary.tsv"
echo "$NAME: $steps steps in ${fit_s}s, validated in ${val_s}s -> $OUT/$VAL"
