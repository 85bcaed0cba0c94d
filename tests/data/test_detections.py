"""Person boxes for predict from a COCO detections file; COCO keypoint results out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.data import DatasetError
from lightning_pose.data.detections import (
    coco_results,
    read_detections,
    read_video_detections,
)

IMAGES = [Path("imgs/000000000042.jpg"), Path("imgs/frame.png")]


def write(tmp_path: Path, entries) -> Path:
    path = tmp_path / "dets.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return path


def test_boxes_by_image_id_and_file_name_known_answers(tmp_path: Path) -> None:
    """[2, 4, 8, 6] in COCO's corner frame: centre (6, 7) - 0.5, square side 1.25 x 8."""
    path = write(
        tmp_path,
        [
            {"file_name": "frame.png", "bbox": [2, 4, 8, 6], "score": 0.5},
            {"image_id": 42, "bbox": [0, 0, 4, 10], "score": 0.9},
            {"image_id": 42, "bbox": [1, 1, 2, 2], "category_id": 3},
        ],
    )
    found = read_detections(path, IMAGES, category_id=7)
    np.testing.assert_array_equal(found.image_index, [1, 0, 0])
    np.testing.assert_allclose(found.box_px[0], [5.5, 6.5, 10.0, 10.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(found.box_px[1], [1.5, 4.5, 12.5, 12.5], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(found.image_ids, [1, 42, 42])  # frame.png: its position
    np.testing.assert_allclose(found.scores, [0.5, 0.9, 1.0], rtol=0, atol=1e-7)
    # the detection's own category where it names one, else the dataset's
    np.testing.assert_array_equal(found.category_ids, [7, 7, 3])


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ("[{oops", r"dets.json: not a JSON file"),
        ([{"image_id": 7, "bbox": [0, 0, 1, 1]}], r"detection 0 \(0-based\): image 7 is not among"),
        ([{"file_name": "x.jpg", "bbox": [0, 0, 1, 1]}], r"image 'x.jpg' is not among the 2"),
        (
            [
                {"image_id": 42, "bbox": [0, 0, 1, 1]},
                {"image_id": 42, "bbox": [0, 0, float("inf"), 1]},
            ],
            r"detection 1 \(0-based\): bbox \[0, 0, inf, 1\]; expected .* finite",
        ),
        ([{"image_id": 42, "bbox": [0, 0, 0, 1]}], r"detection 0 .*w, h > 0"),
        ([{"image_id": 42}], r"detection 0 .* lacks 'bbox'"),
        ([{"bbox": [0, 0, 1, 1]}], r"detection 0 .*names no image"),
        (
            [{"image_id": 42, "bbox": [0, 0, 1, 1], "category_id": "person"}],
            r"detection 0 \(0-based\): category_id 'person'; expected an integer",
        ),
    ],
)
def test_bad_detections_are_named(tmp_path: Path, entries, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        read_detections(write(tmp_path, entries), IMAGES, category_id=1)


def test_coco_results_are_in_the_corner_frame() -> None:
    keypoints = np.array([[[10.0, 20.0], [0.0, 1.5]]])  # (1, 2, 2) our pixels
    results = coco_results(keypoints, np.array([42]), np.array([0.25]), np.array([7]))
    assert results == [
        {
            "image_id": 42,
            "category_id": 7,
            "keypoints": [10.5, 20.5, 1.0, 0.5, 2.0, 1.0],
            "score": 0.25,
        }
    ]


def test_video_detections_keep_each_frame_s_best_box(tmp_path: Path) -> None:
    """image_id = frame index; the higher score wins; a frame without a box is NaN."""
    path = write(
        tmp_path,
        [
            {"image_id": 2, "bbox": [1, 1, 2, 2], "score": 0.3},
            {"image_id": 0, "bbox": [2, 4, 8, 6], "score": 0.5},
            {"image_id": 2, "bbox": [0, 0, 4, 10], "score": 0.9},
            {"image_id": 2, "bbox": [5, 5, 1, 1], "score": 0.1},
        ],
    )
    boxes = read_video_detections(path, frames=3)
    assert boxes.shape == (3, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[0], [5.5, 6.5, 10.0, 10.0], rtol=0, atol=1e-6)
    assert np.isnan(boxes[1]).all()
    np.testing.assert_allclose(boxes[2], [1.5, 4.5, 12.5, 12.5], rtol=0, atol=1e-6)


@pytest.mark.parametrize("frame", [3, -1, "0", 1.0, None])
def test_video_detections_name_a_frame_outside_the_video(tmp_path: Path, frame) -> None:
    entry = {"bbox": [0, 0, 4, 4]} | ({} if frame is None else {"image_id": frame})
    path = write(tmp_path, [{"image_id": 0, "bbox": [0, 0, 4, 4]}, entry])
    with pytest.raises(
        DatasetError, match=rf"{path}: detection 1 \(0-based\): image_id .*3 frames"
    ):
        read_video_detections(path, frames=3)


def test_video_detections_check_boxes_as_image_detections_do(tmp_path: Path) -> None:
    path = write(tmp_path, [{"image_id": 0, "bbox": [0, 0, float("nan"), 4]}])
    with pytest.raises(DatasetError, match=r"detection 0 \(0-based\): bbox .*finite"):
        read_video_detections(path, frames=3)
