"""Writes ``predict`` results: ``predictions.npz`` and optional overlay images."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import BasePredictionWriter

from lightning_pose.callbacks.video_outputs import write_video_predictions
from lightning_pose.data.dataset import load_image
from lightning_pose.data.detections import coco_results
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.plots.pose import draw_skeleton
from lightning_pose.runtime.files import write_bytes_atomic


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
    return draw_skeleton(image, keypoints_px, skeleton, (255, 40, 40), limb_colour=(0, 200, 255))


def check_writable(folder: Path, key: str) -> None:
    """Create ``folder`` and write and remove a file in it, so that a run that would fail to
    save its results fails before it starts.

    Raises:
        OSError: naming ``key``, the folder and the reason.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write_check_")
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise OSError(
            f"{key}: cannot write to {folder.resolve()} ({err}); expected a writable folder"
        ) from err


def overlay_names(paths: Sequence[Path]) -> list[str]:
    """The overlay file of each predict entry: ``<stem>.png``, or ``<stem>_<i>.png`` (i the
    entry's position) where several entries share one image file (FLIC: one frame, one
    example per person), so each example keeps its overlay.

    Raises:
        ValueError: two different images would still share a file (``x.jpg`` and ``x.png``
            -> ``x.png``), naming every clash.
    """
    uses = Counter(paths)
    names = [f"{p.stem}.png" if uses[p] == 1 else f"{p.stem}_{i}.png" for i, p in enumerate(paths)]
    owners: dict[str, set[str]] = {}
    for path, name in zip(paths, names, strict=True):
        owners.setdefault(name, set()).add(path.name)
    clashes = [f"{sorted(v)} -> overlays/{k}" for k, v in owners.items() if len(v) > 1]
    if clashes:
        raise ValueError(
            f"PredictionWriter.draw_overlays: {len(clashes)} overlay files would be written "
            f"by several images ({'; '.join(clashes[:5])}); expected one image per file "
            "stem: rename them or set draw_overlays=false"
        )
    return names


Shard = dict[str, np.ndarray]


def to_shard(outputs: list[dict[str, torch.Tensor]]) -> Shard | None:
    """One process's ``predict_step`` outputs as arrays: ``index (n,)``, ``keypoints_px
    (n, K, 2)`` and ``scores (n, K)`` where present, in the order predicted; None if empty."""
    if not outputs:
        return None
    return {key: torch.cat([o[key] for o in outputs]).cpu().numpy() for key in outputs[0]}


def merge_shards(shards: Sequence[Shard | None]) -> Shard:
    """Shards of several processes as one, sorted by ``index``, each index once (a sampler
    that pads its shards with repeated images predicts them twice).

    Shapes:
        each shard: ``index (n_r,)`` and arrays with leading n_r; returns leading N, the
        number of distinct indices, with ``index`` increasing.

    Raises:
        ValueError: every shard is empty (nothing was predicted).
    """
    present = [s for s in shards if s is not None]
    if not present:
        raise ValueError("predict produced no predictions on any process")
    merged = {key: np.concatenate([s[key] for s in present]) for key in present[0]}
    _, first = np.unique(merged["index"], return_index=True)  # sorted distinct indices
    return {key: value[first] for key, value in merged.items()}


# An estimate this many box sizes from its box's centre is no estimate: a diverged model's.
ABSURD_BOX_SIZES = 10.0


def check_estimates(shard: Shard, source: str) -> None:
    """Refuse estimates no model that works makes: not finite, or more than
    :data:`ABSURD_BOX_SIZES` box sizes from the centre of the box they were estimated from
    (a diverged fit's weights put them at 1e16 px).

    Shapes:
        shard["keypoints_px"] (N, K, 2) pixels; shard["boxes_px"] (N, 4) ``(cx, cy, w, h)``.

    Raises:
        ValueError: names ``source`` (the checkpoint), how many keypoints and the worst one.
    """
    keypoints = shard["keypoints_px"].astype(np.float64)  # (N, K, 2)
    finite = np.isfinite(keypoints).all(axis=-1)  # (N, K)
    far = np.zeros_like(finite)
    boxes = shard.get("boxes_px")
    if boxes is not None:
        size = np.maximum(boxes[:, 2:4].max(axis=1), 1.0)[:, None]  # (N, 1) pixels
        offset = np.abs(keypoints - boxes[:, None, :2]).max(axis=-1)  # (N, K) pixels
        far = finite & (offset > ABSURD_BOX_SIZES * size)
    bad = ~finite | far
    if bad.any():
        worst = np.abs(np.where(finite[..., None], keypoints, np.inf)).max()
        raise ValueError(
            f"predict: the model of {source} estimated {int(bad.sum())} of {bad.size} "
            f"keypoints that are not finite ({int((~finite).sum())}) or lie more than "
            f"{ABSURD_BOX_SIZES:g} box sizes outside their box (largest coordinate "
            f"{worst:.3g} px): its weights are diverged; nothing was written. Use an earlier "
            "checkpoint of the run"
        )


