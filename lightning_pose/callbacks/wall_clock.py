"""Wall-clock time of a fit, logged with every validation: the x axis of accuracy against
training time (``docs/results/HISTORY.md``, "Performance")."""

from __future__ import annotations

import time

import pytorch_lightning as pl


class WallClock(pl.Callback):
    """Log ``time/fit_s``, seconds since the start of ``fit`` (setup, data caching, training
    and the validations so far), and ``time/train_images`` (optimiser steps x batch size x
    processes), at the end of every validation during ``fit``.

    A resumed fit continues from the logged time of its checkpoint, so the clock counts the
    compute spent on the run, not the pause.
    """

    def __init__(self) -> None:
        self.start: float | None = None
        self.offset_s = 0.0  # fit seconds before a resume

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.start = time.monotonic()

    def elapsed_s(self) -> float:
        return self.offset_s + (time.monotonic() - self.start if self.start is not None else 0.0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        batch_size = getattr(trainer.datamodule, "batch_size", 0) if trainer.datamodule else 0
        images = trainer.global_step * batch_size * trainer.world_size
        pl_module.log_dict(
            {"time/fit_s": self.elapsed_s(), "time/train_images": float(images)}, sync_dist=True
        )

    def state_dict(self) -> dict[str, float]:
        return {"elapsed_s": self.elapsed_s()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.offset_s = state_dict["elapsed_s"]
