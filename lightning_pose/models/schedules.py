"""Learning-rate schedules stepped once per optimiser step (``interval = "step"``)."""

from __future__ import annotations

import math

import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def _run_length(
    name: str,
    total_steps: int | None,
    warmup_steps: int,
    run_steps: int | None,
    final_lr_fraction: float,
) -> tuple[int, int]:
    """``(total_steps, warmup_steps)`` of a warm-up + cosine schedule: ``total_steps``, else
    ``run_steps`` (``trainer.max_steps``) with a warm-up shortened to a tenth of a run not
    longer than it (with a warning); ``final_lr_fraction`` checked to lie in [0, 1]. Raises
    ``ValueError`` naming the bad value."""
    if total_steps is None:
        if run_steps is None or run_steps < 1:
            raise ValueError(
                f"model.scheduler ({name}) takes its length from trainer.max_steps, "
                "which is not set: set --trainer.max_steps (or the scheduler's total_steps)"
            )
        total_steps = int(run_steps)
        if warmup_steps >= total_steps:
            shorter = total_steps // 10
            rank_zero_warn(
                f"model.scheduler's warm-up ({warmup_steps} steps) is not shorter than the "
                f"run (trainer.max_steps={total_steps}): {shorter} warm-up steps this run"
            )
            warmup_steps = shorter
    if total_steps < 1:
        raise ValueError(f"{name}: total_steps must be >= 1, got {total_steps!r}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"{name}: warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps!r}"
        )
    if not 0.0 <= final_lr_fraction <= 1.0:
        raise ValueError(f"{name}: final_lr_fraction must be in [0, 1], got {final_lr_fraction!r}")
    return total_steps, warmup_steps


