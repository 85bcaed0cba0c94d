"""StageMetrics for any skeleton: each metric present where it can count, absent otherwise."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.data.skeleton import Limb, Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics


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


LSP_LIKE = Skeleton(
    "stick", ("a", "b", "c"), (), (0, 1), (1, 2), (Limb("ab", (0,), (1,)), Limb("bc", (1,), (2,)))
)


def lsp_like_batch(torso: float, bbox: float | None) -> dict[str, torch.Tensor]:
    target = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])  # (1, 3, 2)
    batch = {
        "keypoints_px": target,
        "labelled": torch.ones(1, 3, dtype=torch.bool),
        "torso_diameter_px": torch.tensor([torso]),
        "head_size_px": torch.tensor([10.0]),
    }
    if bbox is not None:
        batch["bbox_size_px"] = torch.tensor([bbox])
    return batch


def test_declarations_in_report_order_and_extra_metrics_after_them() -> None:
    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    names = [d.name for d in protocol.declarations()]
    assert names == ["pdj", "pckh", "pcp", "pck_bbox", "oks_ap", "mean_error_px"]
    # for a skeleton without sigmas: no OKS AP
    assert [d.name for d in protocol.declarations(LSP_LIKE)] == names[:4] + names[5:]
    metrics = StageMetrics(LSP_LIKE, protocol)
    assert metrics.metrics.compute_groups == {i: [n] for i, n in enumerate(names[:4] + names[5:])}
    pred = lsp_like_batch(10.0, None)["keypoints_px"] + torch.tensor([[[3.0, 4.0], [0, 0], [0, 0]]])
    metrics.update(pred, lsp_like_batch(10.0, None))
    out = metrics.compute()
    torch.testing.assert_close(
        out["mean_error_px"], torch.tensor(5.0 / 3, dtype=torch.float64), atol=1e-12, rtol=0
    )
    pooled = metrics.compute(groups=False)
    assert set(pooled) == {"pdj@0.05", "pdj@0.1", "pdj@0.2", "pckh@0.5", "pcp@0.5", "mean_error_px"}
    counts = {k: float(v) for k, v in metrics.counts().items()}
    assert counts == {
        "count/instances": 1,
        "count/images": 1,  # a batch without first_of_image: each instance is its image
        "count/pdj": 3,
        "count/pckh": 3,
        "count/pcp": 2,
        "count/pck_bbox": 0,  # no person boxes in the batch
        "count/mean_error_px": 3,
    }


def test_metrics_with_equal_empty_states_are_not_merged() -> None:
    """PDJ and bbox-PCK at the same thresholds both count nothing in a first batch without a
    torso or a box: torchmetrics' automatic compute groups would merge them there; ours keep
    each metric's own state."""
    protocol = EvaluationProtocol(pdj_thresholds=(0.5,), pck_bbox_thresholds=(0.5,))
    metrics = StageMetrics(LSP_LIKE, protocol)
    target = lsp_like_batch(0.0, 0.0)["keypoints_px"]
    metrics.update(target, lsp_like_batch(0.0, 0.0))  # nothing counted by either
    pred = target + torch.tensor([[[6.0, 0.0], [0, 0], [0, 0]]])  # joint a 6 px off
    metrics.update(pred, lsp_like_batch(10.0, 20.0))  # PDJ: 5 px radius, bbox-PCK: 10 px
    out = metrics.compute(groups=False)
    torch.testing.assert_close(
        out["pdj@0.5"], torch.tensor(2 / 3, dtype=torch.float64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        out["pck_bbox@0.5"], torch.tensor(1.0, dtype=torch.float64), atol=1e-12, rtol=0
    )


def test_reset_clears_every_metric_the_curve_and_the_image_count() -> None:
    metrics = StageMetrics(LSP_LIKE, EvaluationProtocol())
    batch = lsp_like_batch(10.0, 20.0)
    metrics.update(batch["keypoints_px"], batch)
    metrics.reset()
    metrics.update(batch["keypoints_px"], batch)
    assert float(metrics.counts()["count/images"]) == 1
    assert float(metrics.counts()["count/pdj"]) == 3
    torch.testing.assert_close(
        metrics.pdj_curve()[-1], torch.tensor(1.0, dtype=torch.float64), atol=0, rtol=0
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["lightning_pose.metrics.NoSuchMetric"], "cannot import"),
        (["no_such_module.Metric"], "cannot import"),
        (["lightning_pose.metrics.PDJ"], "subclass of"),  # array-level, not a StageMetric
        (["lightning_pose.metrics.wrappers.StagePDJ"], "unique"),  # pdj twice
    ],
)
def test_bad_extra_metrics_raise_naming_the_key(extra: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        EvaluationProtocol(extra_metrics=extra)
    assert "evaluation.extra_metrics" in str(error.value)


def test_per_image_sums_pool_to_the_logged_values() -> None:
    """Summed over images, each metric's per-image sums over its per-image counts are its
    pooled value; per_image touches no state."""
    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    metrics = StageMetrics(LSP_LIKE, protocol)
    gen = torch.Generator().manual_seed(7)
    records = []
    for n_b in (4, 3):
        target = torch.rand(n_b, 3, 2, generator=gen) * 100  # (B, 3, 2)
        pred = target + torch.randn(n_b, 3, 2, generator=gen) * 6
        batch = {
            "keypoints_px": target,
            "labelled": torch.rand(n_b, 3, generator=gen) > 0.2,
            "torso_diameter_px": torch.rand(n_b, generator=gen) * 40,
            "head_size_px": torch.rand(n_b, generator=gen) * 30,
            "bbox_size_px": 50 + torch.rand(n_b, generator=gen) * 50,
        }
        records.append(metrics.per_image(pred, batch))
        metrics.update(pred, batch)
    assert metrics.per_image(pred, batch).keys() == records[0].keys()
    pooled = metrics.compute(groups=False)
    scores = {k: torch.cat([r[k] for r in records]) for k in records[0]}
    for declaration in metrics.declarations:
        if declaration.name not in metrics.metrics:
            continue
        counts = scores[f"count/{declaration.name}"]
        torch.testing.assert_close(
            counts.sum(), metrics.counts()[f"count/{declaration.name}"].double(), atol=0, rtol=0
        )
        for key in declaration.keys():
            value = scores[key].sum() / counts.sum()
            torch.testing.assert_close(value, pooled[key], atol=1e-12, rtol=1e-12, msg=key)
    assert {k for k in scores if not k.startswith("count/")} == set(pooled)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_stage_metrics_on_cuda_match_cpu() -> None:
    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    cpu, gpu = StageMetrics(LSP_LIKE, protocol), StageMetrics(LSP_LIKE, protocol).to("cuda")
    gen = torch.Generator().manual_seed(8)
    target = torch.rand(5, 3, 2, generator=gen) * 100  # (5, 3, 2)
    pred = target + torch.randn(5, 3, 2, generator=gen) * 6
    batch = lsp_like_batch(10.0, 30.0) | {"keypoints_px": target}
    batch |= {k: v.expand(5) for k, v in batch.items() if v.ndim == 1}
    batch["labelled"] = torch.rand(5, 3, generator=gen) > 0.2
    cpu.update(pred, batch)
    gpu.update(pred.cuda(), {k: v.cuda() for k, v in batch.items()})
    expected, actual = cpu.compute() | cpu.counts(), gpu.compute() | gpu.counts()
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key].cpu(), value, atol=1e-9, rtol=1e-12, msg=key)
    per_image = gpu.per_image(pred.cuda(), {k: v.cuda() for k, v in batch.items()})
    for key, value in cpu.per_image(pred, batch).items():
        torch.testing.assert_close(per_image[key].cpu(), value, atol=1e-9, rtol=1e-12, msg=key)


