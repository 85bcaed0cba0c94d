"""bench/reproduce/budget.py: what is trained (the budget clock, the fit command) and the curve
read from a real metrics.csv layout, without training anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench import load

budget = load("reproduce/budget")


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