class WarmupCosineLR(SequentialLR):
    """Linear warm-up from ``1 / (warmup_steps + 1)`` of the peak, then cosine decay to
    ``final_lr_fraction`` x the peak at ``total_steps`` (Loshchilov & Hutter, ICLR 2017, SGDR
    without restarts; warm-up: Goyal et al. 2017): PyTorch's own ``SequentialLR`` of a
    ``LinearLR`` and a ``CosineAnnealingLR``, only its length set by the run.

    The rate at step ``s < warmup_steps`` is ``(s + 1) / (warmup_steps + 1)`` x the peak; at
    ``s >= warmup_steps`` it is ``eta + (1 - eta) (1 + cos(pi (s - w) / (T - w))) / 2`` x the
    peak, ``eta = final_lr_fraction``, ``w = warmup_steps``, ``T = total_steps``. Past
    ``total_steps`` the cosine continues (do not train past the run length it was given).

    ``total_steps`` is the run's length: left unset (the default, and what the configs do),
    it is ``run_steps``, which ``PoseEstimator.configure_optimizers`` passes to every schedule
    with a ``run_steps`` parameter (``trainer.max_steps``), so the decay ends with the run
    without repeating its length. It is stepped after every optimiser step (its ``interval``).

    Args:
        optimizer: the optimiser whose groups' ``lr`` is the peak rate.
        total_steps: optimiser steps to the end of the decay; None: ``run_steps``.
        warmup_steps: steps of the linear warm-up. Where ``total_steps`` comes from the run
            and the run is not longer than this (a quick check, ``fast_dev_run``), a tenth of
            the run, with a warning.
        final_lr_fraction: the rate at ``total_steps``, a fraction of the peak (> 0 needs every
            parameter group to share one peak rate: ``CosineAnnealingLR`` takes one absolute
            ``eta_min``).
        run_steps: the run's length in optimiser steps (``trainer.max_steps``; None or < 1:
            the run has none), used where ``total_steps`` is unset.

    Raises:
        ValueError: neither ``total_steps`` nor ``run_steps`` set, or < 1, ``warmup_steps``
            not in [0, total_steps), ``final_lr_fraction`` not in [0, 1], or > 0 with groups of
            different peak rates.
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int | None = None,
        warmup_steps: int = 0,
        final_lr_fraction: float = 0.0,
        run_steps: int | None = None,
    ) -> None:
        total_steps, warmup_steps = _run_length(
            "WarmupCosineLR", total_steps, warmup_steps, run_steps, final_lr_fraction
        )
        peaks = {group["lr"] for group in optimizer.param_groups}
        if final_lr_fraction > 0 and len(peaks) > 1:
            raise ValueError(
                "WarmupCosineLR: final_lr_fraction > 0 needs one peak rate for every parameter "
                f"group, got {sorted(peaks)}"
            )
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.final_lr_fraction = final_lr_fraction
        eta_min = final_lr_fraction * max(peaks)
        cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
        if warmup_steps == 0:
            super().__init__(optimizer, [cosine], milestones=[])
            return
        # LinearLR's factor at step s: start + (1 - start) s / w = (s + 1) / (w + 1)
        start = 1.0 / (warmup_steps + 1)
        warmup = LinearLR(optimizer, start_factor=start, total_iters=warmup_steps)
        super().__init__(optimizer, [warmup, cosine], milestones=[warmup_steps])


def cosine_factor(progress: float, floor: float) -> float:
    """The cosine decay's factor of the peak at ``progress`` in [0, 1]: ``floor + (1 - floor)
    (1 + cos(pi progress)) / 2`` (Loshchilov & Hutter, ICLR 2017, Eq. 5 without restarts)."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class PlannedCosineLR(LRScheduler):
    """:class:`WarmupCosineLR` whose length can be re-planned during the run without a jump in
    the rate: what a wall-clock budget needs (:class:`lightning_pose.callbacks.BudgetSchedule`
    measures the steps the budget buys and calls :meth:`replan`).

    The rate at step ``s < warmup_steps`` is ``(s + 1) / (warmup_steps + 1)`` x the peak, as
    :class:`WarmupCosineLR` (a re-plan that leaves the warm-up more than half of the run ends
    it sooner: linear from the rate at the re-plan's step to the peak); after it,
    ``cosine_factor(p(s), final_lr_fraction)`` x the peak,
    where the cosine's progress ``p`` runs from 0 at ``warmup_steps`` to 1 at the planned end
    and is piecewise linear in the step: a re-plan at step ``s`` to ``total_steps = T`` keeps
    ``p(s)`` and spreads the rest of the decay, ``1 - p(s)``, evenly over ``s .. T``. Past the
    planned end the rate stays at the floor. Without a re-plan the rates equal
    :class:`WarmupCosineLR`'s over the run (``tests/models/test_schedules.py``).

    The plan (the re-plans' knots) is part of :meth:`state_dict`, so a resumed fit continues
    the same schedule; the rate is a function of the step and the plan only (not of the clock).

    Args:
        optimizer: the optimiser whose groups' ``lr`` is the peak rate (each group its own).
        total_steps: the first plan's length in optimiser steps; None: ``run_steps``.
        warmup_steps: steps of the linear warm-up (shortened to a tenth of a run not longer
            than it, with a warning, as :class:`WarmupCosineLR`).
        final_lr_fraction: the floor, a fraction of each group's peak, in [0, 1].
        run_steps: ``trainer.max_steps``, passed by ``PoseEstimator.configure_optimizers``.

    Raises:
        ValueError: as :class:`WarmupCosineLR`; :meth:`replan` to an end not after its step.
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int | None = None,
        warmup_steps: int = 0,
        final_lr_fraction: float = 0.0,
        run_steps: int | None = None,
    ) -> None:
        total_steps, warmup_steps = _run_length(
            "PlannedCosineLR", total_steps, warmup_steps, run_steps, final_lr_fraction
        )
        self.warmup_steps = warmup_steps
        # the warm-up is linear from (step, factor) to the peak at warmup_steps
        self.warmup_start: tuple[int, float] = (0, 1.0 / (warmup_steps + 1))
        self.final_lr_fraction = final_lr_fraction
        # knots (step, progress there, planned end): the cosine's progress is linear from each
        # knot's step to its end, until the next knot
        self.knots: list[tuple[int, float, int]] = [(warmup_steps, 0.0, total_steps)]
        super().__init__(optimizer)

    @property
    def total_steps(self) -> int:
        """The planned end: the step at which the rate reaches its floor."""
        return self.knots[-1][2]

    def progress(self, step: int) -> float:
        """The cosine's progress at ``step``: 0 until the warm-up ends, 1 from the planned end."""
        start, start_progress, end = self.knots[0]
        for knot in self.knots:
            if knot[0] <= step:
                start, start_progress, end = knot
        if step <= start:
            return start_progress
        return min(1.0, start_progress + (1.0 - start_progress) * (step - start) / (end - start))

    def factor(self, step: int) -> float:
        """The rate at ``step`` as a fraction of the peak."""
        if step < self.warmup_steps:
            start, start_factor = self.warmup_start
            return start_factor + (1.0 - start_factor) * (step - start) / (
                self.warmup_steps - start
            )
        return cosine_factor(self.progress(step), self.final_lr_fraction)

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def replan(self, step: int, total_steps: int) -> None:
        """End the decay at ``total_steps`` instead, from ``step`` on (the rate at ``step`` and
        before is unchanged; during the warm-up the whole cosine is re-planned). A warm-up
        that would take more than half of the run ends sooner, at
        ``min(warmup_steps, max(total_steps // 10, 2 step), step + (total_steps - step) // 2)``,
        rising linearly from the rate at ``step``.

        Raises:
            ValueError: ``total_steps`` not after ``step`` and the (shortened) warm-up.
        """
        if step < self.warmup_steps and total_steps < 2 * self.warmup_steps:
            shorter = min(
                self.warmup_steps,
                max(total_steps // 10, 2 * step),
                step + (total_steps - step) // 2,
            )
            shorter = max(shorter, step + 1)
            if shorter < min(total_steps, self.warmup_steps):
                self.warmup_start = (step, self.factor(step))
                self.warmup_steps = shorter
        if total_steps <= max(step, self.warmup_steps):
            raise ValueError(
                f"PlannedCosineLR.replan: total_steps={total_steps} must be after step {step} "
                f"and the warm-up ({self.warmup_steps} steps)"
            )
        if step <= self.warmup_steps:
            self.knots = [(self.warmup_steps, 0.0, total_steps)]
        else:
            knot = (step, self.progress(step), total_steps)
            self.knots = [k for k in self.knots if k[0] < step] + [knot]
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs
