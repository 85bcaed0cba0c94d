"""Learning-rate schedules stepped once per optimiser step (``interval = "step"``)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up from 0, then cosine decay to ``final_lr_fraction`` x the base rate at
    ``total_steps`` (Loshchilov & Hutter, ICLR 2017, SGDR without restarts; warm-up: Goyal et
    al. 2017). Past ``total_steps`` the rate stays at its final value.

    ``PoseEstimator.configure_optimizers`` steps it after every optimiser step (its
    ``interval``). Set ``total_steps`` to the run's ``trainer.max_steps``; for a wall-clock
    budget, ``bench/budget.py`` derives both from the measured training throughput.

    Args:
        optimizer: the optimiser whose groups' ``lr`` is the peak rate.
        total_steps: optimiser steps to the end of the decay.
        warmup_steps: steps of the linear warm-up.
        final_lr_fraction: the rate at ``total_steps``, a fraction of the peak.

    Raises:
        ValueError: ``total_steps < 1``, ``warmup_steps`` not in [0, total_steps), or
            ``final_lr_fraction`` not in [0, 1].
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        warmup_steps: int = 0,
        final_lr_fraction: float = 0.0,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"WarmupCosineLR: total_steps must be >= 1, got {total_steps!r}")
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"WarmupCosineLR: warmup_steps must be in [0, total_steps={total_steps}), "
                f"got {warmup_steps!r}"
            )
        if not 0.0 <= final_lr_fraction <= 1.0:
            raise ValueError(
                f"WarmupCosineLR: final_lr_fraction must be in [0, 1], got {final_lr_fraction!r}"
            )
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.final_lr_fraction = final_lr_fraction
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """The rate at optimiser step ``step`` as a fraction of the peak."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_lr_fraction + (1.0 - self.final_lr_fraction) * cosine
