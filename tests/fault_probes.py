"""Callbacks that inject a fault into a real fit, for the fault tests (``tests/test_faults.py``)."""

from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class SignalAtStep(Callback):
    """Send ``signum`` to this process at the start of training step ``step`` (mid-batch, as a
    scheduler's SIGTERM or a Ctrl-C arrives); under several processes, on rank ``rank`` only
    (None: every rank, as SLURM signals every task)."""

    def __init__(self, step: int, signum: int = int(signal.SIGTERM), rank: int | None = None):
        self.step, self.signum, self.rank = step, signum, rank

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self.rank in (None, trainer.global_rank):
            os.kill(os.getpid(), self.signum)


class PoisonWeightsAtStep(Callback):
    """Set one weight to NaN before training step ``step`` (a diverged optimiser step): the loss
    of that step and every later one is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(p for p in pl_module.parameters() if p.requires_grad).fill_(float("nan"))


class ExplodeWeightsAtStep(Callback):
    """After training step ``step``, set the model's last bias to ``value``: finite weights
    whose estimates lie far outside the image, as a diverging optimiser step leaves them; the
    next step's loss is finite but huge."""

    def __init__(self, step: int, value: float = 1e6) -> None:
        self.step, self.value = step, value

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            biases = [p for name, p in pl_module.named_parameters() if name.endswith("bias")]
            with torch.no_grad():
                biases[-1].fill_(self.value)


class SleepAtStep(Callback):
    """Sleep ``seconds`` at the start of training step ``step``: a run that is still going
    when a second one is started."""

    def __init__(self, step: int, seconds: float) -> None:
        self.step, self.seconds = step, seconds

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            time.sleep(self.seconds)


class SignalAtValidationBatch(Callback):
    """Send ``signum`` to this process at the start of validation batch ``batch`` (outside
    the sanity check): a scheduler's stop during ``validate``."""

    def __init__(self, batch: int = 0, signum: int = int(signal.SIGTERM)) -> None:
        self.batch, self.signum = batch, signum

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == self.batch and not trainer.sanity_checking:
            os.kill(os.getpid(), self.signum)
