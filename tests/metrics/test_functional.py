"""Tests for lightning_pose.metrics.functional (its PCK functions here; PCP in test_pcp.py) against
a NumPy reference and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_pose.metrics import functional as F
from lightning_pose.metrics.functional import keypoint_distances
from lightning_pose.metrics.functional.correct_keypoints import (
    _pck_compute,
    _pck_curve,
    _pck_update,
)

ATOL, RTOL = 1e-12, 1e-12


# --- plain NumPy reference, one loop per definition (DeepPose §5) ---------------------------


def numpy_pck(
    pred: np.ndarray,
    target: np.ndarray,
    labelled: np.ndarray,
    normaliser: np.ndarray,
    thresholds: list[float],
    joint_names: list[str],
    groups: dict[str, list[int]] | None,
    prefix: str,
) -> dict[str, float]:
    """Fraction of counted joints within ``t * normaliser``; keys as in ``_pck_compute``."""
    n_b, n_k = labelled.shape
    if groups is None:
        groups = {name: [k] for k, name in enumerate(joint_names)}
    pools = {"": list(range(n_k))} | {f"/{g}": idx for g, idx in groups.items()}
    out = {}
    for t in thresholds:
        for suffix, joints in pools.items():
            hit = count = 0
            for b in range(n_b):
                if not (np.isfinite(normaliser[b]) and normaliser[b] > 0):
                    continue
                for k in joints:
                    if not labelled[b, k]:
                        continue
                    count += 1
                    d = math.hypot(*(pred[b, k] - target[b, k]))
                    if np.isfinite(d) and d <= t * normaliser[b]:
                        hit += 1
            if count:
                out[f"{prefix}@{t:g}{suffix}"] = hit / count
    return out


def numpy_curve(pred, target, labelled, normaliser, thresholds) -> np.ndarray:
    pooled = numpy_pck(pred, target, labelled, normaliser, thresholds, ["j"], {}, "p")
    return np.array([pooled.get(f"p@{t:g}", 0.0) for t in thresholds])


def random_batch(gen: torch.Generator, n_b: int, n_k: int) -> dict[str, torch.Tensor]:
    """Seeded batch with unlabelled joints, unmeasurable normalisers and non-finite predictions."""
    target = torch.rand(n_b, n_k, 2, generator=gen) * 200.0  # (B, K, 2) px
    pred = target + torch.randn(n_b, n_k, 2, generator=gen) * 8.0  # (B, K, 2) px
    bad = torch.rand(n_b, n_k, generator=gen) < 0.05
    pred[bad] = torch.tensor([float("nan"), float("inf")])
    labelled = torch.rand(n_b, n_k, generator=gen) > 0.25  # (B, K)
    normaliser = 20.0 + torch.rand(n_b, generator=gen) * 80.0  # (B,) px
    normaliser[torch.rand(n_b, generator=gen) < 0.2] = 0.0
    return {"pred_px": pred, "target_px": target, "labelled": labelled, "normaliser_px": normaliser}


def pose_batch(
    data: dict[str, torch.Tensor], normaliser_key: str = "torso_diameter_px"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(pred_px, batch)`` as every metric class's ``update`` takes them, from the functional
    arguments: ``target_px`` as ``keypoints_px``, ``normaliser_px`` as ``normaliser_key``
    (``image_ids`` as ``image_id``)."""
    names = {"target_px": "keypoints_px", "normaliser_px": normaliser_key, "image_ids": "image_id"}
    batch = {names.get(k, k): v for k, v in data.items() if k != "pred_px"}
    return data["pred_px"], batch


def as_numpy(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, ...]:
    keys = ("pred_px", "target_px", "labelled", "normaliser_px")
    return tuple(batch[k].double().numpy() if k != "labelled" else batch[k].numpy() for k in keys)


