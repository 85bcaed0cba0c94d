"""BudgetSchedule: the planner's known answers, and real fits on tiny data under a simulated
clock (no waiting) on a fast, a slow and a slowing machine, each ending at its budget with the
learning rate at its floor, and a resume continuing the plan it saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_pose.callbacks import BudgetSchedule
from lightning_pose.callbacks.budget_schedule import plan_steps, validations_between
from lightning_pose.cli import main
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]
BUDGET_MIN = 0.25  # simulated: 15 s
STEPS_PER_EPOCH = 6  # of the tiny LSPet's 11 batches (limit_train_batches); a validation each


def test_validations_between_known_values() -> None:
    # validations at 10, 20, 30, ... (the latest done at 10); from the step just done (its
    # validation runs next) to the last step (its validation is the end-of-run one, excluded)
    assert validations_between(11, 40, 10, 10) == 2  # 20, 30
    assert validations_between(12, 41, 10, 10) == 3  # 20, 30, 40
    assert validations_between(20, 21, 10, 10) == 1  # 20, due after this step
    assert validations_between(12, 20, 10, 10) == 0
    assert validations_between(0, 100, 0, None) == 0


def test_plan_steps_known_values() -> None:
    # no validation: 100 s at 0.5 s a step buys 200 steps
    assert plan_steps(7, 100.0, 0.5, 0.0, 0, None) == 207
    # a 5 s validation every 10 steps: 100 steps cost 50 s + 9 validations (10..90) = 95 s;
    # 101 steps cost 50.5 s + 10 validations = 100.5 s
    assert plan_steps(0, 100.0, 0.5, 5.0, 0, 10) == 100
    assert plan_steps(0, 100.5, 0.5, 5.0, 0, 10) == 101
    # at step 10, its validation still to come: 10 more steps cost 5 s + 5 s
    assert plan_steps(10, 10.0, 0.5, 5.0, 0, 10) == 20
    # no time left: no step
    assert plan_steps(30, -4.0, 0.5, 5.0, 0, 10) == 30
    with pytest.raises(ValueError, match="step_s must be > 0"):
        plan_steps(0, 10.0, 0.0, 0.0, 0, None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budget_min": 0}, "budget_min must be > 0"),
        ({"budget_min": 1, "tolerance": 1.0}, r"tolerance must be in \(0, 1\)"),
        ({"budget_min": 1, "window": 1}, "window must be >= 2"),
        ({"budget_min": 1, "reserve_factor": 0.5}, "reserve_factor must be >= 1"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BudgetSchedule(**kwargs)


class SimulatedMachine(pl.Callback):
    """A clock that advances by ``step_s(step)`` seconds for each training step, ``val_s`` for
    each validation (the sanity check's one batch, the tiny LSPet's whole validation set,
    included) and ``setup_s`` before training: what the fit would take."""

    def __init__(self, step_s: Callable[[int], float], val_s: float, setup_s: float) -> None:
        self.step_s, self.val_s, self.setup_s = step_s, val_s, setup_s
        self.now = 0.0
        self.lrs: dict[int, float] = {}  # the rate each optimiser step used
        self.end_s: float | None = None

    def clock(self) -> float:
        return self.now

    def on_train_start(self, trainer, pl_module) -> None:
        self.now += self.setup_s

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.now += self.step_s(trainer.global_step)
        self.lrs[trainer.global_step] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_validation_end(self, trainer, pl_module) -> None:
        self.now += self.val_s

    def on_train_end(self, trainer, pl_module) -> None:
        self.end_s = self.now


class StopAt(pl.Callback):
    """Stops the fit after optimiser step ``step`` (an interruption, resumed from last.ckpt)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def fit(
    tiny_root: Path,
    machine: SimulatedMachine,
    extra: list[pl.Callback] = (),
    ckpt_path: str | None = None,
    checkpoints: bool = False,
    warmup: int = 4,
) -> tuple[pl.Trainer, BudgetSchedule]:
    """A real fit of the tiny LSPet (ResNet-18 at 64 px) with the budget recipe's schedule
    (``warmup`` steps, a provisional plan of 60 steps; a 5-step window) under the simulated
    clock; ``last.ckpt`` only where ``checkpoints`` (each save costs real time)."""
    cli = main(
        [
            "-c", str(REPO / "conf" / "lspet.yaml"),
            *tiny_args(tiny_root, max_samples=None),
            "--trainer.devices=1", "--trainer.max_steps=60", "--trainer.max_epochs=-1",
            f"--trainer.limit_train_batches={STEPS_PER_EPOCH}", "--trainer.val_check_interval=1.0",
            "--trainer.enable_progress_bar=false",
            "--model.optimizer=torch.optim.SGD", "--model.optimizer.lr=0.01",
            # no file writers; last.ckpt where asked
            *(
                ["--trainer.callbacks=lightning_pose.callbacks.LatestCheckpoint"]
                if checkpoints
                else ["--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]
            ),
            "--model.scheduler=lightning_pose.models.schedules.PlannedCosineLR",
            f"--model.scheduler.warmup_steps={warmup}",
        ],
        run=False,
    )  # fmt: skip
    budget = BudgetSchedule(BUDGET_MIN, window=5, clock=machine.clock)
    # first, so that the clock has moved before any other callback (a checkpoint) reads it
    cli.trainer.callbacks[:0] = [machine, budget, *extra]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli.trainer, budget


def slowing(step: int) -> float:
    """0.2 s a step, slowing to 0.8 s from step 8 to step 20 (another job starts)."""
    return 0.2 + 0.6 * min(max(step - 8, 0), 12) / 12


@pytest.mark.parametrize(
    ("step_s", "val_s", "warmup", "kinds"),
    [
        (lambda s: 0.4, 0.5, 4, ["provisional", "measured"]),  # 60 provisional -> ~26 steps
        (lambda s: 1.0, 1.0, 4, ["provisional", "measured"]),  # 60 provisional -> ~10 steps
        (slowing, 1.0, 4, None),  # re-planned on the way
        # the budget buys fewer steps than the 40-step warm-up: planned after 5 steps, the
        # warm-up shortened (to step 10), the rate at its floor at the end all the same
        (lambda s: 0.6, 1.0, 40, ["provisional", "measured"]),
    ],
    ids=["fast", "slow", "slowing", "shorter-than-warm-up"],
)
def test_the_schedule_ends_with_the_budget(
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step_s: Callable[[int], float],
    val_s: float,
    warmup: int,
    kinds: list[str] | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    machine = SimulatedMachine(step_s, val_s, setup_s=1.0)
    trainer, budget = fit(tiny_root, machine, warmup=warmup)
    plans = budget.plans
    if kinds is not None:
        assert [p["kind"] for p in plans] == kinds
    else:  # the machine slowed: at least one re-plan, each to fewer steps
        assert [p["kind"] for p in plans[:2]] == ["provisional", "measured"]
        replans = [p["total_steps"] for p in plans[1:]]
        assert len(replans) >= 2 and replans == sorted(replans, reverse=True)
    # the fit ran to the planned step, and the rate reached its floor (0) there
    last = plans[-1]["total_steps"]
    assert trainer.global_step == last == max(machine.lrs) + 1
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    torch.testing.assert_close(scheduler.get_last_lr()[0], 0.0, rtol=0, atol=1e-12)
    # ... when the budget ended: the end-of-run validation included, within the last steps
    budget_s = 60 * BUDGET_MIN
    last_step_s = step_s(last)
    assert budget_s - 5 * last_step_s - 0.5 * val_s <= machine.end_s <= budget_s
    # the rate the steps used: the warm-up to the peak, then a decay that never rises
    lrs = [machine.lrs[s] for s in range(last)]
    torch.testing.assert_close(lrs[0], 0.01 / (warmup + 1), rtol=0, atol=1e-12)
    peak = scheduler.warmup_steps
    assert peak < last and (peak == warmup) == (warmup == 4)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1], strict=False))
    torch.testing.assert_close(lrs[peak], 0.01, rtol=0, atol=1e-12)
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :], strict=False))


