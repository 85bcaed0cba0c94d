"""A learning-rate schedule that ends with a wall-clock budget: measure the steps the machine
makes, size the cosine from them, and re-plan when the rate changes (a shared machine).

Why steps and not the clock: the rate stays a function of the optimiser step and the recorded
plan (:class:`lightning_pose.models.schedules.PlannedCosineLR`), so a resumed fit continues
exactly the schedule it saved, and the plan is a few logged numbers (rate, steps, end) rather
than a rate that follows every stall of the machine. A schedule in the elapsed fraction of the
budget would adapt as well but give every run, and every resume, its own rates.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from lightning_pose.models.schedules import PlannedCosineLR


def validations_between(start: int, end: int, last_val_step: int, val_every: int | None) -> int:
    """Validations still to come from optimiser step ``start`` (the one just done, whose
    validation, if due, runs next) up to, not including, the last step ``end`` (whose
    validation is the end-of-run one), where they come every ``val_every`` steps after
    ``last_val_step`` (None: no validation)."""
    if not val_every or end <= start:
        return 0

    def done_by(step: int) -> int:  # validations at last_val_step + k val_every, k >= 1, <= step
        return max(0, (step - last_val_step) // val_every)

    return done_by(end - 1) - done_by(start - 1)


def plan_steps(
    step: int,
    available_s: float,
    step_s: float,
    val_s: float,
    last_val_step: int,
    val_every: int | None,
) -> int:
    """The last optimiser step that ends within ``available_s`` seconds from ``step``: the
    largest ``n`` with ``n step_s + validations_between(step, step + n) val_s <=
    available_s``, returned as ``step + n`` (``step`` itself where not even one step fits).

    Args:
        step: optimiser steps done.
        available_s: seconds left for training and the validations on the way (the budget
            less the time used and the end-of-run reserve).
        step_s: seconds per optimiser step (data loading and logging included), > 0.
        val_s: seconds one validation (and what runs with it: checkpoint, tables) adds.
        last_val_step: the step of the latest validation (0 before the first).
        val_every: optimiser steps between validations; None: no validation.
    """
    if step_s <= 0:
        raise ValueError(f"plan_steps: step_s must be > 0 seconds, got {step_s!r}")

    def cost(n: int) -> float:
        return n * step_s + validations_between(step, step + n, last_val_step, val_every) * val_s

    low, high = 0, max(0, math.floor(available_s / step_s))  # cost(high + 1) > available_s
    while low < high:  # the largest n in [low, high] with cost(n) <= available_s
        mid = (low + high + 1) // 2
        if cost(mid) <= available_s:
            low = mid
        else:
            high = mid - 1
    return step + low


class BudgetSchedule(pl.Callback):
    """End the fit, and the learning-rate decay, when the wall-clock budget ends.

    The fit starts with a provisional plan, ``trainer.max_steps`` (a guess of the rate). After
    ``min(window, 10)`` timed steps (the warm-up's first steps count) it plans from the
    measured seconds per step (the mean of the last ``window`` steps, data loading included)
    and the seconds a validation adds (with its checkpoint and tables; until the first
    validation has been timed, the sanity check's time scaled to the whole validation set):
    the last step is the one after which the validations on the way and the end-of-run
    validation still fit in the budget. On a machine too slow to reach the first validation
    or the end of the warm-up within the budget, this early plan is what ends the run on time
    (the schedule then shortens its warm-up). Then after every step it checks the projected
    end against the budget and re-plans when it is off by more than ``tolerance`` of the time
    left (or two steps' time), as when the first validation has been timed or the machine's
    speed changes: the schedule's (:class:`PlannedCosineLR`) remaining decay is spread over
    the new number of steps, without a jump in the rate, and ``trainer.max_steps`` follows.
    At the planned step the fit stops (``trainer.should_stop``, so Lightning runs the
    end-of-run validation and the checkpoints save); the rate is at its floor there.

    The budget counts from the start of ``fit`` (``setup``: data caching included, as
    :class:`WallClock`); a resumed fit continues from the seconds its checkpoint recorded
    (:meth:`state_dict`: the plan, the measurements), with the plan it saved.
    Each plan is logged (rate, steps, end) when made or changed.

    Under several processes rank 0's plan is broadcast at every step, so all stop together.

    Args:
        budget_min: the fit's wall-clock budget in minutes, > 0.
        tolerance: re-plan when the projected end is off by more than this fraction of the
            time left, in (0, 1).
        window: steps whose mean time is the measured rate (>= 2).
        reserve_factor: the end-of-run validation is planned as this x the last one's time.
        clock: seconds, monotonic (tests pass a simulated one); None: ``time.monotonic``.

    Raises:
        ValueError: a bad argument; at the start of training, ``model.scheduler`` not a
            :class:`PlannedCosineLR` stepped every optimiser step.
    """

    def __init__(
        self,
        budget_min: float,
        tolerance: float = 0.1,
        window: int = 50,
        reserve_factor: float = 1.25,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not budget_min > 0:
            raise ValueError(f"BudgetSchedule: budget_min must be > 0 minutes, got {budget_min!r}")
        if not 0 < tolerance < 1:
            raise ValueError(f"BudgetSchedule: tolerance must be in (0, 1), got {tolerance!r}")
        if window < 2:
            raise ValueError(f"BudgetSchedule: window must be >= 2 steps, got {window!r}")
        if reserve_factor < 1:
            raise ValueError(f"BudgetSchedule: reserve_factor must be >= 1, got {reserve_factor!r}")
        self.budget_s = 60.0 * budget_min
        self.tolerance = tolerance
        self.reserve_factor = reserve_factor
        self.clock = clock or time.monotonic
        self.start: float | None = None
        self.offset_s = 0.0  # fit seconds before a resume
        self.step_times: deque[float] = deque(maxlen=window)
        self.val_s: float | None = None  # what the latest validation added, seconds
        self.val_estimate_s: float | None = None  # from the sanity check, until one is timed
        self._sanity_start: float | None = None
        self._configured_val_every: int | None = None
        self.val_steps: list[int] = []  # steps of the latest two validations
        self.plans: list[dict[str, Any]] = []
        self._last_end: float | None = None
        self._validated = False  # a validation since the last training step

    # -- the clock -------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Seconds of the fit so far (those before a resume included)."""
        return self.offset_s + (self.clock() - self.start if self.start is not None else 0.0)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.start = self.clock()

    # -- measurements ----------------------------------------------------------------------
    def step_s(self) -> float | None:
        """Mean seconds per optimiser step over the window; None before two steps."""
        return sum(self.step_times) / len(self.step_times) if self.step_times else None

    def last_val_step(self) -> int:
        """The step of the latest validation (0 before the first)."""
        return self.val_steps[-1] if self.val_steps else 0

    def val_every(self) -> int | None:
        """Steps between the latest two validations (the first one's step on a fresh fit;
        before any, the trainer's ``val_check_batch``); None: the fit does not validate."""
        if len(self.val_steps) >= 2:
            return self.val_steps[-1] - self.val_steps[-2]
        if self.val_steps and self.val_steps[-1] > 0:
            return self.val_steps[-1]
        return self._configured_val_every

    def validation_s(self) -> float:
        """Seconds a validation adds: the latest one's, else the sanity check's estimate."""
        if self.val_s is not None:
            return self.val_s
        return self.val_estimate_s or 0.0

    def reserve_s(self, step_s: float) -> float:
        """Seconds kept for the end-of-run validation, checkpoint and tables."""
        return self.reserve_factor * self.validation_s() + 2 * step_s

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sanity_start = self.clock()

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sanity, full = sum(trainer.num_sanity_val_batches), sum(trainer.num_val_batches)
        if self._sanity_start is not None and sanity > 0:
            self.val_estimate_s = (self.clock() - self._sanity_start) * full / sanity

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._validated = True

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ) -> None:
        now = self.clock()
        if self._last_end is not None:
            interval = now - self._last_end
            if not self._validated:
                self.step_times.append(interval)
            elif self.step_times:
                # this step's time + the validation before it (+ the next epoch's start)
                self.val_s = max(0.0, interval - self.step_s())
        if self._validated:
            self.val_steps = [*self.val_steps, trainer.global_step - 1][-2:]
        self._last_end = now
        self._validated = False
        decision = trainer.strategy.broadcast(self._decide(trainer), src=0)
        if decision is not None:
            self._apply(trainer, decision)
        if trainer.global_step >= self.plans[-1]["total_steps"]:
            trainer.should_stop = True

    # -- planning --------------------------------------------------------------------------
    def _min_timed(self) -> int:
        return min(self.step_times.maxlen or 0, 10)

    def _ready(self) -> bool:
        """Measured enough to plan: ``min(window, 10)`` steps timed."""
        return len(self.step_times) >= self._min_timed()

    def _decide(self, trainer: pl.Trainer) -> dict[str, Any] | None:
        """A new plan after this step, or None to keep the current one."""
        plan, step = self.plans[-1], trainer.global_step
        if not self._ready():
            return None
        step_s = self.step_s()
        elapsed = self.elapsed_s()
        available = self.budget_s - elapsed - self.reserve_s(step_s)
        last_val, val_s, val_every = self.last_val_step(), self.validation_s(), self.val_every()
        measured_once = plan["kind"] != "provisional"
        if measured_once:
            vals = validations_between(step, plan["total_steps"], last_val, val_every)
            projected = (plan["total_steps"] - step) * step_s + vals * val_s
            if abs(projected - available) <= max(self.tolerance * max(available, 0.0), 2 * step_s):
                return None
        total = plan_steps(step, available, step_s, val_s, last_val, val_every)
        if measured_once and total == plan["total_steps"]:
            return None
        return {
            "kind": "re-planned" if measured_once else "measured",
            "step": step,
            "elapsed_s": elapsed,
            "step_s": step_s,
            "val_s": val_s,
            "val_measured": self.val_s is not None,
            "val_every": val_every,
            "last_val_step": last_val,
            "reserve_s": self.reserve_s(step_s),
            "total_steps": total,
        }

    def _apply(self, trainer: pl.Trainer, plan: dict[str, Any]) -> None:
        step, scheduler = trainer.global_step, self._scheduler(trainer)
        if plan["total_steps"] <= step:
            plan = {**plan, "total_steps": step}  # not one more step fits: stop here
        else:
            try:
                scheduler.replan(step, plan["total_steps"])
            except ValueError:  # too few steps left to end the warm-up: stop there all the same
                pass
        self.plans.append(plan)
        trainer.fit_loop.epoch_loop.max_steps = plan["total_steps"]
        self._log_plan(plan, scheduler)

    def _scheduler(self, trainer: pl.Trainer) -> PlannedCosineLR:
        configs = trainer.lr_scheduler_configs
        scheduler = configs[0].scheduler if configs else None
        if not isinstance(scheduler, PlannedCosineLR) or configs[0].interval != "step":
            raise ValueError(
                "BudgetSchedule needs model.scheduler "
                "lightning_pose.models.schedules.PlannedCosineLR (stepped every optimiser "
                f"step), got {type(scheduler).__name__ if scheduler else 'none'}"
            )
        return scheduler

    def _log_plan(self, plan: dict[str, Any], scheduler: PlannedCosineLR) -> None:
        total, step = plan["total_steps"], plan["step"]
        budget_min = self.budget_s / 60
        if plan["kind"] == "provisional":
            rank_zero_info(
                f"budget plan (provisional, until {self._min_timed()} steps are timed)"
                f": {total:,} steps ({scheduler.warmup_steps} of warm-up), "
                f"the learning rate at its floor at the end of the {budget_min:g} min budget"
            )
            return
        if total <= step:
            rank_zero_info(
                f"budget plan: stop at step {step:,} ({plan['elapsed_s'] / 60:.2f} of "
                f"{budget_min:g} min): not one more step fits; learning rate "
                f"{scheduler.get_last_lr()[0]:.3g} (floor "
                f"{scheduler.final_lr_fraction * scheduler.base_lrs[0]:.3g})"
            )
            return
        end_s = plan["elapsed_s"] + plan_cost(plan, total) + plan["reserve_s"]
        wall = datetime.now(UTC) + timedelta(seconds=end_s - plan["elapsed_s"])
        every = f"every {plan['val_every']:,} steps" if plan["val_every"] else "none"
        if not plan["val_measured"]:
            every += ", estimated from the sanity check"
        warmup = (
            f", warm-up to step {scheduler.warmup_steps:,}" if step < scheduler.warmup_steps else ""
        )
        rank_zero_info(
            f"budget plan ({plan['kind']} at step {step:,}, {plan['elapsed_s'] / 60:.2f} min): "
            f"{1 / plan['step_s']:.3g} steps/s, validation {plan['val_s']:.1f} s ({every}) -> "
            f"{total:,} steps{warmup}, learning rate at its floor at step {total:,}; fit ends at "
            f"{end_s / 60:.2f} of {budget_min:g} min (about {wall:%H:%M:%S} UTC, "
            f"{plan['reserve_s']:.1f} s kept for the end-of-run validation)"
        )

    # -- the fit's start and end ------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        scheduler = self._scheduler(trainer)
        self._last_end = None
        self._validated = False
        every = trainer.val_check_batch
        if trainer.enable_validation and every is not None and every != float("inf"):
            self._configured_val_every = max(1, int(every))
        if self.plans:  # resumed: the plan the checkpoint recorded
            if scheduler.total_steps != self.plans[-1]["total_steps"]:
                raise ValueError(
                    f"BudgetSchedule: the checkpoint's plan ends at step "
                    f"{self.plans[-1]['total_steps']}, its schedule at {scheduler.total_steps}"
                )
            trainer.fit_loop.epoch_loop.max_steps = scheduler.total_steps
            rank_zero_info(
                f"budget plan (resumed at step {trainer.global_step:,}, "
                f"{self.elapsed_s() / 60:.2f} min): {scheduler.total_steps:,} steps"
            )
            return
        self.plans = [{"kind": "provisional", "step": 0, "total_steps": scheduler.total_steps}]
        self._log_plan(self.plans[0], scheduler)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.plans:
            return
        scheduler = self._scheduler(trainer)
        floor = scheduler.final_lr_fraction * scheduler.base_lrs[0]
        lr = scheduler.get_last_lr()[0]
        rank_zero_info(
            f"budget plan done: step {trainer.global_step:,} of {self.plans[-1]['total_steps']:,}"
            f" planned, {self.elapsed_s() / 60:.2f} of {self.budget_s / 60:g} min, learning "
            f"rate {lr:.3g} (floor {floor:.3g}), {len(self.plans) - 1} plan(s) after the "
            "provisional one"
        )

    # -- checkpoint ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed_s(),
            "budget_s": self.budget_s,
            "step_times": list(self.step_times),
            "val_s": self.val_s,
            "val_steps": list(self.val_steps),
            "plans": [dict(p) for p in self.plans],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.offset_s = state_dict["elapsed_s"]
        if state_dict["budget_s"] != self.budget_s:
            rank_zero_info(
                f"budget plan: the checkpoint's budget, {state_dict['budget_s'] / 60:g} min, "
                f"continues (not budget_min={self.budget_s / 60:g})"
            )
        self.budget_s = state_dict["budget_s"]
        self.step_times.clear()
        self.step_times.extend(state_dict["step_times"])
        self.val_s = state_dict["val_s"]
        self.val_steps = list(state_dict["val_steps"])
        self.plans = [dict(p) for p in state_dict["plans"]]


def plan_cost(plan: dict[str, Any], total: int) -> float:
    """Seconds from the plan's step to ``total`` at its measured rates."""
    vals = validations_between(plan["step"], total, plan["last_val_step"], plan["val_every"])
    return (total - plan["step"]) * plan["step_s"] + vals * plan["val_s"]
