"""OKS AP end to end against pycocotools' ``COCOeval`` run directly on a hand-built COCO file:
several people per image, flags 0/1/2, a five-keypoint skeleton that is not COCO's with its
own sigmas, and a detection that matches nobody. The package reads the file with its COCO
reader (corner frame -> pixel centres, ``v`` -> labelled/visible, ``area``, ``image_id``)
and scores the same predictions with :class:`OKSAveragePrecision`; the numbers must equal
those of ``COCOeval`` on the raw file."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lightning_pose.data.coco import COCOKeypoints
from lightning_pose.metrics.oks import OKSAveragePrecision

NAMES = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
SIGMAS = [0.05, 0.07, 0.07, 0.09, 0.09]
CATEGORY = 7


def person(ann_id: int, image_id: int, keypoints: list[list[float]], area: float) -> dict:
    """An annotation; ``keypoints`` K x (x, y, v) in COCO's corner frame."""
    xy = np.array([k[:2] for k in keypoints if k[2] > 0])
    x0, y0 = xy.min(0) - 4
    x1, y1 = xy.max(0) + 4
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORY,
        "iscrowd": 0,
        "area": area,
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "num_keypoints": sum(k[2] > 0 for k in keypoints),
        "keypoints": [float(v) for k in keypoints for v in k],
    }


# Three images: two close people and a third in image 1, two in image 2, one in image 3.
# Flags: 2 visible, 1 labelled but occluded, 0 not labelled (its x, y are ignored).
PEOPLE = [
    person(11, 1, [[20, 10, 2], [12, 30, 2], [28, 30, 1], [15, 60, 2], [25, 60, 0]], 900.0),
    person(12, 1, [[32, 12, 2], [24, 32, 1], [40, 32, 2], [27, 62, 2], [37, 62, 2]], 1000.0),
    person(13, 1, [[90, 40, 2], [80, 55, 2], [100, 55, 2], [0, 0, 0], [95, 90, 1]], 1500.0),
    person(21, 2, [[50, 50, 1], [40, 70, 2], [60, 70, 2], [45, 100, 2], [55, 100, 2]], 1200.0),
    person(22, 2, [[150, 20, 2], [140, 40, 2], [160, 40, 0], [145, 70, 2], [155, 70, 2]], 800.0),
    person(31, 3, [[70, 30, 2], [60, 50, 2], [80, 50, 2], [65, 85, 1], [75, 85, 2]], 1100.0),
]
# One prediction per person (the model estimates each from its box), offsets in pixels:
# exact, small, medium and large misses; person 13's lands in an empty corner of its image,
# matching nobody (a false positive, and person 13 missed).
OFFSETS = [
    np.zeros((5, 2)),
    np.array([[1.0, -1], [2, 0], [-1, 2], [0, 3], [1, 1]]),
    np.full((5, 2), 400.0),
    np.array([[3.0, 2], [-4, 1], [2, -3], [5, 5], [-3, 4]]),
    np.array([[6.0, -5], [-7, 6], [8, 2], [-5, -9], [9, 7]]),
    np.array([[2.0, 0], [0, -2], [1, 1], [-3, 2], [2, 2]]),
]


def write_file(folder: Path) -> Path:
    content = {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 150} for i in (1, 2, 3)
        ],
        "annotations": PEOPLE,
        "categories": [
            {
                "id": CATEGORY,
                "name": "figure",
                "keypoints": NAMES,
                "skeleton": [[1, 2], [1, 3], [1, 4], [1, 5]],
            }
        ],
    }
    path = folder / "figures.json"
    path.write_text(json.dumps(content))
    return path


def predictions_corner_frame() -> list[np.ndarray]:
    return [
        np.array(p["keypoints"]).reshape(5, 3)[:, :2] + off
        for p, off in zip(PEOPLE, OFFSETS, strict=True)
    ]


def cocoeval_stats(path: Path) -> list[float]:
    """COCOeval on the raw file and raw results (corner frame, score 1, file order)."""
    results = [
        {
            "image_id": p["image_id"],
            "category_id": CATEGORY,
            "score": 1.0,
            "keypoints": np.column_stack([xy, np.ones(5)]).ravel().tolist(),
        }
        for p, xy in zip(PEOPLE, predictions_corner_frame(), strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(path))
        evaluation = COCOeval(truth, truth.loadRes(results), iouType="keypoints")
        evaluation.params.kpt_oks_sigmas = np.array(SIGMAS)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return [stats[0], stats[1], stats[2], stats[5]]


def test_oks_ap_equals_cocoeval_on_the_raw_file(tmp_path: Path) -> None:
    path = write_file(tmp_path)
    reference = cocoeval_stats(path)
    # the file is not trivial: some but not all persons matched at every threshold
    assert 0.2 < reference[0] < 0.9 and reference[1] < 1.0, reference

    reader = COCOKeypoints(path.name, path.name, "images", oks_sigmas=SIGMAS)
    annotations = reader.read(tmp_path)
    val = np.flatnonzero(annotations.is_val)  # the file again, as the validation split
    assert len(val) == len(PEOPLE) and annotations.skeleton.joints == tuple(NAMES)
    flags = np.array([p["keypoints"][2::3] for p in PEOPLE])  # (N, K) COCO v
    np.testing.assert_array_equal(annotations.labelled[val], flags > 0)
    np.testing.assert_array_equal(annotations.visible[val], flags == 2)

    pred_px = torch.tensor(np.stack(predictions_corner_frame()) - 0.5)  # (N, K, 2) ours
    metric = OKSAveragePrecision(annotations.skeleton.oks_sigmas)
    for batch in (slice(0, 4), slice(4, 6)):  # two batches, as validation feeds it
        rows = val[batch]
        metric.update(
            pred_px[batch],
            {
                "keypoints_px": torch.from_numpy(annotations.keypoints_px[rows]),
                "labelled": torch.from_numpy(annotations.labelled[rows]),
                "visible": torch.from_numpy(annotations.visible[rows]),
                "area_px2": torch.from_numpy(annotations.area_px2[rows]),
                "image_id": torch.from_numpy(annotations.image_ids[rows]),
                "index": torch.from_numpy(rows),
            },
        )
    out = metric.compute()
    for key, value in zip(("oks_ap", "oks_ap50", "oks_ap75", "oks_ar"), reference, strict=True):
        torch.testing.assert_close(
            out[key], torch.tensor(value, dtype=torch.float64), rtol=0, atol=1e-12, msg=key
        )
