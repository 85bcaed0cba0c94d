"""WarmupCosineLR: known values, bad arguments, and per-step stepping in a real fit whose
length (``trainer.max_steps``) sets the schedule's."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from lightning_pose.cli import main
from lightning_pose.models.schedules import PlannedCosineLR, WarmupCosineLR, cosine_factor
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]


def rates(scheduler: WarmupCosineLR, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_warmup_then_cosine_known_values() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    lrs = rates(WarmupCosineLR(optimizer, total_steps=5, warmup_steps=1), 6)
    # step 0: warm-up (0 + 1) / (1 + 1); steps 1..5: cosine over 4 steps, 0 at total_steps
    expected = [1.0] + [2.0 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)]
    assert lrs == pytest.approx(expected, abs=1e-12)


def test_final_fraction_is_the_floor() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    lrs = rates(WarmupCosineLR(optimizer, total_steps=4, final_lr_fraction=0.1), 5)
    assert lrs[0] == pytest.approx(1.0, abs=1e-12) and lrs[4] == pytest.approx(0.1, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"total_steps": 5, "warmup_steps": 5}, r"warmup_steps must be in \[0, total_steps=5\)"),
        ({"total_steps": 5, "final_lr_fraction": 1.5}, r"final_lr_fraction must be in \[0, 1\]"),
        ({}, r"takes its length from trainer\.max_steps, which is not set"),
        ({"run_steps": 0}, r"takes its length from trainer\.max_steps, which is not set"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=match):
        WarmupCosineLR(optimizer, **kwargs)


def test_a_floor_needs_one_peak_rate() -> None:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (1.0, 0.1)]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    with pytest.raises(ValueError, match=r"one peak rate .* \[0.1, 1.0\]"):
        WarmupCosineLR(optimizer, total_steps=4, final_lr_fraction=0.1)
    scheduler = WarmupCosineLR(optimizer, total_steps=4)  # no floor: each group decays to 0
    rates(scheduler, 4)
    assert scheduler.get_last_lr() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_matches_the_closed_form_over_a_budget_run() -> None:
    """The SequentialLR composition gives the closed form at every step of a 3,000-step run
    (the recursive cosine of CosineAnnealingLR does not drift)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    lrs = rates(WarmupCosineLR(optimizer, total_steps=3000, warmup_steps=100), 3001)
    warmup = [(s + 1) / 101 for s in range(100)]
    cosine = [0.5 * (1 + math.cos(math.pi * (s - 100) / 2900)) for s in range(100, 3001)]
    expected = [2e-3 * f for f in warmup + cosine]
    assert lrs == pytest.approx(expected, rel=0, abs=1e-15)


