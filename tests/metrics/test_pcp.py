"""Tests for strict PCP (Ferrari et al. 2008; DeepPose Table 1) against a NumPy reference,
hand-worked known answers, the LSP skeleton and two gloo processes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.utilities.data import dim_zero_sum

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.metrics.functional.correct_parts import _pcp_update
from lightning_pose.metrics.pcp import PCP
from tests.gloo import assert_rank_results, requires_gloo, run_on_gloo, update_on_shards
from tests.metrics.test_functional import pose_batch

ATOL, RTOL = 1e-12, 1e-12

# --- plain NumPy reference: one loop per limb, end points as means of joints ----------------

# A made-up 10-joint skeleton: single-joint ends, a two-joint end (torso), a three-joint end
# (head) and joint 9, which no limb uses.
NUM_JOINTS = 10
LIMBS = (
    ("left_upper", (0,), (1,)),
    ("left_lower", (1,), (2,)),
    ("right_upper", (3,), (4,)),
    ("right_lower", (4,), (5,)),
    ("torso", (0, 3), (6, 7)),
    ("head", (6,), (6, 7, 8)),
)
NAMES = [name for name, _, _ in LIMBS]
GROUPS = {"upper": [0, 2], "lower": [1, 3], "torso": [4], "head": [5]}
THRESHOLDS = [0.1, 0.2, 0.5]


def numpy_weights(limbs, num_joints: int) -> np.ndarray:
    """(L, 2, K) averaging weights, built here independently of ``Skeleton``."""
    weights = np.zeros((len(limbs), 2, num_joints))
    for i, (_, start, end) in enumerate(limbs):
        for e, joints in enumerate((start, end)):
            for j in joints:
                weights[i, e, j] = 1.0 / len(joints)
    return weights


def numpy_sums(pred, target, labelled, limbs, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """hits (T, L) and counts (L,) of strict PCP: both ends within t x true limb length."""
    hits = np.zeros((len(thresholds), len(limbs)))
    counts = np.zeros(len(limbs))
    for b in range(pred.shape[0]):
        for i, (_, start, end) in enumerate(limbs):
            joints = [*start, *end]
            if not all(labelled[b, j] and np.isfinite(target[b, j]).all() for j in joints):
                continue
            true_start = target[b, list(start)].mean(axis=0)
            true_end = target[b, list(end)].mean(axis=0)
            length = math.dist(true_start, true_end)
            if not (math.isfinite(length) and length > 0):
                continue
            counts[i] += 1
            with np.errstate(invalid="ignore"):
                d_start = math.dist(pred[b, list(start)].mean(axis=0), true_start)
                d_end = math.dist(pred[b, list(end)].mean(axis=0), true_end)
            for ti, t in enumerate(thresholds):
                if d_start <= t * length and d_end <= t * length:  # NaN compares False
                    hits[ti, i] += 1
    return hits, counts


def numpy_pcp(pred, target, labelled, limbs, thresholds, groups, prefix="pcp") -> dict:
    """Pooled fractions keyed like ``_pck_compute``; pools with no counted limb left out."""
    hits, counts = numpy_sums(pred, target, labelled, limbs, thresholds)
    if groups is None:
        groups = {name: [i] for i, (name, _, _) in enumerate(limbs)}
    pools = {"": list(range(len(limbs)))} | {f"/{g}": idx for g, idx in groups.items()}
    out = {}
    for ti, t in enumerate(thresholds):
        for suffix, idx in pools.items():
            if counts[idx].sum() > 0:
                out[f"{prefix}@{t:g}{suffix}"] = hits[ti, idx].sum() / counts[idx].sum()
    return out


def random_batch(gen: torch.Generator, n_b: int) -> dict[str, torch.Tensor]:
    """Seeded batch with unlabelled joints, zero-length limbs and non-finite predictions."""
    target = torch.rand(n_b, NUM_JOINTS, 2, generator=gen, dtype=torch.float64) * 200  # px
    pred = target + torch.randn(n_b, NUM_JOINTS, 2, generator=gen, dtype=torch.float64) * 15
    labelled = torch.rand(n_b, NUM_JOINTS, generator=gen) > 0.2  # (B, K)
    bad = torch.rand(n_b, NUM_JOINTS, generator=gen) < 0.05
    pred[bad] = torch.tensor([float("nan"), float("inf")], dtype=torch.float64)
    zero = torch.rand(n_b, generator=gen) < 0.25
    zero[0] = True
    target[zero, 1] = target[zero, 0]  # left_upper has length 0 in these samples
    labelled[0, :2] = True
    if n_b > 1:  # a counted limb with a NaN end, and an inf on the joint no limb uses
        labelled[1] = True
        pred[1, 2, 0] = float("nan")
        pred[1, 9, 1] = float("inf")
    return {"pred_px": pred.float(), "target_px": target.float(), "labelled": labelled}


def as_numpy(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        batch["pred_px"].double().numpy(),
        batch["target_px"].double().numpy(),
        batch["labelled"].numpy(),
    )


def concat(batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def make_pcp(groups=GROUPS, thresholds=THRESHOLDS) -> PCP:
    return PCP(NAMES, numpy_weights(LIMBS, NUM_JOINTS), thresholds=thresholds, groups=groups)


def assert_dict_close(actual: dict, expected: dict, atol: float = ATOL, rtol: float = RTOL):
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            actual[key].double().cpu(),
            torch.tensor(value, dtype=torch.float64),
            atol=atol,
            rtol=rtol,
            msg=lambda m, key=key: f"{key}: {m}",
        )


# --- NumPy reference ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_update_matches_numpy_reference(seed: int) -> None:
    batch = random_batch(torch.Generator().manual_seed(seed), 16)
    thr = torch.tensor(THRESHOLDS, dtype=torch.float64)
    weights = torch.from_numpy(numpy_weights(LIMBS, NUM_JOINTS)).float()
    hits, counts = _pcp_update(**batch, endpoint_weights=weights, thresholds=thr)
    assert hits.shape == (3, 6) and hits.dtype == torch.float64
    assert counts.shape == (6,) and counts.dtype == torch.float64
    ref_hits, ref_counts = numpy_sums(*as_numpy(batch), LIMBS, THRESHOLDS)
    torch.testing.assert_close(counts, torch.from_numpy(ref_counts), atol=0, rtol=0)
    torch.testing.assert_close(hits, torch.from_numpy(ref_hits), atol=0, rtol=0)
    # the batch exercises every rule: excluded limbs, hits and misses at each threshold
    assert 0 < ref_counts.sum() < 16 * len(LIMBS)
    assert (0 < ref_hits.sum(1)).all() and (ref_hits.sum(1) < ref_counts.sum()).all()


@pytest.mark.parametrize("groups", [GROUPS, None])
def test_metric_matches_numpy_reference(groups) -> None:
    batch = random_batch(torch.Generator().manual_seed(3), 24)
    metric = make_pcp(groups=groups)
    metric.update(*pose_batch(batch))
    expected = numpy_pcp(*as_numpy(batch), LIMBS, THRESHOLDS, groups)
    assert len(expected) == len(THRESHOLDS) * (1 + len(groups or NAMES))
    assert_dict_close(metric.compute(), expected)


# --- hand-worked known answers: one limb from joint 0 to joint 1, joint 2 unused ------------

# True limb (0, 0) -> (10, 0): length 10, radii 2.5 at t=0.25 and 5 at t=0.5.
NAN = float("nan")
TRUTH = [[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]
KNOWN = [
    # id, pred (3, 2), truth (3, 2), labelled (3,), counted, hit@0.25, hit@0.5
    ("exact", TRUTH, TRUTH, (1, 1, 1), 1, 1, 1),
    ("both ends on the 0.25 radius", [[1.5, 2], [10, -2.5], [5, 5]], TRUTH, (1, 1, 1), 1, 1, 1),
    ("start on the 0.5 radius", [[3, 4], [10, 0], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 1),
    ("both ends inside 0.5", [[4, 0], [10, -4.5], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 1),
    ("start just outside 0.5", [[0, 5.5], [10, 0], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 0),
    ("start right, end wrong", [[0, 0], [16, 0], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 0),
    ("ends swapped", [[10, 0], [0, 0], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 0),
    ("NaN end prediction", [[0, 0], [NAN, 0], [5, 5]], TRUTH, (1, 1, 1), 1, 0, 0),
    ("NaN on the unused joint", [[0, 0], [10, 0], [NAN, NAN]], TRUTH, (1, 1, 1), 1, 1, 1),
    ("unused joint unlabelled", TRUTH, TRUTH, (1, 1, 0), 1, 1, 1),
    ("end unlabelled", [[90, 90], [90, 90], [5, 5]], TRUTH, (1, 0, 1), 0, 0, 0),
    ("zero-length truth", TRUTH, [[0, 0], [0, 0], [5, 5]], (1, 1, 1), 0, 0, 0),
    ("labelled NaN truth", TRUTH, [[0, 0], [NAN, 0], [5, 5]], (1, 1, 1), 0, 0, 0),
    ("labelled NaN truth, unused joint", TRUTH, [[0, 0], [10, 0], [NAN, 5]], (1, 1, 1), 1, 1, 1),
]
ONE_LIMB = (("stick", (0,), (1,)),)


def known_batch(rows=KNOWN) -> dict[str, torch.Tensor]:
    return {
        "pred_px": torch.tensor([row[1] for row in rows], dtype=torch.float32),
        "target_px": torch.tensor([row[2] for row in rows], dtype=torch.float32),
        "labelled": torch.tensor([row[3] for row in rows], dtype=torch.bool),
    }


@pytest.mark.parametrize("row", KNOWN, ids=[row[0] for row in KNOWN])
def test_known_answer_rows(row) -> None:
    _, _, _, _, counted, hit_quarter, hit_half = row
    hits, counts = _pcp_update(
        **known_batch([row]),
        endpoint_weights=torch.from_numpy(numpy_weights(ONE_LIMB, 3)),
        thresholds=torch.tensor([0.25, 0.5]),
    )
    torch.testing.assert_close(counts, torch.tensor([counted], dtype=torch.float64), atol=0, rtol=0)
    expected = torch.tensor([[hit_quarter], [hit_half]], dtype=torch.float64)
    torch.testing.assert_close(hits, expected, atol=0, rtol=0)


def test_known_answer_table() -> None:
    metric = PCP(["stick"], numpy_weights(ONE_LIMB, 3), thresholds=(0.25, 0.5))
    metric.update(*pose_batch(known_batch()))
    # 11 counted rows; 5 correct at 0.25 and 7 at 0.5
    expected = {"pcp@0.25": 5 / 11, "pcp@0.5": 7 / 11} | {
        "pcp@0.25/stick": 5 / 11,
        "pcp@0.5/stick": 7 / 11,
    }
    assert_dict_close(metric.compute(), expected)
    torch.testing.assert_close(
        metric.counts, torch.tensor([11.0], dtype=torch.float64), atol=0, rtol=0
    )


# --- the real LSP skeleton ------------------------------------------------------------------

# A standing person, (x, y) pixels, in LSP joint order.
LSP_POSE = [
    [80, 380], [80, 300], [85, 220], [115, 220], [120, 300], [120, 380],  # legs, R then L
    [40, 220], [50, 160], [70, 100], [130, 100], [150, 160], [160, 220],  # arms, R then L
    [100, 90], [100, 40],  # neck, head top
]  # fmt: skip


def lsp_batch() -> dict[str, torch.Tensor]:
    pose = torch.tensor(LSP_POSE, dtype=torch.float32)  # (K, 2)
    target = torch.stack([pose, pose * 0.8 + torch.tensor([30.0, 10.0])])  # (2, K, 2)
    labelled = torch.ones(2, LSP_SKELETON.num_joints, dtype=torch.bool)
    return {"pred_px": target.clone(), "target_px": target, "labelled": labelled}


def lsp_pcp() -> PCP:
    return PCP(
        LSP_SKELETON.limb_names,
        LSP_SKELETON.limb_endpoint_weights(),
        groups=LSP_SKELETON.limb_groups(),
    )


def test_lsp_perfect_prediction_and_unlabelled_hip() -> None:
    metric = lsp_pcp()
    metric.update(*pose_batch(lsp_batch()))
    groups = ["lower_leg", "upper_leg", "lower_arm", "upper_arm", "torso", "head"]
    assert sorted(LSP_SKELETON.limb_groups()) == sorted(groups)
    perfect = {"pcp@0.5": 1.0} | {f"pcp@0.5/{g}": 1.0 for g in groups}
    assert_dict_close(metric.compute(), perfect)
    torch.testing.assert_close(
        metric.counts, torch.full((10,), 2.0, dtype=torch.float64), rtol=0, atol=1e-6
    )

    metric.reset()
    batch = lsp_batch()
    batch["labelled"][0, LSP_SKELETON.joints.index("right_hip")] = False
    metric.update(*pose_batch(batch))
    expected_counts = torch.full((10,), 2.0, dtype=torch.float64)
    expected_counts[
        [LSP_SKELETON.limb_names.index("torso"), LSP_SKELETON.limb_names.index("right_upper_leg")]
    ] = 1
    torch.testing.assert_close(metric.counts, expected_counts, atol=0, rtol=0)
    assert_dict_close(metric.compute(), perfect)


def test_lsp_torso_runs_between_hip_and_shoulder_midpoints() -> None:
    """Torso lengths are 120 and 96 px (radii 60, 48); upper legs about 80 and 64 px."""
    r_hip, l_hip = LSP_SKELETON.joints.index("right_hip"), LSP_SKELETON.joints.index("left_hip")
    spread = lsp_batch()  # hips 70 px apart from the truth in opposite directions
    spread["pred_px"][:, r_hip, 0] -= 70
    spread["pred_px"][:, l_hip, 0] += 70
    metric = lsp_pcp()
    metric.update(*pose_batch(spread))
    out = metric.compute()
    assert out["pcp@0.5/torso"].item() == 1.0  # midpoint unchanged
    assert out["pcp@0.5/upper_leg"].item() == 0.0
    assert out["pcp@0.5/lower_leg"].item() == 1.0

    shifted = lsp_batch()  # both hips 70 px to the right: the midpoint moves 70 px
    shifted["pred_px"][:, [r_hip, l_hip], 0] += 70
    metric = lsp_pcp()
    metric.update(*pose_batch(shifted))
    assert metric.compute()["pcp@0.5/torso"].item() == 0.0


# --- the Metric: states, accumulation, reset, devices ---------------------------------------


def test_states_are_fixed_size_float64_sums() -> None:
    metric = make_pcp()
    assert metric.hits.shape == (3, 6) and metric.hits.dtype == torch.float64
    assert metric.counts.shape == (6,) and metric.counts.dtype == torch.float64
    assert metric._reductions == {"hits": dim_zero_sum, "counts": dim_zero_sum}
    assert "endpoint_weights" not in metric._defaults
    assert metric.full_state_update is False and metric.higher_is_better is True


def test_accumulation_equals_one_update_on_concatenation() -> None:
    gen = torch.Generator().manual_seed(4)
    batches = [random_batch(gen, n_b) for n_b in (4, 9, 1, 6)]
    several, once = make_pcp(), make_pcp()
    for batch in batches:
        several.update(*pose_batch(batch))
    everything = concat(batches)
    once.update(*pose_batch(everything))
    torch.testing.assert_close(several.hits, once.hits, atol=0, rtol=0)
    torch.testing.assert_close(several.counts, once.counts, atol=0, rtol=0)
    expected = numpy_pcp(*as_numpy(everything), LIMBS, THRESHOLDS, GROUPS)
    assert_dict_close(several.compute(), expected)


def test_forward_returns_batch_value_and_accumulates() -> None:
    gen = torch.Generator().manual_seed(5)
    first, second = random_batch(gen, 8), random_batch(gen, 5)
    metric = make_pcp()
    metric(*pose_batch(first))
    assert_dict_close(
        metric(*pose_batch(second)), numpy_pcp(*as_numpy(second), LIMBS, THRESHOLDS, GROUPS)
    )
    both = numpy_pcp(*as_numpy(concat([first, second])), LIMBS, THRESHOLDS, GROUPS)
    assert_dict_close(metric.compute(), both)


def test_reset() -> None:
    gen = torch.Generator().manual_seed(6)
    first, second = random_batch(gen, 7), random_batch(gen, 5)
    metric = make_pcp()
    weights = metric.endpoint_weights.clone()
    metric.update(*pose_batch(first))
    metric.reset()
    torch.testing.assert_close(metric.hits, torch.zeros(3, 6, dtype=torch.float64), atol=0, rtol=0)
    torch.testing.assert_close(metric.counts, torch.zeros(6, dtype=torch.float64), atol=0, rtol=0)
    torch.testing.assert_close(metric.endpoint_weights, weights, atol=0, rtol=0)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert metric.compute() == {}
    metric.update(*pose_batch(second))
    assert_dict_close(metric.compute(), numpy_pcp(*as_numpy(second), LIMBS, THRESHOLDS, GROUPS))


def test_endpoint_weights_follow_device_and_dtype_but_are_not_saved() -> None:
    metric = make_pcp()
    assert dict(metric.named_buffers())["endpoint_weights"] is metric.endpoint_weights
    assert len(metric.state_dict()) == 0  # metric states are not persistent by default
    metric.persistent(True)
    assert sorted(metric.state_dict()) == ["counts", "hits"]
    fresh = make_pcp()
    fresh.persistent(True)
    fresh.load_state_dict(metric.state_dict(), strict=True)

    on_meta = make_pcp().to("meta")
    assert on_meta.endpoint_weights.device.type == "meta"
    assert on_meta.hits.device.type == "meta"

    single = make_pcp().set_dtype(torch.float32)
    assert single.hits.dtype == torch.float32 and single.endpoint_weights.dtype == torch.float32
    batch = random_batch(torch.Generator().manual_seed(7), 12)
    single.update(*pose_batch(batch))
    expected = numpy_pcp(*as_numpy(batch), LIMBS, THRESHOLDS, GROUPS)
    assert_dict_close(single.compute(), expected, atol=1e-6, rtol=1e-6)
    assert "endpoint_weights" not in single.state_dict()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_numpy_reference() -> None:
    batch = random_batch(torch.Generator().manual_seed(8), 12)
    metric = make_pcp().to("cuda")
    assert metric.endpoint_weights.device.type == "cuda"
    metric.update(*pose_batch({k: v.cuda() for k, v in batch.items()}))
    assert metric.hits.device.type == "cuda"
    assert_dict_close(metric.compute(), numpy_pcp(*as_numpy(batch), LIMBS, THRESHOLDS, GROUPS))


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"limb_names": NAMES[:-1]}, r"endpoint_weights must have shape \(L=5"),
        ({"limb_names": ["a"] * 6}, "limb_names must be unique"),
        ({"limb_names": [], "endpoint_weights": np.zeros((0, 2, 3))}, "limb_names"),
        ({"endpoint_weights": np.zeros((6, 3, 10))}, "endpoint_weights must have shape"),
        ({"endpoint_weights": -numpy_weights(LIMBS, NUM_JOINTS)}, ">= 0"),
        ({"endpoint_weights": 2 * numpy_weights(LIMBS, NUM_JOINTS)}, "'left_upper' start"),
        ({"thresholds": ()}, "thresholds"),
        ({"thresholds": (0.5, -0.1)}, "thresholds"),
        ({"thresholds": (0.5, 0.5)}, "thresholds"),
        ({"groups": {"upper": [0, 6]}}, r"limb indices \[6\]"),
        ({"groups": {"upper": []}}, "at least one limb"),
    ],
)
def test_constructor_rejects_bad_config(kwargs: dict, match: str) -> None:
    config = {"limb_names": NAMES, "endpoint_weights": numpy_weights(LIMBS, NUM_JOINTS)}
    with pytest.raises(ValueError, match=match):
        PCP(**(config | kwargs))


def test_update_rejects_bad_batches() -> None:
    batch = random_batch(torch.Generator().manual_seed(9), 3)
    with pytest.raises(ValueError, match=r"pred_px must have shape \(B, K=10, 2\)"):
        make_pcp().update(*pose_batch({k: v[:, :9] for k, v in batch.items()}))
    with pytest.raises(ValueError, match="target_px"):
        make_pcp().update(
            batch["pred_px"],
            {"keypoints_px": batch["target_px"][:2], "labelled": batch["labelled"]},
        )
    with pytest.raises(ValueError, match="labelled must be a bool"):
        make_pcp().update(
            batch["pred_px"],
            {"keypoints_px": batch["target_px"], "labelled": batch["labelled"].float()},
        )


# --- two gloo processes, uneven shards ------------------------------------------------------

# Rank 0 sees 5 samples in 2 updates, rank 1 sees 4 samples in 3 updates (one of them empty).
SHARDS = {0: [(0, 3), (3, 5)], 1: [(5, 6), (6, 6), (6, 9)]}


def _worker(rank: int) -> None:
    """One process of the gloo group: its shard, then the summed metric."""
    data = random_batch(torch.Generator().manual_seed(10), 9)
    metric = make_pcp()
    update_on_shards(metric, *pose_batch(data), SHARDS[rank])
    expected = numpy_pcp(*as_numpy(data), LIMBS, THRESHOLDS, GROUPS)
    all_hits, all_counts = numpy_sums(*as_numpy(data), LIMBS, THRESHOLDS)
    with metric.sync_context():  # the states are summed, not averaged, over ranks
        torch.testing.assert_close(metric.hits, torch.from_numpy(all_hits), atol=0, rtol=0)
        torch.testing.assert_close(metric.counts, torch.from_numpy(all_counts), atol=0, rtol=0)
    out = metric.compute()
    assert_rank_results(out, expected, rank, ATOL, RTOL)
    # after syncing, each rank keeps its own (local) sums
    local = concat([{k: v[a:b] for k, v in data.items()} for a, b in SHARDS[rank]])
    _, local_counts = numpy_sums(*as_numpy(local), LIMBS, THRESHOLDS)
    torch.testing.assert_close(metric.counts, torch.from_numpy(local_counts), atol=0, rtol=0)


@requires_gloo
def test_pcp_two_gloo_processes_uneven_shards() -> None:
    run_on_gloo(_worker)
