#!/usr/bin/env bash
# DeepPose cascade on LSPet, CPU: train stage S on top of a checkpoint of stages 1..S-1 with the
# same wall-clock budget as stage 1 (the main job), then validate every stage of the result on
# the same 900 validation images. Results: docs/RESULTS.md.
#
#   bench/reproduce/cascade_lspet.sh <checkpoint of stages 1..S-1> S [budget, default 00:00:25:00]
set -euo pipefail
cd "$(dirname "$0")/../.."
PREVIOUS=${1:?usage: bench/reproduce/cascade_lspet.sh <checkpoint of stages 1..S-1> S [budget]}
STAGES=${2:?give the cascade depth S (>= 2)}
BUDGET=${3:-00:00:25:00}
PY=.venv/bin/python
CONFIGS=(-c conf/lspet.yaml -c conf/model/deeppose_cascade.yaml
         --model.init_args.num_stages="$STAGES")
# 8 images x 14 sub-images = 112 stage-S inputs a step; validate every VAL_EVERY steps (a full
# validation runs stage 1 once and every later stage on 14 sub-images per image: minutes).
# Lightning needs VAL_EVERY <= the training batches of an epoch (1012 on LSPet at batch 8).
VAL_EVERY=${VAL_EVERY:-50}
start=$(date +%s)
$PY -m lightning_pose fit "${CONFIGS[@]}" --model.init_args.init_checkpoint="$PREVIOUS" \
    --trainer.max_time="$BUDGET" --data.batch_size=8 --trainer.val_check_interval="$VAL_EVERY"
echo "fit wall_s=$(( $(date +%s) - start ))"
RUN=$(ls -td runs/lspet/version_* | head -1)
echo "run: $RUN"
start=$(date +%s)
$PY -m lightning_pose validate "${CONFIGS[@]}" --ckpt_path="$RUN/checkpoints/last.ckpt"
echo "validate wall_s=$(( $(date +%s) - start ))"
echo "validation run: $(ls -td runs/lspet/version_* | head -1)"