def concat(batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def assert_dict_close(actual: dict[str, torch.Tensor], expected: dict[str, float]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            actual[key], torch.tensor(value, dtype=torch.float64), atol=ATOL, rtol=RTOL, msg=key
        )


# --- known answers --------------------------------------------------------------------------

JOINTS = ["head", "left_wrist", "right_wrist"]
THRESHOLDS = [0.1, 0.2, 0.5]
THR = torch.tensor(THRESHOLDS, dtype=torch.float64)


def known_batch() -> dict[str, torch.Tensor]:
    """Two counted samples and one with an unmeasurable normaliser.

    sample 0, normaliser 10 px (radii 1, 2, 5):  distances 0, 5, 1.5
    sample 1, normaliser 20 px (radii 2, 4, 10): distances 3, 10, 0 (right wrist unlabelled)
    sample 2, normaliser 0: excluded although its predictions are far off.
    """
    target = torch.zeros(3, 3, 2)
    offset = torch.tensor(
        [
            [[0.0, 0.0], [3.0, 4.0], [1.5, 0.0]],
            [[0.0, 3.0], [6.0, 8.0], [0.0, 0.0]],
            [[90.0, 0.0], [90.0, 0.0], [90.0, 0.0]],
        ]
    )
    labelled = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    normaliser = torch.tensor([10.0, 20.0, 0.0])
    return {
        "pred_px": target + offset,
        "target_px": target,
        "labelled": labelled,
        "normaliser_px": normaliser,
    }


def test_known_answer_sums() -> None:
    hits, counts = _pck_update(**known_batch(), thresholds=THR)
    expected_hits = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 1.0], [2.0, 2.0, 1.0]])  # (T, K)
    torch.testing.assert_close(hits, expected_hits.double(), atol=0, rtol=0)
    torch.testing.assert_close(counts, torch.tensor([2.0, 2.0, 1.0]).double(), atol=0, rtol=0)


def test_known_answer_per_joint() -> None:
    hits, counts = _pck_update(**known_batch(), thresholds=THR)
    out = _pck_compute(hits, counts, THRESHOLDS, JOINTS, None, "pck")
    expected = {
        "pck@0.1": 1 / 5, "pck@0.2": 3 / 5, "pck@0.5": 5 / 5,
        "pck@0.1/head": 1 / 2, "pck@0.2/head": 2 / 2, "pck@0.5/head": 2 / 2,
        "pck@0.1/left_wrist": 0 / 2, "pck@0.2/left_wrist": 0 / 2, "pck@0.5/left_wrist": 2 / 2,
        "pck@0.1/right_wrist": 0 / 1, "pck@0.2/right_wrist": 1 / 1, "pck@0.5/right_wrist": 1 / 1,
    }  # fmt: skip
    assert_dict_close(out, expected)


def test_known_answer_groups_and_curve() -> None:
    hits, counts = _pck_update(**known_batch(), thresholds=THR)
    groups = {"head": [0], "wrist": [1, 2]}
    out = _pck_compute(hits, counts, THRESHOLDS, JOINTS, groups, "pdj")
    expected = {
        "pdj@0.1": 1 / 5, "pdj@0.2": 3 / 5, "pdj@0.5": 1.0,
        "pdj@0.1/head": 0.5, "pdj@0.2/head": 1.0, "pdj@0.5/head": 1.0,
        "pdj@0.1/wrist": 0 / 3, "pdj@0.2/wrist": 1 / 3, "pdj@0.5/wrist": 3 / 3,
    }  # fmt: skip
    assert_dict_close(out, expected)
    curve = _pck_curve(hits, counts)
    torch.testing.assert_close(
        curve, torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64), atol=ATOL, rtol=0
    )