def test_per_image_limb_joint_scores_pool_to_the_logged_group_value() -> None:
    """On the 14-joint LSP skeleton PDJ also reports each image's limb joints
    (``pdj@0.2/limb_joints``, ``count/pdj/limb_joints``): summed over images they give the
    logged ``val/pdj@0.2/limb_joints`` and its count (the headline PCK@0.2 of the 12 limb
    joints), so a bootstrap can resample images for it."""
    from lightning_pose.data.skeleton import LSP_SKELETON

    metrics = StageMetrics(LSP_SKELETON, EvaluationProtocol())
    gen = torch.Generator().manual_seed(3)
    target = torch.rand(6, 14, 2, generator=gen) * 100  # (B, K, 2)
    pred = target + torch.randn(6, 14, 2, generator=gen) * 8
    batch = {
        "keypoints_px": target,
        "labelled": torch.rand(6, 14, generator=gen) > 0.2,
        "torso_diameter_px": 20 + torch.rand(6, generator=gen) * 40,
        "head_size_px": 10 + torch.rand(6, generator=gen) * 30,
    }
    scores = metrics.per_image(pred, batch)
    metrics.update(pred, batch)
    pooled, counts = metrics.compute(groups=True), metrics.counts()
    limb_counts = scores["count/pdj/limb_joints"]
    assert limb_counts.sum() == counts["count/pdj/limb_joints"] < scores["count/pdj"].sum()
    for t in ("0.05", "0.1", "0.2"):
        key = f"pdj@{t}/limb_joints"
        value = scores[key].sum() / limb_counts.sum()
        torch.testing.assert_close(value, pooled[key].double(), atol=1e-6, rtol=0, msg=key)
    assert not any(k.startswith("pckh") and "/" in k for k in scores)  # PDJ's groups only


