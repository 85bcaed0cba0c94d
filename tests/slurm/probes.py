"""A callback that holds a fit at a chosen point until the test releases it, so that a signal
sent meanwhile (``scancel --signal=USR1``, ``scancel``) arrives at a known moment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class PauseForSignal(Callback):
    """On rank ``rank``, pause at the start of training step ``training_step`` and/or at the
    end of the first batch of the validation at ``validation_step`` (the other processes go on
    to their next collective and wait there: the ranks are at different points, as when a
    scheduler's signal reaches a DDP job). A pause writes ``<folder>/paused-<where>-<step>``,
    then waits for ``<folder>/release-<where>-<step>`` (at most ``timeout_s``)."""

    def __init__(
        self,
        folder: str,
        training_step: int | None = None,
        validation_step: int | None = None,
        rank: int = 0,
        timeout_s: float = 120.0,
    ) -> None:
        self.folder, self.rank, self.timeout_s = Path(folder), rank, timeout_s
        self.training_step, self.validation_step = training_step, validation_step
        self._done: set[str] = set()

    def _pause(self, trainer: pl.Trainer, where: str) -> None:
        name = f"{where}-{trainer.global_step}"
        if trainer.global_rank != self.rank or name in self._done:
            return
        self._done.add(name)
        marker = self.folder / f"paused-{name}"
        marker.with_suffix(".tmp").write_text(str(os.getpid()))
        os.replace(marker.with_suffix(".tmp"), marker)
        deadline = time.monotonic() + self.timeout_s
        while not (self.folder / f"release-{name}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.training_step:
            self._pause(trainer, "training")

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            if trainer.global_step == self.validation_step:
                self._pause(trainer, "validation")