class PredictionWriter(BasePredictionWriter):
    """Collects ``predict_step`` outputs and writes ``<output_dir>/predictions.npz`` with
    ``names`` (N,) image file names (an instance's image), ``keypoints_px`` (N, K, 2)
    original-image pixels, ``boxes_px`` (N, 4) ``(cx, cy, w, h)`` the boxes estimated from and,
    for models with per-joint confidences, ``scores`` (N, K), in the order of the predicted
    instances; and beside it ``predictions_coco.json``, the COCO keypoint results
    (:func:`lightning_pose.data.detections.coco_results`; image ids, box scores and COCO
    categories from the datamodule's ``predict_records``). Under several processes the shards
    are gathered and rank zero writes the files (each instance once, in input order); each
    process draws the overlays of its own images.

    Before predict starts it checks that ``output_dir`` is writable and that no two images
    would share an overlay file (``x.jpg`` and ``x.png``); images that cannot be read stop
    predict when the data sets up (see ``PoseDataModule``), so every image is predicted.

    For a video (``data.predict.video``) it writes ``predictions.npz``, ``predictions.csv``
    and, with ``draw_overlays``, ``overlay.mp4`` instead (rank zero;
    :func:`~lightning_pose.callbacks.video_outputs.write_video_predictions`).

    Args:
        output_dir: folder for the results (created).
        draw_overlays: also write ``overlays/<stem>.png`` with the predicted pose drawn (see
            :func:`overlay_names`).
    """

    def __init__(self, output_dir: str = "outputs/predict", draw_overlays: bool = False) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = Path(output_dir)
        self.draw_overlays = draw_overlays

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """On ``predict`` (after the data's setup): the checks above.

        Raises:
            OSError: ``output_dir`` cannot be written. ValueError: an overlay clash.
        """
        if stage != "predict":
            return
        check_writable(self.output_dir, "PredictionWriter.output_dir")
        if getattr(trainer.datamodule, "video_info", None) is not None:
            return  # a video: predictions.csv and overlay.mp4 (see write_video_predictions)
        if self.draw_overlays:
            overlay_names(trainer.datamodule.predict_image_paths())

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
        local = to_shard(outputs)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            shards: list[Shard | None] = [None] * trainer.world_size
            dist.all_gather_object(shards, local)  # a collective: every rank, before the check
        else:
            shards = [local]
        video = getattr(trainer.datamodule, "video_info", None)
        if trainer.is_global_zero:  # before any file is written
            source = getattr(trainer, "ckpt_path", None) or "the model"
            check_estimates(merge_shards(shards), str(source))
        if video is not None:
            if trainer.is_global_zero:
                skeleton = trainer.datamodule.skeleton
                merged = merge_shards(shards)
                write_video_predictions(
                    self.output_dir, video, skeleton, merged, self.draw_overlays
                )
            return
        paths = trainer.datamodule.predict_image_paths()
        if trainer.is_global_zero:
            merged = merge_shards(shards)
            index = merged.pop("index")  # (N,)
            arrays = {key: value.astype(np.float32) for key, value in merged.items()}
            names = np.array([paths[i].name for i in index])
            save_npz_atomic(self.output_dir / "predictions.npz", names=names, **arrays)
            records = getattr(trainer.datamodule, "predict_records", None)
            if records is not None:  # COCO keypoint results beside it, for any COCO tool
                image_ids, scores, categories = records()
                results = coco_results(
                    arrays["keypoints_px"], image_ids[index], scores[index], categories[index]
                )
                text = json.dumps(results).encode()
                write_bytes_atomic(self.output_dir / "predictions_coco.json", text)
        if self.draw_overlays and local is not None:
            self.write_overlays(trainer, paths, merge_shards([local]))  # in order, each once

    def write_overlays(self, trainer: pl.Trainer, paths: Sequence[Path], shard: Shard) -> None:
        """``overlays/<stem>.png`` for each image of this process's ``shard``.

        Raises:
            OSError: OpenCV could not write a file (``cv2.imwrite`` returned False).
        """
        skeleton = trainer.datamodule.skeleton
        names = overlay_names(paths)
        overlay_dir = self.output_dir / "overlays"
        overlay_dir.mkdir(parents=True, exist_ok=True)
        for i, kp in zip(shard["index"], shard["keypoints_px"], strict=True):  # kp (K, 2)
            image = draw_pose(load_image(paths[i]), kp, skeleton)
            out = overlay_dir / names[i]
            if not cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f"PredictionWriter: cv2.imwrite could not write the overlay {out}")
