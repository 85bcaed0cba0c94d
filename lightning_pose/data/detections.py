"""Person boxes for ``predict`` from a COCO detections file, and COCO keypoint results out.

Detections in (the layout of COCO's person detection results):
``[{"image_id": 397133 or "file_name": "000000397133.jpg", "bbox": [x, y, w, h], "score": s}]``,
COCO's corner pixel frame. An entry names its image by ``file_name`` (a file of
``data.predict.image_dir``) or by ``image_id`` (the image whose file stem is that number, COCO's
naming: ``000000397133.jpg`` is image 397133); an entry's ``category_id``, where given, is
kept for its results (else the dataset's category, ``Skeleton.category_id``). Each box is one
instance to estimate, cropped as the COCO reader crops: a square on the box centre (``x - 0.5``
to our pixel-centre frame), side ``bbox_scale`` x its longer side. For a video
(``data.predict.video``) the ``image_id`` is the 0-based frame index and each frame keeps its
highest-scoring box (:func:`read_video_detections`).

Results out: ``[{"image_id", "category_id", "keypoints": [x1, y1, v1, ...], "score"}]`` in COCO's
corner frame (``x + 0.5``), the layout pycocotools' ``COCO.loadRes`` and other COCO tools read;
``category_id`` is the detection's or the dataset's (COCOeval matches results to ground truth of
the same category only: results under another id score AP 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.annotations import DatasetError, read_json

DETECTIONS_LAYOUT = (
    '[{"image_id" or "file_name", "bbox": [x, y, w, h], "score", "category_id" (optional)}, ...]'
)


@dataclass
class PredictInstances:
    """What predicts: one row per box.

    Shapes:
        image_index: (N,) int64 position of the instance's image in the image list.
        box_px: (N, 4) float32 ``(cx, cy, w, h)`` our pixels, the crop's box.
        image_ids: (N,) int64 COCO image id (results JSON). scores: (N,) float32 box score.
        category_ids: (N,) int64 COCO category id (results JSON): the detection's, else the
            dataset's.
    """

    image_index: np.ndarray
    box_px: np.ndarray
    image_ids: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray


def image_id_of(path: Path, position: int) -> int:
    """COCO's image id of a file: its stem where that is a number, else its position."""
    return int(path.stem) if path.stem.isdigit() else position


def _load_entries(path: Path, layout: str) -> list:
    """The entries of a detections file: a non-empty JSON list.

    Raises:
        DatasetError: the file is missing, not JSON or not a non-empty list.
    """
    if not path.is_file():
        raise DatasetError(f"data.predict.boxes: {path} not found; expected {layout}")
    entries = read_json(path, layout)
    if not isinstance(entries, list) or not entries:
        raise DatasetError(f"{path}: expected a non-empty list {layout}")
    return entries


def _entry_box(where: str, entry: object, layout: str) -> tuple[list[float], float]:
    """An entry's ``bbox [x, y, w, h]`` (COCO's corner frame) and ``score`` (1 if absent).

    Raises:
        DatasetError: the entry is not an object with a finite ``bbox`` of positive size.
    """
    if not isinstance(entry, dict) or "bbox" not in entry:
        raise DatasetError(f"{where}: {entry!r} lacks 'bbox'; expected {layout}")
    bbox = entry["bbox"]
    ok = isinstance(bbox, list) and len(bbox) == 4
    ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)
    if not ok or bbox[2] <= 0 or bbox[3] <= 0:
        raise DatasetError(f"{where}: bbox {bbox}; expected [x, y, w, h], finite, w, h > 0")
    return bbox, float(entry.get("score", 1.0))


def crop_boxes(bboxes: np.ndarray, bbox_scale: float) -> np.ndarray:
    """COCO ``[x, y, w, h]`` boxes (corner frame) as crop boxes ``(cx, cy, s, s)`` in our
    pixel-centre frame: a square on the box centre, side ``bbox_scale`` x the longer side.

    Shapes:
        bboxes: (N, 4); returns (N, 4) float32.
    """
    side = bbox_scale * np.maximum(bboxes[:, 2], bboxes[:, 3])
    centre = bboxes[:, :2] + bboxes[:, 2:] / 2 - 0.5  # COCO corner frame -> ours
    return np.column_stack([centre, side, side]).astype(np.float32)


