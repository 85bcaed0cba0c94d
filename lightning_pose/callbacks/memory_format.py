"""Channels-last memory format for the model and its input images (a CPU and GPU speed-up of
convolutions; measured in ``bench/throughput.py``)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

IMAGE_KEYS = ("image", "image_hr")


class ChannelsLast(pl.Callback):
    """Put the model's weights and every batch's images in ``torch.channels_last`` (NHWC)
    memory format, for fit, validate, test and predict.

    The values are unchanged (only the strides differ), so checkpoints load into a model in
    either format. oneDNN's convolutions, batch norm and depthwise convolutions run NHWC
    without reordering; on the 2-core CPU of ``docs/RESULTS.md`` the EfficientNet-Lite0
    heat-map model's training step is about 1.3x as fast (``bench/throughput.py``).
    """

    def _convert_model(self, pl_module: pl.LightningModule) -> None:
        pl_module.to(memory_format=torch.channels_last)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._convert_model(pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._convert_model(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._convert_model(pl_module)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._convert_model(pl_module)

    @staticmethod
    def convert_batch(batch: dict[str, torch.Tensor]) -> None:
        """In place: every 4-D image of ``batch`` (``image``, ``image_hr``) to NHWC."""
        for key in IMAGE_KEYS:
            image = batch.get(key)
            if isinstance(image, torch.Tensor) and image.ndim == 4:
                batch[key] = image.contiguous(memory_format=torch.channels_last)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.convert_batch(batch)

    def on_validation_batch_start(
        self, trainer, pl_module, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.convert_batch(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.convert_batch(batch)

    def on_predict_batch_start(
        self, trainer, pl_module, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.convert_batch(batch)
