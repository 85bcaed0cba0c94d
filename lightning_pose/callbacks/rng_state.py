"""The generator state in checkpoints: a resumed fit continues as the run it resumes."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


class RNGStateCheckpoint(pl.Callback):
    """Saves torch's generator state (CPU, and the model's CUDA device where CUDA is in use)
    in every checkpoint, under ``checkpoint["rng"]`` (``{"torch": ByteTensor, "cuda":
    ByteTensor}``), and restores it at the first training step of a fit resumed from one:
    after the sanity check and the loaders' set-up, which may draw from it, so dropout and the
    cascade's sampled displacements continue as in the run it resumes
    (``tests/test_resume.py``). Validate, test and predict restore nothing.

    Every :class:`~lightning_pose.models.base.PoseEstimator` attaches it
    (``configure_callbacks``); no configuration names it.
    """

    def __init__(self) -> None:
        self._to_restore: dict[str, torch.Tensor] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["rng"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state(pl_module.device)

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._to_restore = checkpoint.get("rng")

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        rng, self._to_restore = self._to_restore, None
        if rng is None:
            return
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and pl_module.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], pl_module.device)