def read_detections(
    path: Path, images: list[Path], category_id: int, bbox_scale: float = 1.25
) -> PredictInstances:
    """The boxes of a COCO detections file, on the images of ``images``, in file order.

    Args:
        path: the detections file. images: the images its entries may name.
        category_id: the dataset's COCO category (``Skeleton.category_id``), for entries
            without a ``category_id`` of their own.
        bbox_scale: see :func:`crop_boxes`.

    Raises:
        DatasetError: the file is missing or not JSON, or an entry (named by its position)
            lacks a key, names an image not in ``images``, has a box that is not finite
            or has a width or height <= 0, or a ``category_id`` that is not an integer.
    """
    entries = _load_entries(path, DETECTIONS_LAYOUT)
    by_name = {p.name: i for i, p in enumerate(images)}
    by_id = {image_id_of(p, i): i for i, p in enumerate(images)}
    rows, categories = [], []
    for n, entry in enumerate(entries):
        where = f"{path}: detection {n} (0-based)"
        bbox, score = _entry_box(where, entry, DETECTIONS_LAYOUT)
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
                "data.predict.image_dir (by file name, or by image_id = the file's numeric stem)"
            )
        category = entry.get("category_id", category_id)
        if isinstance(category, bool) or not isinstance(category, int):
            raise DatasetError(f"{where}: category_id {category!r}; expected an integer")
        rows.append((image, *bbox, score))
        categories.append(category)
    table = np.array(rows, dtype=np.float64)  # (N, 6)
    image_index = table[:, 0].astype(np.int64)
    return PredictInstances(
        image_index=image_index,
        box_px=crop_boxes(table[:, 1:5], bbox_scale),
        image_ids=np.array([image_id_of(images[i], i) for i in image_index], dtype=np.int64),
        scores=table[:, 5].astype(np.float32),
        category_ids=np.array(categories, dtype=np.int64),
    )


VIDEO_DETECTIONS_LAYOUT = (
    '[{"image_id": <0-based frame index>, "bbox": [x, y, w, h], "score"}, ...]'
)


def read_video_detections(path: Path, frames: int, bbox_scale: float = 1.25) -> np.ndarray:
    """One person box per video frame from a COCO detections file whose ``image_id`` is the
    0-based frame index (a detector run frame by frame): the highest-scoring box of each frame
    (the video outputs hold one person per frame), cropped as :func:`read_detections` crops.

    Returns:
        ``(frames, 4)`` float32 crop boxes ``(cx, cy, s, s)`` in our pixels; a frame with no
        detection is a row of NaN (predict then uses the whole frame).

    Raises:
        DatasetError: the file is missing or not JSON, or an entry (named by its position)
            has no integer ``image_id`` in ``0..frames-1`` or a box that is not finite or has
            a width or height <= 0.
    """
    entries = _load_entries(path, VIDEO_DETECTIONS_LAYOUT)
    boxes = np.full((frames, 4), np.nan, dtype=np.float32)
    best = np.full(frames, -np.inf)
    for n, entry in enumerate(entries):
        where = f"{path}: detection {n} (0-based)"
        bbox, score = _entry_box(where, entry, VIDEO_DETECTIONS_LAYOUT)
        frame = entry.get("image_id")
        if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < frames:
            raise DatasetError(
                f"{where}: image_id {frame!r}; expected the 0-based index of one of the "
                f"video's {frames} frames"
            )
        if score > best[frame]:
            best[frame] = score
            boxes[frame] = crop_boxes(np.array([bbox], dtype=np.float64), bbox_scale)[0]
    return boxes


def coco_results(
    keypoints_px: np.ndarray,
    image_ids: np.ndarray,
    scores: np.ndarray,
    category_ids: np.ndarray,
) -> list[dict]:
    """COCO keypoint results of N estimates (every keypoint written with v = 1).

    Shapes:
        keypoints_px: (N, K, 2) our pixels. image_ids, scores, category_ids: (N,); the
        category of each estimate is that of its ground truth or detection
        (``PoseDataModule.predict_records``).
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
        for kp, v, image_id, score, category_id in zip(
            xy, flags, image_ids, scores, category_ids, strict=True
        )
    ]
