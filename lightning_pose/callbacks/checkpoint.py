"""``last.ckpt`` that holds the latest training state, for ``fit --ckpt_path last``.

Lightning's monitored ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only in a
step where it also saved a top-k checkpoint, i.e. when the monitored metric improved (a run
that ended at step 30 left ``last.ckpt`` at step 10), and at the end of training only if it
never wrote one. :class:`LatestCheckpoint` is a separate, unmonitored checkpoint callback that
rewrites ``last.ckpt`` after every validation, at every training epoch's end, at the end of
training (``max_steps``/``max_time``/``max_epochs``) and, optionally, every N optimiser steps.
The dataset configs pair it with a monitored ``ModelCheckpoint`` (``save_last: false``) that
keeps the best checkpoint. Lightning writes each file through an fsspec transaction (a
temporary file moved into place), so a kill never leaves a half-written ``last.ckpt``.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class LatestCheckpoint(ModelCheckpoint):
    """Keeps ``<dirpath>/last.ckpt`` the latest training state.

    Args:
        dirpath: folder of the checkpoint; None = ``<log dir>/checkpoints`` (as
            ``ModelCheckpoint``).
        every_n_train_steps: also save every N optimiser steps (mid-epoch), so a killed run
            loses at most N steps; None = only after validations, epochs and at the end.
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,  # always last.ckpt, also when resuming into its folder
        )

    def _save_latest(self, trainer: pl.Trainer) -> None:
        # skips fast_dev_run, sanity checks, non-fit stages and a step already saved
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)


def best_and_last(trainer: pl.Trainer) -> tuple[Path | None, Path | None]:
    """The best checkpoint (of the first monitored ``ModelCheckpoint``) and ``last.ckpt`` (of
    :class:`LatestCheckpoint`, else any checkpoint callback's last) this fit wrote."""
    best = last = None
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        if best is None and callback.monitor is not None and callback.best_model_path:
            best = Path(callback.best_model_path)
        if callback.last_model_path and (last is None or isinstance(callback, LatestCheckpoint)):
            last = Path(callback.last_model_path)
    return best, last
