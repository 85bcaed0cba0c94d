"""DeepPose cascade: refinement geometry, frozen stages, error statistics, checkpoint loading
(a DeepPose checkpoint is stage 1), and the one-stage cascade trains what DeepPose trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lightning_pose.codecs.box import decode_in_boxes, encode_in_boxes, square_boxes
from lightning_pose.codecs.crop import crop_windows
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import DeepPose, DeepPoseCascade
from lightning_pose.models import cascade_errors as ce
from tests.models.test_deeppose import TinyTrunk


def make_batch(B: int = 2, S: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(B, 3, S, S, generator=g),
        "image_hr": torch.rand(B, 3, 2 * S, 2 * S, generator=g),
        "keypoints_norm": torch.rand(B, 14, 2, generator=g) * 0.6 - 0.3,
        "labelled": torch.ones(B, 14, dtype=torch.bool),
        "box": torch.tensor([[50.0, 40.0, 100.0, 100.0]]).expand(B, 4),
    }


def test_displacement_round_trip() -> None:
    g = torch.Generator().manual_seed(1)
    joints = torch.rand(3, 5, 2, generator=g) - 0.5
    centres = joints + 0.1 * torch.randn(3, 5, 2, generator=g)
    boxes = square_boxes(centres, 2.0 * (torch.rand(3, generator=g) + 0.1))
    target = encode_in_boxes(joints, boxes)  # network's ideal output (Eq. 8)
    assert_close(decode_in_boxes(target, boxes), joints, rtol=0, atol=1e-6)  # Eq. 6


def test_sampled_displacements_follow_the_stored_statistics() -> None:
    mean = torch.tensor([[0.1, -0.2], [0.0, 0.05]], dtype=torch.float64)
    cov = torch.tensor(
        [[[0.04, 0.01], [0.01, 0.02]], [[0.01, 0.0], [0.0, 0.09]]], dtype=torch.float64
    )
    joints = torch.tensor([0, 1]).repeat(20000)
    g = torch.Generator().manual_seed(0)
    delta = ce.sample_displacements(mean, cov, joints, generator=g)  # (40000, 2)
    for k in range(2):
        d = delta[joints == k]
        assert_close(d.mean(0), mean[k], rtol=0, atol=6e-3)
        assert_close(torch.cov(d.T), cov[k], rtol=0, atol=4e-3)
    again = ce.sample_displacements(mean, cov, joints, generator=torch.Generator().manual_seed(0))
    assert_close(again, delta, rtol=0, atol=0)


def test_error_statistics_known_answer() -> None:
    errors = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[100.0, 100.0]]])  # (3, 1, 2)
    valid = torch.tensor([[True], [True], [False]])
    mean, cov = ce.error_statistics(errors, valid)
    assert_close(mean, torch.tensor([[2.0, 1.0]]), rtol=0, atol=1e-6)
    assert_close(cov, torch.tensor([[[2.0, 2.0], [2.0, 2.0]]]), rtol=0, atol=1e-6)
    mean, cov = ce.error_statistics(errors, torch.zeros(3, 1, dtype=torch.bool))
    assert_close(cov, 0.01 * torch.eye(2)[None], rtol=0, atol=1e-6)


def test_error_statistics_match_torch_cov_per_joint_and_ignore_invalid_nan() -> None:
    g = torch.Generator().manual_seed(0)
    errors = torch.randn(50, 6, 2, generator=g, dtype=torch.float64)
    valid = torch.rand(50, 6, generator=g) < 0.7
    valid[:, 5] = False
    valid[0, 5] = True  # one error: fewer than min_count
    errors[~valid] = float("nan")
    mean, cov = ce.error_statistics(errors, valid)
    for k in range(5):
        e = errors[valid[:, k], k]
        assert_close(mean[k], e.mean(0))
        assert_close(cov[k], torch.cov(e.T))
    assert torch.equal(mean[5], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(cov[5], 0.01 * torch.eye(2, dtype=torch.float64))


def test_error_statistics_stay_on_the_errors_device() -> None:
    """The stage-2 fit on a GPU failed here: the default covariance was made on the CPU
    (an H200 run of bench/gpu_convergence.sh; the meta device stands in for CUDA)."""
    errors = torch.zeros(8, 3, 2, device="meta")
    mean, cov = ce.error_statistics(errors, torch.ones(8, 3, dtype=torch.bool, device="meta"))
    assert mean.device.type == cov.device.type == "meta"
    assert cov.shape == (3, 2, 2)


def test_zero_displacement_leaves_previous_estimate_unchanged_exactly() -> None:
    model = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=3)
    for stage in model.stages[1:]:
        nn.init.zeros_(stage.head.linear.weight)
        nn.init.zeros_(stage.head.linear.bias)
    estimates = model.stage_estimates(make_batch())
    assert len(estimates) == 3
    assert torch.equal(estimates[1], estimates[0]) and torch.equal(estimates[2], estimates[0])


def test_refinement_trains_only_the_last_stage() -> None:
    model = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=2, samples_per_image=5)
    model.error_cov[0] = 0.01 * torch.eye(2)
    model.train()
    stage1 = [*model.stages[0].parameters()]
    assert not model.stages[0].training and model.stages[1].training
    loss = model.refinement_loss(make_batch())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None and not p.requires_grad for p in stage1)
    grads = [p.grad for p in model.stages[1].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    optimizer = model.configure_optimizers()
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == {
        id(p) for p in model.stages[1].parameters()
    }


def test_a_skeleton_without_torso_is_refused() -> None:
    from lightning_pose.data.skeleton import Limb, Skeleton

    dot = Skeleton("dot", ("a", "b"), (), None, None, (Limb("ab", (0,), (1,)),))
    with pytest.raises(ValueError, match=r"torso diameters .* skeleton 'dot' has no torso"):
        DeepPoseCascade(TinyTrunk(), dot, num_stages=2)


def test_stage_two_needs_the_high_resolution_view() -> None:
    model = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=2)
    batch = make_batch()
    del batch["image_hr"]
    with pytest.raises(ValueError, match="image_hr: leave data.highres_factor unset"):
        model.stage_estimates(batch)


def test_init_checkpoint_loads_stage_one_from_a_deeppose_checkpoint(tmp_path: Path) -> None:
    stage1 = DeepPose(TinyTrunk(), LSP_SKELETON)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": stage1.state_dict()}, path)
    cascade = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=2)
    refiner = {k: v.clone() for k, v in cascade.stages[1].state_dict().items()}
    cascade.load_init_checkpoint(str(path))
    for a, b in zip(
        [*cascade.stages[0].trunk.parameters(), *cascade.stages[0].head.parameters()],
        [*stage1.trunk.parameters(), *stage1.head.parameters()],
        strict=True,
    ):
        assert torch.equal(a, b)
    for k, v in cascade.stages[1].state_dict().items():
        assert torch.equal(v, refiner[k]), f"stage 2's {k} was loaded"
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match=r"no weights under \['stages.0.trunk.', 'trunk.'\]"):
        cascade.load_init_checkpoint(str(path))
    with pytest.raises(FileNotFoundError, match="init_checkpoint"):
        cascade.load_init_checkpoint(str(tmp_path / "missing.ckpt"))


def test_init_checkpoint_of_stage_three_reads_a_two_stage_cascade_and_its_statistics(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    source = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=2)
    source.error_mean[0] = 0.25
    source.error_cov[0] = 0.04 * torch.eye(2)
    path = tmp_path / "stage2.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    torch.manual_seed(1)
    model = DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=3)
    model.load_init_checkpoint(str(path))
    assert_close(
        model.stages[1].head.linear.weight, source.stages[1].head.linear.weight, rtol=0, atol=0
    )
    assert_close(model.error_mean[0], source.error_mean[0], rtol=0, atol=0)
    assert_close(model.error_cov[0], source.error_cov[0], rtol=0, atol=0)
    assert not model.error_cov[1].any()  # stage 2's statistics: for this fit to estimate


def test_crop_of_the_whole_view_at_its_own_size_is_the_identity() -> None:
    image = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 1.0]]])  # (2, 1, 4)
    assert_close(crop_windows(image, boxes, 12), image, rtol=0, atol=1e-6)


def test_a_one_stage_cascade_is_deeppose() -> None:
    """The same parameters from the same seed (the cascade's stage 1 under ``stages.0.``, as
    the cascade holds its stages), the same loss: one way to train stage 1."""
    batch = make_batch()
    models = []
    for build in (
        lambda: DeepPose(TinyTrunk(), LSP_SKELETON),
        lambda: DeepPoseCascade(TinyTrunk(), LSP_SKELETON, num_stages=1),
    ):
        torch.manual_seed(0)
        models.append(build())
    deeppose, cascade = models
    weights = {
        k.removeprefix("stages.0."): v
        for k, v in cascade.state_dict().items()
        if not k.startswith("error_")
    }
    assert {k for k in cascade.state_dict() if not k.startswith("error_")} == {
        "stages.0." + k for k in deeppose.state_dict()
    }
    for key, value in deeppose.state_dict().items():
        assert_close(weights[key], value, rtol=0, atol=0)
    losses = []
    for model in models:
        torch.manual_seed(1)
        losses.append(model.train().training_step(batch, 0))
    assert_close(losses[0], losses[1], rtol=0, atol=0)
