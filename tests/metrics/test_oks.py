"""OKS AP through pycocotools: known answers, and two gloo processes with uneven shards giving
the one-process numbers."""

from __future__ import annotations

import math

import torch

from lightning_pose.metrics.functional.oks import oks_average_precision
from lightning_pose.metrics.oks import OKSAveragePrecision
from tests.gloo import requires_gloo, run_on_gloo, update_on_shards
from tests.metrics.test_functional import pose_batch

SIGMA, AREA = 0.1, 100.0


def offset_for(oks: float) -> float:
    """Distance d with exp(-d² / (2 area (2 sigma)²)) = oks (COCOeval's OKS of one keypoint)."""
    return math.sqrt(-math.log(oks) * 2 * AREA * (2 * SIGMA) ** 2)


def two_instances() -> dict[str, torch.Tensor]:
    """One exact prediction, one at OKS 0.72, each alone in its image; K = 1."""
    target = torch.tensor([[[10.0, 20.0]], [[30.0, 40.0]]])  # (2, 1, 2)
    pred = target.clone()
    pred[1, 0, 0] += offset_for(0.72)
    return {
        "pred_px": pred,
        "target_px": target,
        "labelled": torch.ones(2, 1, dtype=torch.bool),
        "visible": torch.ones(2, 1, dtype=torch.bool),
        "area_px2": torch.full((2,), AREA),
        "image_ids": torch.tensor([3, 4]),
    }


def test_oks_ap_known_answers() -> None:
    """Thresholds 0.50 ... 0.70 match both (AP 1); 0.75 ... 0.95 only the exact one, which
    comes first at equal scores: precision 1 up to recall 0.5, i.e. 51 of COCO's 101 recall
    points. AP = (5 + 5 x 51/101) / 10; AP50 = 1; AP75 = 51/101; AR = (5 + 5 x 0.5) / 10."""
    out = oks_average_precision(**two_instances(), sigmas=[SIGMA])
    expected = {
        "oks_ap": (5 + 5 * 51 / 101) / 10,
        "oks_ap50": 1.0,
        "oks_ap75": 51 / 101,
        "oks_ar": 0.75,
    }
    for key, value in expected.items():
        torch.testing.assert_close(
            out[key], torch.tensor(value, dtype=torch.float64), rtol=0, atol=1e-9
        )


def test_perfect_predictions_score_one_and_nan_predictions_miss() -> None:
    data = two_instances()
    data["pred_px"] = data["target_px"].clone()
    out = oks_average_precision(**data, sigmas=[SIGMA])
    assert all(float(v) == 1.0 for v in out.values())
    data["pred_px"][1] = float("nan")
    out = oks_average_precision(**data, sigmas=[SIGMA])
    torch.testing.assert_close(
        out["oks_ar"], torch.tensor(0.5, dtype=torch.float64), rtol=0, atol=1e-9
    )


def test_wrong_sigma_count_is_an_error() -> None:
    import pytest

    with pytest.raises(ValueError, match=r"sigmas has 2 values, expected K=1"):
        oks_average_precision(**two_instances(), sigmas=[0.1, 0.1])


def _all() -> dict[str, torch.Tensor]:
    """7 instances in 3 images, K = 3, random errors (seeded)."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(7, 3, 2, generator=g) * 100
    return {
        "pred_px": target + torch.randn(7, 3, 2, generator=g) * 4,
        "target_px": target,
        "labelled": torch.rand(7, 3, generator=g) > 0.2,
        "visible": torch.rand(7, 3, generator=g) > 0.4,
        "area_px2": torch.rand(7, generator=g) * 2000 + 500,
        "image_ids": torch.tensor([0, 0, 1, 1, 1, 2, 2]),
        "index": torch.arange(7),
    }


SIGMAS = (0.05, 0.08, 0.1)
SHARDS = {0: [(0, 1), (4, 6)], 1: [(1, 4), (6, 6), (6, 7)]}  # uneven, interleaved, one empty


def _one_process() -> dict[str, torch.Tensor]:
    data = _all()
    data["labelled"][:, 0] = True  # every instance has a labelled keypoint
    return data


def _worker(rank: int) -> None:
    data = _one_process()
    metric = OKSAveragePrecision(SIGMAS)
    update_on_shards(metric, *pose_batch(data), SHARDS[rank])
    out = metric.compute()
    alone = OKSAveragePrecision(SIGMAS)
    alone._to_sync = False
    alone.update(*pose_batch(data))
    expected = alone.compute()
    assert sorted(out) == sorted(expected) == ["oks_ap", "oks_ap50", "oks_ap75", "oks_ar"]
    for key in expected:
        torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0)


@requires_gloo
def test_oks_two_gloo_processes_equal_one_process() -> None:
    run_on_gloo(_worker)