def test_bf16_autocast_on_the_cpu_keeps_float64_states_and_the_fp32_result() -> None:
    """A stand-in for the CUDA tests the CPU machines skip: metrics updated inside
    ``torch.autocast("cpu", torch.bfloat16)`` (as under ``precision=bf16-mixed``) keep float64
    states and give the fp32 result, both for fp32 predictions and for bf16 ones (a head's
    output under autocast), on the 14-joint LSP skeleton (PDJ, PCKh, PCP with its end-point
    matmul, bbox-PCK, mean error)."""
    from lightning_pose.data.skeleton import LSP_SKELETON

    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    gen = torch.Generator().manual_seed(11)
    target = torch.rand(6, 14, 2, generator=gen) * 200  # (B, K, 2)
    batch = {
        "keypoints_px": target,
        "labelled": torch.rand(6, 14, generator=gen) > 0.2,
        "torso_diameter_px": 40 + torch.rand(6, generator=gen) * 40,
        "head_size_px": 10 + torch.rand(6, generator=gen) * 20,
        "bbox_size_px": 100 + torch.rand(6, generator=gen) * 100,
    }
    pred = target + torch.randn(6, 14, 2, generator=gen) * 8  # (B, K, 2) fp32
    for given in (pred, pred.bfloat16()):
        reference = StageMetrics(LSP_SKELETON, protocol)
        reference.update(given.float(), batch)  # the same values, in fp32, no autocast
        autocast = StageMetrics(LSP_SKELETON, protocol)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast.update(given, batch)
            actual = autocast.compute() | autocast.counts()
        for name in autocast.metrics:
            for state, value in autocast.metrics[name].metric_state.items():
                assert value.dtype == torch.float64, f"{given.dtype} {name}.{state}"
        expected = reference.compute() | reference.counts()
        assert sorted(actual) == sorted(expected) and "pcp@0.5" in actual
        for key, value in expected.items():
            torch.testing.assert_close(
                actual[key], value, atol=1e-12, rtol=0, msg=f"{given.dtype} {key}"
            )
