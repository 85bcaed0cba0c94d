#!/bin/bash
# Does a refactor change what the package trains? Fit every family for 16 steps on real LSPet
# (the first 64 training images, batch 8, no loader workers, seed 0; a validation on 4 batches
# after each 8-step epoch) with two checkouts, then compare the per-step training losses and
# the final validation metrics (bench/same_behaviour.py prints the table).
#
#   bench/same_behaviour.sh OLD_TREE NEW_TREE OUT [variant ...]
#   e.g. git worktree add /tmp/old f54e7cc && bench/same_behaviour.sh /tmp/old . /tmp/same
#
# Each tree runs with its own conf/ and its code first on PYTHONPATH, in this checkout's .venv.
# heatmap_budget's cosine schedule is given its length (3,000 steps) explicitly, so trees
# that take it from trainer.max_steps and trees that read it from the YAML train alike.
set -u
[ $# -ge 3 ] || { echo "usage: $0 OLD_TREE NEW_TREE OUT [variant ...]" >&2; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); out=$(realpath -m "$3"); shift 3
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(deeppose deeppose_alexnet heatmap_budget heatmap_effnet tompson multitask)
repo=$(cd "$(dirname "$0")/.." && pwd)
py="$repo/.venv/bin/python"
export WANDB_MODE=disabled
export LIGHTNING_POSE_DATA_ROOT="${LIGHTNING_POSE_DATA_ROOT:-$repo/../shared/data}"
status=0
for variant in "${variants[@]}"; do
  for side in old new; do
    code=$([ $side = old ] && echo "$old" || echo "$new")
    run="$out/$side/$variant"; rm -rf "$run"; mkdir -p "$run"
    extra=()
    [ "$variant" = heatmap_budget ] && extra+=(--model.init_args.scheduler.init_args.total_steps=3000)
    (cd "$run" && PYTHONPATH="$code" "$py" -m lightning_pose fit -c "$code/conf/lspet.yaml" \
      -c "$code/conf/model/$variant.yaml" --data.max_samples=64 --data.batch_size=8 \
      --data.num_workers=0 --seed_everything=0 --trainer.max_steps=16 \
      --trainer.val_check_interval=1.0 --trainer.limit_val_batches=4 \
      --trainer.log_every_n_steps=1 --trainer.accelerator=cpu --trainer.devices=1 \
      "${extra[@]}" > log.txt 2>&1) || { echo "$variant $side failed: $run/log.txt" >&2; status=1; }
  done
done
"$py" "$repo/bench/same_behaviour.py" "$out"
exit $status
