"""Person boxes for ``predict`` from a COCO detections file, and COCO keypoint results out.

Detections in (the layout of COCO's person detection results):
``[{"image_id": 397133 or "file_name": "000000397133.jpg", "bbox": [x, y, w, h], "score": s}]``,
COCO's corner pixel frame. An entry names its image by ``file_name`` (a file of
``data.predict_dir``) or by ``image_id`` (the image whose file stem is that number, COCO's
naming: ``000000397133.jpg`` is image 397133). Each box is one instance to estimate, cropped as
the COCO reader crops: a square on the box centre (``x - 0.5`` to our pixel-centre frame), side
``bbox_scale`` x its longer side.

Results out: ``[{"image_id", "category_id", "keypoints": [x1, y1, v1, ...], "score"}]`` in COCO's
corner frame (``x + 0.5``), the layout pycocotools' ``COCO.loadRes`` and other COCO tools read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.annotations import DatasetError

DETECTIONS_LAYOUT = '[{"image_id" or "file_name", "bbox": [x, y, w, h], "score"}, ...]'


@dataclass
class PredictInstances:
    """What predicts: one row per box.

    Shapes:
        image_index: (N,) int64 position of the instance's image in the image list.
        box_px: (N, 4) float32 ``(cx, cy, w, h)`` our pixels, the crop's box.
        image_ids: (N,) int64 COCO image id (results JSON). scores: (N,) float32 box score.
    """

    image_index: np.ndarray
    box_px: np.ndarray
    image_ids: np.ndarray
    scores: np.ndarray


def image_id_of(path: Path, position: int) -> int:
    """COCO's image id of a file: its stem where that is a number, else its position."""
    return int(path.stem) if path.stem.isdigit() else position


def read_detections(path: Path, images: list[Path], bbox_scale: float = 1.25) -> PredictInstances:
    """The boxes of a COCO detections file, on the images of ``images``, in file order.

    Raises:
        DatasetError: the file is missing or not JSON, or an entry (named by its position)
            lacks a key, names an image not in ``images``, or has a box that is not finite
            or has a width or height <= 0.
    """
    if not path.is_file():
        raise DatasetError(f"data.predict_boxes: {path} not found; expected {DETECTIONS_LAYOUT}")
    try:
        entries = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(
            f"{path}: not a JSON file ({err}); expected {DETECTIONS_LAYOUT}"
        ) from err
    if not isinstance(entries, list) or not entries:
        raise DatasetError(f"{path}: expected a non-empty list {DETECTIONS_LAYOUT}")
    by_name = {p.name: i for i, p in enumerate(images)}
    by_id = {image_id_of(p, i): i for i, p in enumerate(images)}
    rows = []
    for n, entry in enumerate(entries):
        where = f"{path}: detection {n} (0-based)"
        if not isinstance(entry, dict) or "bbox" not in entry:
            raise DatasetError(f"{where}: {entry!r} lacks 'bbox'; expected {DETECTIONS_LAYOUT}")
        if "file_name" in entry:
            image = by_name.get(str(entry["file_name"]))
        elif "image_id" in entry:
            image = by_id.get(entry["image_id"])
        else:
            raise DatasetError(f"{where}: names no image ('image_id' or 'file_name')")
        if image is None:
            named = entry.get("file_name", entry.get("image_id"))
            raise DatasetError(
                f"{where}: image {named!r} is not among the {len(images)} images of "
                "data.predict_dir (by file name, or by image_id = the file's numeric stem)"
            )
        bbox = entry["bbox"]
        ok = isinstance(bbox, list) and len(bbox) == 4
        ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
        if not ok or bbox[2] <= 0 or bbox[3] <= 0:
            raise DatasetError(f"{where}: bbox {bbox}; expected [x, y, w, h], finite, w, h > 0")
        score = float(entry.get("score", 1.0))
        rows.append((image, *bbox, score))
    table = np.array(rows, dtype=np.float64)  # (N, 6)
    side = bbox_scale * np.maximum(table[:, 3], table[:, 4])
    centre = table[:, 1:3] + table[:, 3:5] / 2 - 0.5  # COCO corner frame -> ours
    image_index = table[:, 0].astype(np.int64)
    return PredictInstances(
        image_index=image_index,
        box_px=np.column_stack([centre, side, side]).astype(np.float32),
        image_ids=np.array([image_id_of(images[i], i) for i in image_index], dtype=np.int64),
        scores=table[:, 5].astype(np.float32),
    )


def coco_results(
    keypoints_px: np.ndarray, image_ids: np.ndarray, scores: np.ndarray, category_id: int = 1
) -> list[dict]:
    """COCO keypoint results of N estimates (every keypoint written with v = 1).

    Shapes:
        keypoints_px: (N, K, 2) our pixels. image_ids, scores: (N,).
    """
    xy = keypoints_px.astype(np.float64) + 0.5  # ours -> COCO's corner frame
    flags = np.ones(xy.shape[:2] + (1,))
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": np.concatenate([kp, v], axis=-1).ravel().round(3).tolist(),
            "score": float(score),
        }
        for kp, v, image_id, score in zip(xy, flags, image_ids, scores, strict=True)
    ]
