"""Files a model's evaluation and fit produce, written by rank zero: the PDJ curve per stage
(DeepPose Fig. 5) and a cascade's error statistics (DeepPose §3.2, Eq. 7)."""

from __future__ import annotations

import json

import numpy as np
import pytorch_lightning as pl

from lightning_pose.files import run_dir, write_bytes_atomic
from lightning_pose.plots import save_pdj_curves


class PDJCurveWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<log dir>/<split>_pdj_curve.csv`` and ``.png``: PDJ versus the normalised distance
    threshold, one column/line per stage, from the model's ``pdj_curves`` (set by
    ``PoseEstimator`` on every process after its metrics are reduced)."""

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        out = run_dir(trainer)  # on every process: may be a collective
        curves = getattr(pl_module, "pdj_curves", {}).get(split)
        if not trainer.is_global_zero or not curves:
            return
        thresholds = np.array(pl_module.evaluation.curve_thresholds)
        save_pdj_curves(out / f"{split}_pdj_curve", thresholds, curves)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")


class ErrorStatisticsWriter(pl.Callback):
    """At the start of training, writes ``<log dir>/error_statistics.json`` when the model
    estimated error statistics in this fit (``DeepPoseCascade.error_statistics_record``:
    per-joint mean and covariance of the previous stage's errors, in torso diameters); a
    no-op for other models."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out = run_dir(trainer)  # on every process: may be a collective
        record = getattr(pl_module, "error_statistics_record", None)
        if trainer.is_global_zero and record is not None:
            text = json.dumps(record, indent=1).encode()
            write_bytes_atomic(out / "error_statistics.json", text)
