"""The protocol's declared metrics (:mod:`lightning_pose.metrics.wrappers`): each reads its own
normaliser from the batch, declares its keys, counts what its declaration says, and applies only
to skeletons it can score."""

from __future__ import annotations

import inspect

import pytest
import torch

from lightning_pose.data.skeleton import Limb, Skeleton
from lightning_pose.metrics import PCK, PCP, PDJ, MeanJointError, OKSAveragePrecision, PCKh
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.metrics.wrappers import (
    StageBboxPCK,
    StageOKS,
    StagePCKh,
    StagePCP,
    StagePDJ,
)

SKELETON = Skeleton(
    "s", ("left_wrist", "right_wrist", "neck"), ((0, 1),), (0, 2), (1, 2), (Limb("ab", (0,), (1,)),)
)
PROTOCOL = EvaluationProtocol(
    pdj_thresholds=(0.5,), pckh_thresholds=(0.5,), pck_bbox_thresholds=(0.5,)
)
TARGET = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]])  # (1, 3, 2)
PRED = TARGET + torch.tensor([[[3.0, 0.0], [7.0, 0.0], [0.0, 0.0]]])  # 3, 7, 0 px off


def batch(**normalisers: float) -> dict[str, torch.Tensor]:
    out = {"keypoints_px": TARGET, "labelled": torch.ones(1, 3, dtype=torch.bool)}
    return out | {k: torch.tensor([v]) for k, v in normalisers.items()}


@pytest.mark.parametrize(
    ("cls", "key", "normaliser", "expected"),
    [
        (StagePDJ, "torso_diameter_px", 10.0, 2 / 3),  # 5 px: the 3 and 0 px joints
        (StagePCKh, "head_size_px", 20.0, 1.0),  # 10 px: all
        (StageBboxPCK, "bbox_size_px", 2.0, 1 / 3),  # 1 px: the exact neck only
    ],
)
def test_each_pck_reads_its_own_normaliser(cls, key: str, normaliser: float, expected: float):
    metric = cls(SKELETON, PROTOCOL)
    others = {k: 1000.0 for k in ("torso_diameter_px", "head_size_px", "bbox_size_px") if k != key}
    metric.update(PRED, batch(**{key: normaliser}, **others))
    name = metric.declaration.name
    out = metric.compute()
    assert set(out) == {
        f"{name}@0.5",
        f"{name}@0.5/wrist",
        f"{name}@0.5/neck",
        f"{name}@0.5/limb_joints",
    }
    torch.testing.assert_close(
        out[f"{name}@0.5"], torch.tensor(expected, dtype=torch.float64), atol=1e-12, rtol=0
    )
    assert float(metric.counted()[f"count/{name}"]) == 3


def test_pdj_counts_limb_joints_and_bbox_pck_skips_a_batch_without_boxes() -> None:
    pdj = StagePDJ(SKELETON, PROTOCOL)
    pdj.update(PRED, batch(torso_diameter_px=10.0))
    assert {k: float(v) for k, v in pdj.counted().items()} == {
        "count/pdj": 3,
        "count/pdj/limb_joints": 2,  # the wrists
    }
    bbox = StageBboxPCK(SKELETON, PROTOCOL)
    bbox.update(PRED, batch(torso_diameter_px=10.0))  # no bbox_size_px
    assert bbox.compute() == {} and float(bbox.counted()["count/pck_bbox"]) == 0


def test_pcp_and_oks_apply_only_where_the_skeleton_allows() -> None:
    bare = Skeleton("bare", ("a", "b"), (), None, None, ())
    assert StagePCP.applies_to(SKELETON) and not StagePCP.applies_to(bare)
    assert not StageOKS.applies_to(SKELETON)
    assert StageOKS.applies_to(Skeleton("coco", ("a", "b"), (), None, None, (), (0.1, 0.2)))
    pcp = StagePCP(SKELETON, PROTOCOL)
    pcp.update(PRED, batch())  # a-b is 10 px; a is 3 px and b 7 px off: a miss at 0.5
    torch.testing.assert_close(
        pcp.compute()["pcp@0.5"], torch.tensor(0.0, dtype=torch.float64), atol=0, rtol=0
    )
    assert float(pcp.counted()["count/pcp"]) == 1


def test_declarations_follow_the_protocol() -> None:
    protocol = EvaluationProtocol(pdj_thresholds=(0.1, 0.3))
    assert StagePDJ.declare(protocol).keys() == ("pdj@0.1", "pdj@0.3")
    assert StageOKS.declare(protocol).keys() == ("oks_ap", "oks_ap50", "oks_ap75", "oks_ar")
    assert StageOKS.declare(protocol).logs_count is False
    assert StagePCP.declare(protocol).groups == "limb"
    assert all(
        cls.declare(protocol).higher_is_better
        for cls in (StagePDJ, StagePCKh, StagePCP, StageBboxPCK, StageOKS)
    )


@pytest.mark.parametrize(
    "cls",
    [PCK, PDJ, PCKh, PCP, OKSAveragePrecision, MeanJointError]
    + [StagePDJ, StagePCKh, StageBboxPCK, StagePCP, StageOKS],
)
def test_every_keypoint_metric_is_updated_with_the_predictions_and_the_batch(cls) -> None:
    """One interface: ``update(pred_px, batch)``, batch a ``lightning_pose.data.dataset.Batch``."""
    assert list(inspect.signature(cls.update).parameters) == ["self", "pred_px", "batch"]
