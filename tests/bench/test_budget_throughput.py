"""bench/budget.py and bench/throughput.py: the pieces that decide what is trained and timed
(the budget clock, the fit command, the curve read from a real metrics.csv layout, the
synthetic batch and the step timer), without training anything for long."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


budget = load("budget")
throughput = load("throughput")


@pytest.mark.parametrize(
    ("minutes", "clock"), [(60, "00:01:00:00"), (58.5, "00:00:58:30"), (0.25, "00:00:00:15")]
)
def test_budget_clock(minutes: float, clock: str) -> None:
    assert budget.budget_clock(minutes) == clock


def test_fit_command_sets_budget_steps_and_cosine_total() -> None:
    opts, user = budget.parse(
        ["x", "--budget-min", "60", "--steps", "3100", "--channels-last", "--", "-c",
         "conf/model/heatmap_budget.yaml", "--data.batch_size=16"]
    )  # fmt: skip
    cmd = budget.fit_command(opts, user)
    assert cmd[cmd.index("fit") + 1 :][:4] == [
        "-c",
        str(budget.REPO / "conf" / "lspet.yaml"),
        "-c",
        str(budget.REPO / "conf" / "model" / "heatmap_budget.yaml"),
    ]
    for arg in (
        "--trainer.max_time=00:01:00:00",
        "--trainer.max_steps=3100",
        "--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast",
        "--trainer.callbacks+=lightning_pose.callbacks.WallClock",
        "--data.batch_size=16",
    ):
        assert arg in cmd
    assert not any("total_steps" in a for a in cmd)  # the schedule's length is max_steps


def test_curve_keeps_the_validation_rows(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,time/fit_s,time/train_images,train/loss,val/pdj@0.2,val/pdj@0.2/limb_joints\n"
        "0,9,,,0.5,,\n"
        "0,19,30.5,640.0,,0.25,0.2\n"
        "0,29,,,0.4,,\n"
        "1,39,61.0,1280.0,,0.5,0.4\n"
    )
    assert budget.curve(path) == [
        {"time/fit_s": 30.5, "time/train_images": 640.0, "val/pdj@0.2/limb_joints": 0.2,
         "val/pdj@0.2": 0.25},
        {"time/fit_s": 61.0, "time/train_images": 1280.0, "val/pdj@0.2/limb_joints": 0.4,
         "val/pdj@0.2": 0.5},
    ]  # fmt: skip


def test_synthetic_batch_has_the_real_shapes_and_dtypes() -> None:
    real = {
        "image": torch.zeros(4, 3, 16, 16),
        "keypoints_norm": torch.zeros(4, 14, 2),
        "labelled": torch.zeros(4, 14, dtype=torch.bool),
        "visible": torch.zeros(4, 14, dtype=torch.bool),
        "box": torch.ones(4, 4),
    }
    fake = throughput.synthetic_batch(real)
    assert {k: (v.shape, v.dtype) for k, v in fake.items()} == {
        k: (v.shape, v.dtype) for k, v in real.items()
    }
    assert fake["image"].std() > 0.1 and fake["labelled"].all()
    assert fake["keypoints_norm"].abs().max() <= 0.4


def test_step_timer_counts_images_after_warmup_and_stops() -> None:
    class Trainer:
        global_step, should_stop = 0, False

    trainer, timer = Trainer(), throughput.StepTimer(warmup=2, seconds=0.0)
    batch = {"image": torch.zeros(8, 3, 4, 4)}
    for step in range(4):
        trainer.global_step = step
        timer.on_train_batch_start(trainer, None, batch, step)
        timer.on_train_batch_end(trainer, None, None, batch, step)
        if trainer.should_stop:
            break
    assert step == 2 and timer.images == 8 and timer.images_per_s > 0


def test_flush_denormals_reaches_every_thread_only_before_the_pool_starts() -> None:
    """bench/throughput.py --flush-denormal: set first, every thread flushes; set after the
    intra-op pool has started, only the main thread does, and the function says so."""
    child = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(BENCH / 'throughput.py')!r})\n"
        "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)\n"
        "if sys.argv[1] == 'late':\n"
        "    torch.ones(1 << 21) * 2  # starts the intra-op pool\n"
        "print(t.flush_denormals(), t.denormals_flushed())\n"
    )
    env = os.environ | {"OMP_NUM_THREADS": "2"}
    for when, expected in (("first", "True True"), ("late", "False False")):
        done = subprocess.run(
            [sys.executable, "-c", child, when], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split()[-2:] == expected.split(), when
