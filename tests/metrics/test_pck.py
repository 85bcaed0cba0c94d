"""Tests for the PCK / PDJ / PCKh Metric classes."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.utilities.data import dim_zero_sum

from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.metrics import PCK, PDJ, PCKh

from .test_functional import (
    ATOL,
    JOINTS,
    RTOL,
    as_numpy,
    assert_dict_close,
    concat,
    known_batch,
    numpy_curve,
    numpy_pck,
    pose_batch,
    random_batch,
)


def test_states_are_fixed_size_float64_sums() -> None:
    metric = PCK(JOINTS, "torso_diameter_px", thresholds=(0.1, 0.2, 0.5))
    assert metric.hits.shape == (3, 3) and metric.hits.dtype == torch.float64
    assert metric.counts.shape == (3,) and metric.counts.dtype == torch.float64
    assert metric._reductions == {"hits": dim_zero_sum, "counts": dim_zero_sum}
    assert metric.full_state_update is False and metric.higher_is_better is True
    assert metric.is_differentiable is False


def test_known_answer() -> None:
    metric = PCK(
        JOINTS,
        "torso_diameter_px",
        thresholds=(0.1, 0.2, 0.5),
        groups={"head": [0], "wrist": [1, 2]},
    )
    metric.update(*pose_batch(known_batch()))
    expected = {
        "pck@0.1": 1 / 5, "pck@0.2": 3 / 5, "pck@0.5": 1.0,
        "pck@0.1/head": 0.5, "pck@0.2/head": 1.0, "pck@0.5/head": 1.0,
        "pck@0.1/wrist": 0.0, "pck@0.2/wrist": 1 / 3, "pck@0.5/wrist": 1.0,
    }  # fmt: skip
    assert_dict_close(metric.compute(), expected)
    thresholds, fraction = metric.curve()
    torch.testing.assert_close(
        thresholds, torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64), atol=0, rtol=0
    )
    torch.testing.assert_close(
        fraction, torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64), atol=ATOL, rtol=0
    )


@pytest.mark.parametrize("groups", [None, {"a": [0, 3], "b": [1], "c": [2, 4, 5]}])
def test_accumulates_batches_like_numpy_reference(groups: dict[str, list[int]] | None) -> None:
    gen = torch.Generator().manual_seed(2)
    names = [f"j{k}" for k in range(6)]
    thresholds = (0.05, 0.1, 0.2, 0.5)
    metric = PCK(names, "torso_diameter_px", thresholds=thresholds, groups=groups)
    batches = [random_batch(gen, n_b, 6) for n_b in (4, 9, 1, 6)]
    for batch in batches:
        metric.update(*pose_batch(batch))
    everything = as_numpy(concat(batches))
    expected = numpy_pck(*everything, list(thresholds), names, groups, "pck")
    assert_dict_close(metric.compute(), expected)
    _, fraction = metric.curve()
    expected_curve = torch.from_numpy(numpy_curve(*everything, list(thresholds)))
    torch.testing.assert_close(fraction, expected_curve, atol=ATOL, rtol=RTOL)


def test_forward_returns_batch_value_and_accumulates() -> None:
    gen = torch.Generator().manual_seed(3)
    names = [f"j{k}" for k in range(4)]
    metric = PCK(names, "torso_diameter_px", thresholds=(0.1, 0.2))
    first, second = random_batch(gen, 8, 4), random_batch(gen, 5, 4)
    metric(*pose_batch(first))
    batch_value = metric(*pose_batch(second))
    assert_dict_close(batch_value, numpy_pck(*as_numpy(second), [0.1, 0.2], names, None, "pck"))
    expected = numpy_pck(*as_numpy(concat([first, second])), [0.1, 0.2], names, None, "pck")
    assert_dict_close(metric.compute(), expected)


def test_reset_and_empty() -> None:
    metric = PCK(JOINTS, "torso_diameter_px")
    metric.update(*pose_batch(known_batch()))
    metric.reset()
    torch.testing.assert_close(metric.counts, torch.zeros(3, dtype=torch.float64), atol=0, rtol=0)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert metric.compute() == {}
    _, fraction = metric.curve()
    torch.testing.assert_close(fraction, torch.zeros(2, dtype=torch.float64), atol=0, rtol=0)


def test_non_finite_prediction_is_a_miss() -> None:
    batch = known_batch()
    batch["pred_px"][:] = float("nan")
    metric = PCKh(JOINTS)
    metric.update(*pose_batch(batch, "head_size_px"))
    out = metric.compute()
    assert sorted(out) == [
        "pckh@0.5",
        "pckh@0.5/head",
        "pckh@0.5/left_wrist",
        "pckh@0.5/right_wrist",
    ]
    for value in out.values():
        torch.testing.assert_close(value, torch.tensor(0.0, dtype=torch.float64), atol=0, rtol=0)


def test_defaults_and_key_formatting() -> None:
    pdj, pckh, pck = PDJ(JOINTS), PCKh(JOINTS), PCK(JOINTS, "bbox_size_px")
    for metric in (pdj, pckh, pck):
        metric.update(*pose_batch(known_batch(), metric.normaliser_key))
    assert [k for k in pdj.compute() if "/" not in k] == ["pdj@0.05", "pdj@0.1", "pdj@0.2"]
    assert [k for k in pckh.compute() if "/" not in k] == ["pckh@0.5"]
    assert [k for k in pck.compute() if "/" not in k] == ["pck@0.1", "pck@0.2"]


def test_pdj_on_lsp_torso_matches_reference() -> None:
    """PDJ with the torso diameter (DeepPose §5) and LSP's left/right-pooled joint groups."""
    gen = torch.Generator().manual_seed(4)
    k = LSP_SKELETON.num_joints
    metric = PDJ(LSP_SKELETON.joints, groups=LSP_SKELETON.groups())
    batches = [random_batch(gen, n_b, k) for n_b in (5, 7)]
    for batch in batches:
        batch["pred_px"] = batch["target_px"] + (batch["pred_px"] - batch["target_px"]) * 3.0
        batch["normaliser_px"] = segment_lengths(
            batch["target_px"], batch["labelled"], LSP_SKELETON.torso
        )
        metric.update(*pose_batch(batch))
    everything = as_numpy(concat(batches))
    expected = numpy_pck(
        *everything, [0.05, 0.1, 0.2], list(LSP_SKELETON.joints), LSP_SKELETON.groups(), "pdj"
    )
    assert "pdj@0.2/wrist" in expected
    assert_dict_close(metric.compute(), expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"joint_names": []}, "joint_names"),
        ({"joint_names": ["a", "a"]}, "joint_names"),
        ({"thresholds": ()}, "thresholds"),
        ({"thresholds": (0.1, -0.2)}, "thresholds"),
        ({"thresholds": (0.1, float("nan"))}, "thresholds"),
        ({"thresholds": (0.1, 0.1)}, "thresholds"),
        ({"groups": {"wrist": [1, 3]}}, "groups"),
        ({"groups": {"wrist": []}}, "groups"),
    ],
)
def test_constructor_rejects_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PCK(**({"joint_names": JOINTS, "normaliser_key": "torso_diameter_px"} | kwargs))