def test_a_resumed_fit_continues_the_plan(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted after step 12 (a validation's step) and resumed from last.ckpt on the same
    simulated machine: the same plan, the same rate at every step, the same end. Validations
    cost no time here: Lightning skips the first validation after resuming from a checkpoint
    saved at one, so with costly validations the two fits would do different work."""
    monkeypatch.chdir(tmp_path / "..")
    (tmp_path / "unbroken").mkdir()
    (tmp_path / "resumed").mkdir()

    def machine() -> SimulatedMachine:
        return SimulatedMachine(lambda s: 0.5, 0.0, setup_s=0.0)

    monkeypatch.chdir(tmp_path / "unbroken")
    unbroken_machine = machine()
    unbroken, unbroken_budget = fit(tiny_root, unbroken_machine)

    monkeypatch.chdir(tmp_path / "resumed")
    first_machine = machine()
    first, _ = fit(tiny_root, first_machine, [StopAt(2 * STEPS_PER_EPOCH)], checkpoints=True)
    assert first.global_step == 2 * STEPS_PER_EPOCH < unbroken.global_step
    ckpt = Path(first.log_dir) / "checkpoints" / "last.ckpt"
    second_machine = machine()
    second, second_budget = fit(tiny_root, second_machine, ckpt_path=str(ckpt))

    assert second_budget.plans == unbroken_budget.plans
    assert second.global_step == unbroken.global_step
    resumed_lrs = {**first_machine.lrs, **second_machine.lrs}
    assert sorted(resumed_lrs) == sorted(unbroken_machine.lrs)
    steps = sorted(unbroken_machine.lrs)
    torch.testing.assert_close(
        [resumed_lrs[s] for s in steps],
        [unbroken_machine.lrs[s] for s in steps],
        rtol=0,
        atol=1e-12,
    )
    # the resumed clock continued from the checkpoint's: the same end
    torch.testing.assert_close(
        second_budget.elapsed_s(), unbroken_budget.elapsed_s(), rtol=0, atol=1e-9
    )
