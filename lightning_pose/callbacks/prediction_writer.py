"""Writes ``predict`` results: ``predictions.npz`` and optional overlay images."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from lightning_pose.data.dataset import load_image
from lightning_pose.files import write_bytes_atomic
from lightning_pose.skeleton import Skeleton


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` next to ``path`` and rename it into place: never a half-written file."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def draw_pose(image: np.ndarray, keypoints_px: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Draw joints (dots) and the skeleton's limbs (lines between their end points) on a copy
    of an RGB image.

    Shapes:
        image: (H, W, 3) uint8. keypoints_px: (K, 2) pixels. returns (H, W, 3) uint8.
    """
    out = image.copy()
    radius = max(2, round(max(image.shape[:2]) / 150))
    points = np.round(keypoints_px).astype(int)
    ends = np.round(np.einsum("lek,kc->lec", skeleton.limb_endpoint_weights(), keypoints_px))
    for a, b in ends.astype(int):  # (2,), (2,) pixels
        cv2.line(out, tuple(a), tuple(b), (0, 200, 255), max(1, radius // 2))
    for x, y in points:
        cv2.circle(out, (x, y), radius, (255, 40, 40), -1)
    return out


class PredictionWriter(BasePredictionWriter):
    """Collects ``predict_step`` outputs and writes ``<output_dir>/predictions.npz`` with
    ``names`` (N,) image file names, ``keypoints_px`` (N, K, 2) original-image pixels and,
    for models with per-joint confidences, ``scores`` (N, K), in the order of the predicted
    images. With several processes each rank writes
    ``predictions_rank<r>.npz`` for its share.

    Args:
        output_dir: folder for the results (created).
        draw_overlays: also write ``overlays/<name>.png`` with the predicted pose drawn.
    """

    def __init__(self, output_dir: str = "outputs/predict", draw_overlays: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir)
        self.draw_overlays = draw_overlays

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions,
        batch_indices,
    ) -> None:
        outputs = (
            predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        )
        arrays = {
            key: torch.cat([o[key] for o in outputs]).cpu().numpy()
            for key in outputs[0]
            if key != "index"
        }  # keypoints_px (N, K, 2), scores (N, K) where present
        index = torch.cat([o["index"] for o in outputs]).cpu().numpy()  # (N,)
        order = np.argsort(index, kind="stable")
        index = index[order]
        arrays = {key: value[order].astype(np.float32) for key, value in arrays.items()}
        keypoints = arrays["keypoints_px"]
        paths = trainer.datamodule.predict_image_paths()
        names = np.array([paths[i].name for i in index])
        filename = (
            "predictions.npz"
            if trainer.world_size == 1
            else f"predictions_rank{trainer.global_rank}.npz"
        )
        save_npz_atomic(self.output_dir / filename, names=names, **arrays)
        if self.draw_overlays:
            skeleton = trainer.datamodule.skeleton
            overlay_dir = self.output_dir / "overlays"
            overlay_dir.mkdir(parents=True, exist_ok=True)
            for i, kp in zip(index, keypoints, strict=True):
                image = draw_pose(load_image(paths[i]), kp, skeleton)
                out = overlay_dir / f"{paths[i].stem}.png"
                cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