def test_threshold_formatting() -> None:
    thresholds = [0.05, 0.2, 0.5, 1.0]
    hits, counts = torch.zeros(4, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    out = _pck_compute(hits, counts, thresholds, ["neck"], {}, "pck")
    assert list(out) == ["pck@0.05", "pck@0.2", "pck@0.5", "pck@1"]
    # float32 thresholds format the same way
    out32 = _pck_compute(hits, counts, torch.tensor(thresholds), ["neck"], {}, "pck")
    assert list(out32) == list(out)


def test_zero_counts_are_omitted_not_nan() -> None:
    batch = known_batch()
    batch["labelled"][:, 2] = False  # right wrist never labelled
    hits, counts = _pck_update(**batch, thresholds=THR)
    out = _pck_compute(hits, counts, THRESHOLDS, JOINTS, None, "pck")
    assert not any(k.endswith("/right_wrist") for k in out)
    assert "pck@0.1/head" in out
    assert all(torch.isfinite(v) for v in out.values())

    nothing = _pck_compute(hits * 0, counts * 0, THRESHOLDS, JOINTS, None, "pck")
    assert nothing == {}
    curve = _pck_curve(hits * 0, counts * 0)
    torch.testing.assert_close(curve, torch.zeros(3, dtype=torch.float64), atol=0, rtol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_prediction_is_a_miss(bad: float) -> None:
    batch = known_batch()
    batch["pred_px"][0, 0, 1] = bad  # head of sample 0 was a hit at every threshold
    hits, counts = _pck_update(**batch, thresholds=THR)
    torch.testing.assert_close(counts, torch.tensor([2.0, 2.0, 1.0]).double(), atol=0, rtol=0)
    torch.testing.assert_close(hits[:, 0], torch.tensor([0.0, 1.0, 1.0]).double(), atol=0, rtol=0)
    out = _pck_compute(hits, counts, THRESHOLDS, JOINTS, None, "pck")
    assert all(torch.isfinite(v) for v in out.values())


@pytest.mark.parametrize("bad", [0.0, -3.0, float("nan"), float("inf")])
def test_unmeasurable_normaliser_excludes_sample(bad: float) -> None:
    batch = known_batch()
    batch["normaliser_px"][1] = bad
    hits, counts = _pck_update(**batch, thresholds=THR)
    torch.testing.assert_close(counts, torch.tensor([1.0, 1.0, 1.0]).double(), atol=0, rtol=0)
    assert torch.isfinite(hits).all()


def test_empty_batch() -> None:
    batch = {
        "pred_px": torch.zeros(0, 3, 2),
        "target_px": torch.zeros(0, 3, 2),
        "labelled": torch.zeros(0, 3, dtype=torch.bool),
        "normaliser_px": torch.zeros(0),
    }
    hits, counts = _pck_update(**batch, thresholds=THR)
    assert hits.shape == (3, 3) and counts.shape == (3,)
    assert hits.sum() == 0 and counts.sum() == 0


# --- against the NumPy reference ------------------------------------------------------------


@pytest.mark.parametrize("groups", [None, {"a": [0, 3], "b": [1], "c": [2, 4, 5]}])
def test_matches_numpy_reference(groups: dict[str, list[int]] | None) -> None:
    gen = torch.Generator().manual_seed(0)
    names = [f"j{k}" for k in range(6)]
    thresholds = [0.05, 0.1, 0.2, 0.5]
    batches = [random_batch(gen, n_b, 6) for n_b in (7, 1, 12)]
    hits = torch.zeros(4, 6, dtype=torch.float64)
    counts = torch.zeros(6, dtype=torch.float64)
    for batch in batches:
        h, c = _pck_update(**batch, thresholds=torch.tensor(thresholds, dtype=torch.float64))
        hits, counts = hits + h, counts + c
    out = _pck_compute(hits, counts, thresholds, names, groups, "pck")
    everything = as_numpy(concat(batches))
    assert_dict_close(out, numpy_pck(*everything, thresholds, names, groups, "pck"))
    torch.testing.assert_close(
        _pck_curve(hits, counts),
        torch.from_numpy(numpy_curve(*everything, thresholds)),
        atol=ATOL,
        rtol=RTOL,
    )
    # the seeded data exercise every branch
    assert 0 < counts.sum() < everything[2].size
    assert 0 < hits[0].sum() < hits[-1].sum() < counts.sum()


def test_keypoint_distances_matches_numpy() -> None:
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.randn(4, 5, 2, generator=gen), torch.randn(4, 5, 2, generator=gen)
    expected = np.sqrt(((pred.numpy() - target.numpy()) ** 2).sum(-1))
    torch.testing.assert_close(
        keypoint_distances(pred, target), torch.from_numpy(expected), atol=1e-6, rtol=1e-6
    )


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "override"),
    [
        ("pred_px", {"pred_px": torch.zeros(3, 3, 3)}),
        ("pred_px", {"pred_px": torch.zeros(3, 6)}),
        ("target_px", {"target_px": torch.zeros(3, 4, 2)}),
        ("labelled", {"labelled": torch.ones(3, 2, dtype=torch.bool)}),
        ("labelled", {"labelled": torch.ones(3, 3)}),
        ("normaliser_px", {"normaliser_px": torch.ones(3, 1)}),
        ("normaliser_px", {"normaliser_px": torch.ones(2)}),
        ("thresholds", {"thresholds": torch.ones(2, 2)}),
    ],
)
def test_shape_mismatch_names_the_argument(name: str, override: dict) -> None:
    kwargs = known_batch() | {"thresholds": THR} | override
    with pytest.raises(ValueError, match=name):
        _pck_update(**kwargs)


def test_compute_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="hits"):
        _pck_compute(torch.zeros(2, 3), torch.zeros(3), [0.1], JOINTS, None, "pck")
    with pytest.raises(ValueError, match="counts"):
        _pck_compute(torch.zeros(1, 3), torch.zeros(2), [0.1], JOINTS, None, "pck")


