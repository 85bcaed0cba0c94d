#!/bin/bash
# RESULTS.md "Cascade depth": DeepPose stage 1 (506 steps of 32), then stage 2 on top of it (120
# steps of 8 x 14 sub-images, error statistics from 500 training images), three seeds; both
# stages are scored in the stage-2 run (per_image_val.csv and per_image_val_stage1.csv). Run from
# the repository root with an empty runs/lspet (seed S's stage-1 run is version 2S).
#
#   bench/reproduce/cascade_depth_cpu.sh
#   lightning-pose report intervals "depth 1=runs/lspet/version_1/per_image_val_stage1.csv,..." \
#       "depth 2=runs/lspet/version_1/per_image_val.csv,..." --baseline "depth 1"
set -eu
[ ! -e runs/lspet ] || { echo "runs/lspet exists: move it away first" >&2; exit 2; }
for S in 0 1 2; do
  C="-c conf/lspet.yaml -c conf/model/deeppose_cascade.yaml --seed_everything=$S --data.input_size=160 --data.cache_images=true --data.num_workers=1 --trainer.precision=auto --model.init_args.trunk.init_args.frozen_blocks=2 --model.init_args.scheduler=lightning_pose.models.schedules.WarmupCosineLR --model.init_args.scheduler.init_args.warmup_steps=100 --model.init_args.optimizer.init_args.lr=0.002"
  python -m lightning_pose fit $C --model.init_args.num_stages=1 --data.batch_size=32 --trainer.max_steps=506 --trainer.val_check_interval=1.0
  STAGE1=runs/lspet/version_$((2 * S))/checkpoints
  python -m lightning_pose fit $C --model.init_args.num_stages=2 --model.init_args.init_checkpoint=$STAGE1/last.ckpt --model.init_args.error_stats_images=500 --data.batch_size=8 --model.init_args.scheduler.init_args.warmup_steps=12 --trainer.max_steps=120 --trainer.val_check_interval=120
done
