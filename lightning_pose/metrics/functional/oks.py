"""OKS AP as a function: COCO keypoint average precision, computed by pycocotools' ``COCOeval``
itself (:func:`oks_average_precision`; the metric class is
:class:`~lightning_pose.metrics.oks.OKSAveragePrecision`).

The object keypoint similarity of a prediction and a ground-truth instance is
``OKS = sum_k exp(-d_k^2 / (2 s^2 kappa_k^2)) [v_k > 0] / sum_k [v_k > 0]`` with ``s^2`` the
object's area and ``kappa_k = 2 sigma_k`` (Lin et al., ECCV 2014; cocodataset.org keypoint
evaluation). AP averages precision over OKS thresholds 0.50:0.05:0.95; AP50, AP75 at one
threshold; AR is the recall averaged likewise (``COCOeval.stats[0, 1, 2, 5]``). Nothing of this
is re-implemented here: the instances are handed to ``COCOeval(iouType="keypoints")``.

What COCOeval sees: every evaluated instance (one labelled person, with its ``area``) as a
ground-truth annotation, and one prediction per instance (the model estimates from the
instance's ground-truth box, as in the COCO protocol with ground-truth boxes), score 1, in
dataset order. Crowd regions and annotations without a labelled keypoint, which COCOeval
ignores, are not passed (the readers exclude them), so a prediction is never absorbed by a
crowd region. Instances with no area (datasets without one) are left out: OKS needs a scale.
The ground truth and the predictions handed over here are both filed under one internal
category (id 1): COCOeval matches only within a category, and here there is one. The results
file users score with their own ground truth (``predictions_coco.json``) carries the dataset's
category instead (:func:`lightning_pose.data.detections.coco_results`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["OKS_KEYS", "oks_average_precision"]

OKS_KEYS = ("oks_ap", "oks_ap50", "oks_ap75", "oks_ar")


def oks_average_precision(
    pred_px: Tensor,
    target_px: Tensor,
    labelled: Tensor,
    visible: Tensor,
    area_px2: Tensor,
    image_ids: Tensor,
    sigmas: Sequence[float],
) -> dict[str, Tensor]:
    """COCO keypoint AP, AP50, AP75 and AR of N instances (pycocotools ``COCOeval``).

    Shapes:
        pred_px, target_px: (N, K, 2) pixels (any common origin; OKS depends on differences).
        labelled, visible: (N, K) bool; COCO's ``v`` is 2 where visible, 1 where only
            labelled, 0 elsewhere. area_px2: (N,) pixels², > 0. image_ids: (N,) int, the
            image each instance is in (predictions are matched within an image).
        sigmas: K per-keypoint constants (``Skeleton.oks_sigmas``).
        returns: ``oks_ap``, ``oks_ap50``, ``oks_ap75``, ``oks_ar`` () float64 in [0, 1];
            empty where N = 0.

    Raises:
        ValueError: ``sigmas`` is not of length K, or an area is not > 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n, k = labelled.shape
    if len(sigmas) != k:
        raise ValueError(f"sigmas has {len(sigmas)} values, expected K={k} (one per keypoint)")
    if n == 0:
        return {}
    if not bool((area_px2 > 0).all()):
        raise ValueError("area_px2 must be > 0 for every instance OKS scores")
    flags = labelled.long() + (labelled & visible).long()  # (N, K) COCO v: 0, 1, 2
    target = target_px.double().cpu().numpy() + 0.5  # ours -> COCO's corner frame
    pred = torch.nan_to_num(pred_px.double(), nan=1e9, posinf=1e9, neginf=-1e9)  # a miss
    pred = pred.cpu().numpy() + 0.5
    ids = image_ids.long().cpu().tolist()
    gts, dts = [], []  # one internal category, id 1 (see the module docstring)
    for i in range(n):
        lab = labelled[i].cpu().numpy()
        xy = target[i][lab]  # labelled keypoints only (COCOeval reads v > 0)
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        gts.append(
            {
                "id": i + 1,
                "image_id": ids[i],
                "category_id": 1,
                "iscrowd": 0,
                "area": float(area_px2[i]),
                # read by COCOeval only for an instance without labelled keypoints (never here)
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "num_keypoints": int(lab.sum()),
                "keypoints": _triples(target[i], flags[i].cpu().numpy()),
            }
        )
        dts.append(
            {
                "image_id": ids[i],
                "category_id": 1,
                "score": 1.0,
                "keypoints": _triples(pred[i], np.ones(k)),
            }
        )
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": [{"id": i} for i in sorted(set(ids))],
        "annotations": gts,
        "categories": [{"id": 1, "name": "instance"}],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its tables
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(dts), iouType="keypoints")
        evaluation.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    values = (stats[0], stats[1], stats[2], stats[5])
    pairs = zip(OKS_KEYS, values, strict=True)
    return {key: torch.tensor(float(v), dtype=torch.float64) for key, v in pairs}


def _triples(xy: np.ndarray, v: np.ndarray) -> list[float]:
    """(K, 2) and (K,) -> COCO's flat [x1, y1, v1, x2, ...]."""
    return np.column_stack([xy, v]).ravel().tolist()
