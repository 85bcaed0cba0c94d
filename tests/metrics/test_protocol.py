"""StageMetrics for any skeleton: each metric present where it can count, absent otherwise."""

from __future__ import annotations

import torch

from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics
from lightning_pose.skeleton import Limb, Skeleton


def test_stage_metrics_without_torso_report_bbox_pck_and_oks_not_pdj() -> None:
    skeleton = Skeleton("dot", ("a", "b"), (), None, None, (Limb("ab", (0,), (1,)),), (0.1, 0.1))
    metrics = StageMetrics(skeleton, EvaluationProtocol(pck_bbox_thresholds=(0.1,)))
    target = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])  # (1, 2, 2)
    pred = target + torch.tensor([[[0.5, 0.0], [3.0, 0.0]]])  # errors 0.5 and 3 pixels
    batch = {
        "keypoints_px": target,
        "labelled": torch.ones(1, 2, dtype=torch.bool),
        "visible": torch.ones(1, 2, dtype=torch.bool),
        "torso_diameter_px": torch.zeros(1),
        "head_size_px": torch.zeros(1),
        "bbox_size_px": torch.tensor([20.0]),  # bbox-PCK@0.1: within 2 px -> joint a only
        "area_px2": torch.tensor([400.0]),
        "image_id": torch.tensor([0]),
        "index": torch.tensor([0]),
    }
    metrics.update(pred, batch)
    out = metrics.compute()
    assert not any(k.startswith(("pdj", "pckh")) for k in out)
    torch.testing.assert_close(
        out["pck_bbox@0.1"], torch.tensor(0.5, dtype=torch.float64), rtol=0, atol=0
    )
    assert {"oks_ap", "oks_ap50", "oks_ap75", "oks_ar"} <= set(out)
    assert float(metrics.counts()["count/pck_bbox"]) == 2


def test_stage_metrics_without_limbs_have_no_pcp() -> None:
    """A COCO category without ``skeleton`` pairs: no PCP, the rest as usual."""
    skeleton = Skeleton("dots", ("a", "b"), (), (0, 1), None, ())
    metrics = StageMetrics(skeleton, EvaluationProtocol(pdj_thresholds=(0.5,)))
    target = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])  # torso diameter 10
    batch = {
        "keypoints_px": target,
        "labelled": torch.ones(1, 2, dtype=torch.bool),
        "torso_diameter_px": torch.tensor([10.0]),
        "head_size_px": torch.zeros(1),
    }
    metrics.update(target + torch.tensor([[[4.0, 0.0], [6.0, 0.0]]]), batch)
    out = metrics.compute()
    assert not any(k.startswith("pcp") for k in out)
    torch.testing.assert_close(
        out["pdj@0.5"], torch.tensor(0.5, dtype=torch.float64), rtol=0, atol=0
    )
    assert float(metrics.counts()["count/pcp"]) == 0