def test_a_batch_without_the_normaliser_adds_nothing() -> None:
    """bbox-PCK on data without person boxes: the batch has no ``bbox_size_px``."""
    metric = PCK(JOINTS, "bbox_size_px")
    metric.update(*pose_batch(known_batch()))  # the normaliser as torso_diameter_px only
    torch.testing.assert_close(metric.counts, torch.zeros(3, dtype=torch.float64), atol=0, rtol=0)
    metric.update(*pose_batch(known_batch(), "bbox_size_px"))
    expected = torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64)  # sample 2 has no normaliser
    torch.testing.assert_close(metric.counts, expected, atol=0, rtol=0)


def test_update_rejects_wrong_joint_count() -> None:
    metric = PCK(["a", "b"], "torso_diameter_px")
    with pytest.raises(ValueError, match="pred_px"):
        metric.update(*pose_batch(known_batch()))


def test_update_rejects_shape_mismatch() -> None:
    batch = known_batch()
    batch["normaliser_px"] = batch["normaliser_px"][:2]
    with pytest.raises(ValueError, match="normaliser_px"):
        PCK(JOINTS, "torso_diameter_px").update(*pose_batch(batch))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gen = torch.Generator().manual_seed(6)
    batches = [random_batch(gen, n_b, 3) for n_b in (4, 6)]
    cpu, gpu = PDJ(JOINTS), PDJ(JOINTS).to("cuda")
    for batch in batches:
        cpu.update(*pose_batch(batch))
        gpu.update(*pose_batch({k: v.cuda() for k, v in batch.items()}))
    assert gpu.hits.device.type == "cuda"
    expected = cpu.compute()
    actual = gpu.compute()
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key].cpu(), value, atol=ATOL, rtol=RTOL, msg=key)
    torch.testing.assert_close(gpu.curve()[1].cpu(), cpu.curve()[1], atol=ATOL, rtol=RTOL)