def test_fit_steps_the_schedule_every_optimiser_step(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = main(
        [
            "fit",
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *tiny_args(tiny_root, max_samples=None),
            "--trainer.devices=1",
            "--trainer.max_steps=6",
            "--trainer.limit_val_batches=0",
            "--trainer.log_every_n_steps=1",
            "--model.optimizer=torch.optim.SGD",
            "--model.optimizer.lr=0.1",
            "--model.scheduler=lightning_pose.models.schedules.WarmupCosineLR",
            "--model.scheduler.warmup_steps=2",
        ]
    )
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert cli.trainer.lr_scheduler_configs[0].interval == "step"
    assert scheduler.last_epoch == 6  # stepped after each of the 6 optimiser steps
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)
    # the rate the optimiser used at each step, as LearningRateMonitor logged it
    rows = list(csv.DictReader(open(Path(cli.trainer.log_dir) / "metrics.csv")))
    logged = [float(r["lr-SGD"]) for r in rows if r.get("lr-SGD")]
    warmup = [0.1 / 3, 0.2 / 3]
    cosine = [0.1 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert logged == pytest.approx(warmup + cosine, abs=1e-9)


def test_run_steps_size_an_unset_length_only() -> None:
    """``run_steps`` (what ``configure_optimizers`` passes: ``trainer.max_steps``) is the
    length where ``total_steps`` is unset; a given ``total_steps`` wins; a warm-up not shorter
    than the run shrinks to a tenth of it, with a warning, only when the run sets the length."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    by_run = WarmupCosineLR(optimizer, warmup_steps=3, run_steps=12)
    assert (by_run.total_steps, by_run.warmup_steps) == (12, 3)
    given = WarmupCosineLR(optimizer, total_steps=8, warmup_steps=3, run_steps=12)
    assert (given.total_steps, given.warmup_steps) == (8, 3)
    with pytest.warns(UserWarning, match=r"warm-up \(100 steps\) is not shorter .* 2 warm-up"):
        short = WarmupCosineLR(optimizer, warmup_steps=100, run_steps=20)
    assert (short.total_steps, short.warmup_steps) == (20, 2)
    with pytest.raises(ValueError, match=r"warmup_steps must be in \[0, total_steps=5\)"):
        WarmupCosineLR(optimizer, total_steps=5, warmup_steps=5, run_steps=20)


def test_state_dict_resumes_the_schedule_at_its_step() -> None:
    """What a checkpoint stores (the optimiser's and the schedule's state) continues the
    schedule where it stopped: the rates after resuming at step 7 equal an unbroken run's."""

    def build() -> WarmupCosineLR:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return WarmupCosineLR(optimizer, total_steps=12, warmup_steps=3)

    unbroken = rates(build(), 12)
    first = build()
    rates(first, 7)
    resumed = build()
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    resumed.load_state_dict(first.state_dict())
    assert resumed.last_epoch == 7
    assert rates(resumed, 5) == pytest.approx(unbroken[7:], rel=0, abs=1e-15)


def test_a_run_without_max_steps_is_refused_with_the_key(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *tiny_args(tiny_root, max_samples=None),
        "--trainer.devices=1",
        "--trainer.max_epochs=1",
        "--model.scheduler=lightning_pose.models.schedules.WarmupCosineLR",
    ]
    with pytest.raises(ValueError, match=r"trainer\.max_steps, which is not set"):
        main(args)
    # a length given to the schedule itself needs no max_steps
    cli = main([*args, "--model.scheduler.total_steps=3", "--trainer.limit_val_batches=0"])
    assert cli.trainer.lr_scheduler_configs[0].scheduler.total_steps == 3


def test_a_run_shorter_than_the_warm_up_warms_up_a_tenth_of_it(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget recipe's 100 warm-up steps in a 20-step check: 2 warm-up steps, a warning,
    and the rate at 0 at the end of the run."""
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"warm-up \(100 steps\) is not shorter .* 2 warm-up"):
        cli = main(
            [
                "fit", "-c", str(REPO / "conf" / "lspet.yaml"),
                *tiny_args(tiny_root, max_samples=None),
                "--trainer.devices=1", "--trainer.max_steps=20", "--trainer.limit_val_batches=0",
                "--model.scheduler=lightning_pose.models.schedules.WarmupCosineLR",
                "--model.scheduler.warmup_steps=100",
            ]
        )  # fmt: skip
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert (scheduler.total_steps, scheduler.warmup_steps) == (20, 2)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_planned_cosine_without_a_replan_is_warmup_cosine() -> None:
    """PlannedCosineLR (closed form) gives WarmupCosineLR's rates at every step of a run."""

    def build(cls):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
        return cls(optimizer, total_steps=300, warmup_steps=10, final_lr_fraction=0.05)

    planned, reference = rates(build(PlannedCosineLR), 301), rates(build(WarmupCosineLR), 301)
    torch.testing.assert_close(planned, reference, rtol=0, atol=1e-15)


def test_a_replan_keeps_the_rate_and_ends_at_the_floor() -> None:
    """Re-planned at step 20 of 100 (warm-up 10) to end at 50: the rates up to step 20 are
    unchanged, the cosine's progress p(20) = 10/90 then runs linearly to 1 at step 50, and
    the rate stays at the floor after it."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PlannedCosineLR(optimizer, total_steps=100, warmup_steps=10, final_lr_fraction=0.1)
    before = rates(scheduler, 20)
    scheduler.replan(20, 50)
    after = rates(scheduler, 40)  # steps 20..59
    p20 = 10 / 90
    expected = [cosine_factor(min(1.0, p20 + (1 - p20) * k / 30), 0.1) for k in range(40)]
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(
        after[0], 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p20)), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(after[30:], [0.1] * 10, rtol=0, atol=1e-15)
    assert before[-1] > after[0] and scheduler.total_steps == 50
    # a later re-plan to a longer run: continuous again, floor at its end
    scheduler = PlannedCosineLR(optimizer, total_steps=100, warmup_steps=10)
    rates(scheduler, 40)
    at_40 = scheduler.get_last_lr()[0]
    scheduler.replan(40, 400)
    torch.testing.assert_close(scheduler.get_last_lr()[0], at_40, rtol=0, atol=1e-15)
    torch.testing.assert_close(optimizer.param_groups[0]["lr"], at_40, rtol=0, atol=1e-15)
    torch.testing.assert_close(rates(scheduler, 361)[-1], 0.0, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"total_steps=40 must be after step 40"):
        scheduler.replan(40, 40)


def test_a_replanned_schedule_resumes_from_its_state() -> None:
    """The plan is in the state dict: a schedule restored at step 30 after a re-plan at 15
    continues with the unbroken schedule's rates."""

    def build() -> PlannedCosineLR:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return PlannedCosineLR(optimizer, total_steps=100, warmup_steps=5)

    unbroken = build()
    rates(unbroken, 15)
    unbroken.replan(15, 60)
    expected = rates(unbroken, 45)[15:]
    first = build()
    rates(first, 15)
    first.replan(15, 60)
    rates(first, 15)
    resumed = build()
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    resumed.load_state_dict(first.state_dict())
    assert resumed.knots == first.knots and resumed.total_steps == 60
    torch.testing.assert_close(rates(resumed, 30), expected, rtol=0, atol=1e-15)


def test_a_replan_shorter_than_the_warm_up_ends_it_sooner_without_a_jump() -> None:
    """A 100-step warm-up re-planned at step 12 to a 70-step run: the warm-up ends at
    min(100, max(70 // 10, 2 x 12), 12 + 58 // 2) = 24, rising linearly from step 12's rate
    (13/101 of the peak) to the peak; the cosine then runs to the floor at step 70."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = PlannedCosineLR(optimizer, total_steps=1000, warmup_steps=100)
    rates(scheduler, 12)
    scheduler.replan(12, 70)
    assert (scheduler.warmup_steps, scheduler.total_steps) == (24, 70)
    lrs = rates(scheduler, 59)  # steps 12..70
    warmup = [13 / 101 + (1 - 13 / 101) * k / 12 for k in range(12)]
    cosine = [cosine_factor(k / 46, 0.0) for k in range(47)]
    torch.testing.assert_close(lrs, warmup + cosine, rtol=0, atol=1e-15)
