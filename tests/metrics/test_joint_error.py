"""MeanJointError (mean_error_px): against a plain NumPy reference, known answers, what is
counted, and under two gloo processes with uneven shards."""

from __future__ import annotations

import math

import numpy as np
import torch

from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.joint_error import MeanJointError
from lightning_pose.metrics.protocol import EvaluationProtocol
from tests.gloo import assert_rank_results, requires_gloo, run_on_gloo

ATOL, RTOL = 1e-12, 1e-12
SKELETON = Skeleton("t", ("left_wrist", "right_wrist", "neck"), ((0, 1),), None, None, ())
# Rank 0 sees 5 samples in 2 updates, rank 1 sees 3 samples in 3 updates (one of them empty).
SHARDS = {0: [(0, 3), (3, 5)], 1: [(5, 6), (6, 6), (6, 8)]}


def numpy_mean_error(pred, target, labelled, groups: dict[str, list[int]]) -> dict[str, float]:
    """One loop per definition: mean distance over the labelled joints of each pool."""
    pools = {"": list(range(labelled.shape[1]))} | {f"/{g}": idx for g, idx in groups.items()}
    out = {}
    for suffix, joints in pools.items():
        total, count = 0.0, 0
        for b in range(labelled.shape[0]):
            for k in joints:
                if labelled[b, k]:
                    total += math.hypot(*(pred[b, k] - target[b, k]))
                    count += 1
        if count:
            out[f"mean_error_px{suffix}"] = total / count
    return out


def batch(n_b: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(n_b, 3, 2, generator=gen) * 200.0  # (B, K, 2) px
    pred = target + torch.randn(n_b, 3, 2, generator=gen) * 8.0
    labelled = torch.rand(n_b, 3, generator=gen) > 0.3  # (B, K)
    return pred, {"keypoints_px": target, "labelled": labelled}


def test_known_answer_and_groups() -> None:
    metric = MeanJointError(SKELETON, EvaluationProtocol())
    target = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [9.0, 9.0]], [[0.0, 2.0], [6.0, 8.0], [0, 0]]])
    labelled = torch.tensor([[True, True, False], [True, True, True]])  # (2, 3)
    metric.update(pred, {"keypoints_px": target, "labelled": labelled})
    out = metric.compute()
    expected = {
        "mean_error_px": (5 + 1 + 2 + 10 + 0) / 5,
        "mean_error_px/wrist": (5 + 1 + 2 + 10) / 4,
        "mean_error_px/neck": 0.0,  # the unlabelled 12.7 px of sample 0 is not counted
        "mean_error_px/limb_joints": (5 + 1 + 2 + 10) / 4,  # the wrists: limb joints
    }
    assert sorted(out) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            out[key], torch.tensor(value, dtype=torch.float64), atol=ATOL, rtol=RTOL
        )
    assert metric.counted() == {"count/mean_error_px": torch.tensor(5.0, dtype=torch.float64)}
    assert metric.declaration.higher_is_better is False and metric.declaration.unit == "px"


def test_against_numpy_over_batches() -> None:
    metric = MeanJointError(SKELETON, EvaluationProtocol())
    preds, batches = zip(*(batch(n, seed) for n, seed in ((4, 1), (0, 2), (7, 3))), strict=True)
    for pred, b in zip(preds, batches, strict=True):
        metric.update(pred, b)
    pred = torch.cat(preds).double().numpy()
    target = torch.cat([b["keypoints_px"] for b in batches]).double().numpy()
    labelled = torch.cat([b["labelled"] for b in batches]).numpy()
    expected = numpy_mean_error(pred, target, labelled, SKELETON.groups())
    out = metric.compute()
    assert sorted(out) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            out[key], torch.tensor(value, dtype=torch.float64), atol=1e-9, rtol=1e-12
        )


def test_non_finite_prediction_is_infinitely_far_and_nothing_counted_is_absent() -> None:
    metric = MeanJointError(SKELETON, EvaluationProtocol())
    target = torch.zeros(1, 3, 2)
    pred = torch.tensor([[[float("nan"), 0.0], [1.0, 0.0], [2.0, 0.0]]])
    metric.update(pred, {"keypoints_px": target, "labelled": torch.tensor([[True, False, False]])})
    out = metric.compute()
    # neck: nothing counted
    assert sorted(out) == ["mean_error_px", "mean_error_px/limb_joints", "mean_error_px/wrist"]
    assert math.isinf(float(out["mean_error_px"])) and float(out["mean_error_px"]) > 0


def _worker(rank: int) -> None:
    pred, data = batch(8, 11)
    metric = MeanJointError(SKELETON, EvaluationProtocol())
    for a, b in SHARDS[rank]:
        metric.update(pred[a:b], {k: v[a:b] for k, v in data.items()})
    expected = numpy_mean_error(
        pred.double().numpy(),
        data["keypoints_px"].double().numpy(),
        data["labelled"].numpy(),
        SKELETON.groups(),
    )
    assert_rank_results(metric.compute(), expected, rank, 1e-9, 1e-12)
    total = float(np.sum(data["labelled"].numpy()))
    torch.testing.assert_close(
        metric.counted()["count/mean_error_px"],
        torch.tensor(total, dtype=torch.float64),
        atol=0,
        rtol=0,
    )


@requires_gloo
def test_mean_joint_error_two_gloo_processes_uneven_shards() -> None:
    run_on_gloo(_worker)
