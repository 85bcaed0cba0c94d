"""The main job (``make train``, ``lightning-pose budget``): fit the package's best CPU recipe
for a wall-clock budget, then show what the model does.

1. ``fit`` ``conf/lspet.yaml`` + :data:`RECIPE` (today ``conf/model/heatmap_budget.yaml``, the
   coarse heat-map model that reached 36 % PCK@0.2 on the LSPet limb joints in an hour on a
   2-core CPU; ``docs/RESULTS.md``) with channels-last, for ``--budget-min`` minutes of wall
   time. The steps and the cosine learning-rate schedule follow the budget on any machine:
   :class:`lightning_pose.callbacks.BudgetSchedule` measures the seconds per step and per
   validation after the warm-up and the first validation, sets the schedule's length so that
   the rate reaches its floor when the budget ends (the end-of-run validation and checkpoint
   included), re-plans when the machine's speed changes, and logs each plan. Until measured,
   the plan is provisional: :data:`BF16_CPU_STEPS_PER_MIN` (``bf16-mixed``, which the recipe's
   ``trainer.precision: auto`` picks where the CPU computes bf16 natively:
   :mod:`lightning_pose.runtime.precision`) or :data:`CPU_STEPS_PER_MIN` (fp32) x the budget on
   the CPU, :data:`GPU_STEPS` on a GPU. ``--steps N`` instead trains a fixed ``N`` steps
   with a fixed schedule of ``N`` steps (``trainer.max_time`` still caps it at the budget).
2. ``validate`` the final state (``last.ckpt``) on the 900 validation images: the metrics
   table ``<run>/validate/val_metrics.md`` (per joint group, per limb group).
3. ``predict`` the first :data:`HANDFUL` validation images (a fixed handful) with overlays:
   ``<run>/predict/overlays/*.png``, and ``<run>/predict/overlays_grid.png`` with all of them.
4. Print where the table and the pictures are.

Usage::

    lightning-pose budget [--budget-min 60] [--steps N] [-- extra CLI overrides]

The overrides after ``--`` go to all three commands (e.g. ``--data.root=...``); validate and
predict run in fp32 (``--trainer.precision=32-true``) whatever precision fit trained in.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from lightning_pose.runtime.files import write_bytes_atomic
from lightning_pose.runtime.precision import AUTO, choose_precision

REPO = Path(__file__).resolve().parents[2]  # lightning_pose/cli/budget.py
DATASET = "conf/lspet.yaml"
RECIPE = "conf/model/heatmap_budget.yaml"
CPU_STEPS_PER_MIN = 50  # the one-hour run: 2,900 steps in 54.6 min of fit (results/HISTORY.md)
# bf16-mixed on a CPU with native bf16: the fp32 rate x 1.29, the fit loop's measured speed-up
# on a quiet Zen 4 with avx512_bf16 (0.97 vs 0.75 steps/s, RESULTS.md "Precision")
BF16_CPU_STEPS_PER_MIN = 64
GPU_STEPS = 20_000  # about 79 epochs of the 8,100 training images at batch 32
WARMUP_STEPS = 100
HANDFUL = 8


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lightning-pose budget",
        description="The main job: fit the best CPU recipe for a budget, validate the final "
        "checkpoint, predict a handful of validation images with overlays.",
    )
    parser.add_argument(
        "--budget-min", type=float, default=60.0, help="wall-clock budget of fit, minutes"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="a fixed number of optimiser steps (and cosine schedule length), capped by the "
        "budget; default: as many as the budget buys, measured during the fit",
    )
    parser.add_argument("--recipe", default=RECIPE, help=f"model config (default {RECIPE})")
    parser.add_argument("overrides", nargs="*", help="after --: CLI overrides for every command")
    args = parser.parse_args(list(argv))
    if args.budget_min <= 0:
        parser.error(f"--budget-min must be > 0 minutes, got {args.budget_min}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


def default_steps(budget_min: float, precision: str | None = None) -> int:
    """The provisional guess of the steps the budget buys, until ``BudgetSchedule`` has
    measured them: :data:`GPU_STEPS` on a GPU, else the CPU's rate x the budget:
    :data:`BF16_CPU_STEPS_PER_MIN` where the fit trains in ``bf16-mixed`` (``precision``, or
    what the recipe's ``auto`` picks on this CPU: ``precision.choose_precision``), else
    :data:`CPU_STEPS_PER_MIN` (fp32)."""
    if torch.cuda.is_available():
        return GPU_STEPS
    if precision is None or precision == AUTO:
        precision = choose_precision("cpu").precision
    rate = BF16_CPU_STEPS_PER_MIN if precision.startswith("bf16") else CPU_STEPS_PER_MIN
    return max(1, round(rate * budget_min))


def forced_precision(overrides: Sequence[str]) -> str | None:
    """The ``--trainer.precision`` among the user's overrides (the last one), else None."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith("--trainer.precision=")]
    return values[-1] if values else None


def max_time(minutes: float) -> str:
    """``trainer.max_time`` for ``minutes``: ``DD:HH:MM:SS``."""
    seconds = max(1, int(round(minutes * 60)))
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def default_augment_on() -> str:
    """``data.augment_on`` for the main job: ``"device"`` on a GPU (each batch augmented on the
    GPU in one batched warp, :mod:`lightning_pose.data.device_augment`, so JPEG decoding and
    per-sample augmentation in CPU workers do not set the GPU's pace), ``"cpu"`` elsewhere (the
    workers' albumentations path, whose runs the CPU results were measured with)."""
    return "device" if torch.cuda.is_available() else "cpu"


def fit_args(
    configs: list[str],
    steps: int,
    budget_min: float,
    planned: bool = True,
    augment_on: str = "cpu",
) -> list[str]:
    """The ``fit`` command: ``steps`` optimiser steps within ``budget_min`` minutes; where
    ``planned``, ``steps`` is only the provisional plan and ``BudgetSchedule`` sizes the run
    and the schedule (``PlannedCosineLR``) from the measured rate (no epoch limit).
    ``augment_on`` is ``data.augment_on`` (:func:`default_augment_on`)."""
    warmup = min(WARMUP_STEPS, max(steps // 10, 0))
    # any recipe's warm-up + cosine, re-plannable (the same arguments as WarmupCosineLR's)
    planned_schedule = "--model.init_args.scheduler=lightning_pose.models.schedules.PlannedCosineLR"
    args = [
        "fit", *configs,
        f"--trainer.max_steps={steps}",
        f"--trainer.max_time={max_time(budget_min)}",
        *([planned_schedule] if planned else []),
        f"--model.init_args.scheduler.init_args.warmup_steps={warmup}",
        f"--data.augment_on={augment_on}",
        "--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast",
        "--trainer.callbacks+=lightning_pose.callbacks.WallClock",
    ]  # fmt: skip
    if planned:
        args += [
            "--trainer.max_epochs=-1",
            "--trainer.callbacks+=lightning_pose.callbacks.BudgetSchedule",
            f"--trainer.callbacks.budget_min={budget_min}",
        ]
    return args


def overlay_grid(paths: Sequence[Path], side: int = 256, columns: int = 4) -> np.ndarray:
    """The overlay images, each letterboxed to ``side`` x ``side``, in a grid (BGR uint8)."""
    tiles = []
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"main job: cannot read the overlay {path}")
        scale = side / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        tile = np.zeros((side, side, 3), np.uint8)
        h, w = image.shape[:2]
        tile[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = image
        tiles.append(tile)
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns 0. See the module docstring.

    Raises:
        FileNotFoundError: fit wrote no ``last.ckpt``.
    """
    from lightning_pose.cli import main as cli_main
    from lightning_pose.runtime.wandb_mode import finish_wandb_run

    args = parse_args(sys.argv[1:] if argv is None else argv)
    planned = args.steps is None
    steps = args.steps or default_steps(args.budget_min, forced_precision(args.overrides))
    configs = ["-c", str(REPO / DATASET), "-c", str(REPO / args.recipe)]
    device = "a GPU" if torch.cuda.is_available() else "the CPU"
    sizing = (
        f"steps planned from the measured rate (provisional {steps})"
        if planned
        else f"{steps} steps"
    )
    print(
        f"main job: fit {args.recipe} on {device}, {sizing}, budget {args.budget_min} min, "
        f"augmentation on the {'GPU' if default_augment_on() == 'device' else 'CPU workers'}"
    )

    start = time.perf_counter()
    augment_on = default_augment_on()
    fit = fit_args(configs, steps, args.budget_min, planned, augment_on)
    cli = cli_main([*fit, *args.overrides])
    finish_wandb_run()
    fit_s = time.perf_counter() - start
    run = Path(cli.trainer.log_dir).resolve()
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise FileNotFoundError(f"main job: fit wrote no {ckpt}")
    steps_done = cli.trainer.global_step

    base = [*configs, f"--ckpt_path={ckpt}", "--trainer.logger=false"]
    # evaluation in fp32 whatever fit trained in: a --trainer.precision override is a training
    # speed lever (lightning_pose.runtime.precision.evaluation_precision)
    fp32 = "--trainer.precision=32-true"
    validate_dir = f"--trainer.default_root_dir={run / 'validate'}"
    cli_main(["validate", *base, validate_dir, *args.overrides, fp32])
    table = run / "validate" / "val_metrics.md"

    predicted = run / "predict"
    cli_main(
        [
            "predict", *base, f"--trainer.default_root_dir={predicted}", *args.overrides, fp32,
            f"--data.max_samples={HANDFUL}",  # the first validation images (LSPet: test = val)
            f"--trainer.callbacks.output_dir={predicted}",
            "--trainer.callbacks.draw_overlays=true",
        ]
    )  # fmt: skip
    overlays = sorted((predicted / "overlays").glob("*.png"))
    grid = predicted / "overlays_grid.png"
    ok, png = cv2.imencode(".png", overlay_grid(overlays))
    if not ok:
        raise OSError(f"main job: cannot encode {grid}")
    write_bytes_atomic(grid, png.tobytes())

    print(
        f"\nmain job done: fit {fit_s / 60:.2f} of {args.budget_min:g} min ({steps_done} steps), "
        f"checkpoint {ckpt}\n"
        f"  metrics table: {table}\n"
        f"  predictions:   {predicted / 'predictions.npz'}\n"
        f"  overlays:      {predicted / 'overlays'} ({len(overlays)} images), all in {grid}"
    )
    return 0
