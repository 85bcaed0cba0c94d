"""Learning-rate schedules stepped once per optimiser step (``interval = "step"``)."""

from __future__ import annotations

import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


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
        if total_steps is None:
            if run_steps is None or run_steps < 1:
                raise ValueError(
                    "model.scheduler (WarmupCosineLR) takes its length from trainer.max_steps, "
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