# --- the public functional API: pdj, pckh, pck, pcp, mean_joint_error --------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["pdj", "pckh", "pck"])
def test_public_pck_family_matches_numpy_on_tensors_and_arrays(name: str, seed: int) -> None:
    batch = random_batch(torch.Generator().manual_seed(seed), 9, 4)
    pred, target, labelled, normaliser = as_numpy(batch)
    expected = numpy_pck(pred, target, labelled, normaliser, THRESHOLDS, list("abcd"), {}, "p")
    want = torch.tensor([expected[f"p@{t:g}"] for t in THRESHOLDS], dtype=torch.float64)
    function = getattr(F, name)
    args = (batch["pred_px"], batch["target_px"], batch["labelled"], batch["normaliser_px"])
    torch.testing.assert_close(function(*args, THRESHOLDS), want, atol=ATOL, rtol=RTOL)
    arrays = (pred.astype(np.float32), target.astype(np.float32), labelled, normaliser)
    torch.testing.assert_close(function(*arrays, THRESHOLDS), want, atol=ATOL, rtol=RTOL)


def test_public_pck_family_known_answers_and_defaults() -> None:
    target = np.zeros((2, 2, 2))
    pred = np.array([[[1.0, 0.0], [3.0, 4.0]], [[0.0, 0.5], [0.0, 9.0]]])  # 1, 5, 0.5, 9 px
    labelled = np.array([[True, True], [True, False]])  # the 9 px joint is not labelled
    normaliser = np.array([10.0, 10.0])  # radii at 0.05, 0.1, 0.2: 0.5, 1, 2 px
    want = torch.tensor([1 / 3, 2 / 3, 2 / 3], dtype=torch.float64)
    torch.testing.assert_close(F.pdj(pred, target, labelled, normaliser), want, atol=ATOL, rtol=0)
    # PCKh@0.5: 5 px radius
    want = torch.tensor([1.0], dtype=torch.float64)
    torch.testing.assert_close(F.pckh(pred, target, labelled, normaliser), want, atol=ATOL, rtol=0)
    error = F.mean_joint_error(pred, target, labelled)
    torch.testing.assert_close(error, torch.tensor(6.5 / 3, dtype=torch.float64), atol=ATOL, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_public_pcp_matches_numpy(seed: int) -> None:
    from .test_pcp import GROUPS, LIMBS, NUM_JOINTS, numpy_pcp, numpy_weights
    from .test_pcp import random_batch as pcp_batch

    batch = pcp_batch(torch.Generator().manual_seed(seed), 12)
    pred, target, labelled = (batch["pred_px"], batch["target_px"], batch["labelled"])
    args = (pred.double().numpy(), target.double().numpy(), labelled.numpy())
    expected = numpy_pcp(*args, LIMBS, THRESHOLDS, GROUPS)
    want = torch.tensor([expected[f"pcp@{t:g}"] for t in THRESHOLDS], dtype=torch.float64)
    weights = numpy_weights(LIMBS, NUM_JOINTS)
    got = F.pcp(pred, target, labelled, weights, THRESHOLDS)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)


def test_public_pcp_known_answer() -> None:
    """Two sticks of length 10 px, a-b and b-c: c is 6 px off, so b-c misses at 0.5 (5 px)
    and hits at 0.6; a-b is exact."""
    target = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])  # (1, 3, 2)
    pred = target + np.array([[[0.0, 0.0], [0.0, 0.0], [6.0, 0.0]]])
    weights = np.zeros((2, 2, 3))
    weights[0, 0, 0] = weights[0, 1, 1] = weights[1, 0, 1] = weights[1, 1, 2] = 1.0  # (L, 2, K)
    labelled = np.ones((1, 3), dtype=bool)
    got = F.pcp(pred, target, labelled, weights, (0.5, 0.6))
    want = torch.tensor([0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="no limb"):
        F.pcp(pred, target, np.zeros((1, 3), dtype=bool), weights)


def test_public_api_raises_when_nothing_is_counted_or_inputs_are_off() -> None:
    pred = np.zeros((1, 2, 2))
    nobody = np.zeros((1, 2), dtype=bool)
    with pytest.raises(ValueError, match="no joint"):
        F.pdj(pred, pred, nobody, np.ones(1))
    with pytest.raises(ValueError, match="no joint"):
        F.pckh(pred, pred, np.ones((1, 2), dtype=bool), np.zeros(1))  # no head size
    with pytest.raises(ValueError, match="no joint"):
        F.mean_joint_error(pred, pred, nobody)
    with pytest.raises(ValueError, match="labelled must be a bool"):
        F.pdj(pred, pred, np.ones((1, 2)), np.ones(1))
    with pytest.raises(TypeError, match="pred_px must be"):
        F.pdj(pred.tolist(), pred, nobody, np.ones(1))
