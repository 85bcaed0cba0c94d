"""DeepPose cascade: sub-image geometry by known answers, refinement, error statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lightning_pose.models import DeepPose, DeepPoseCascade
from lightning_pose.models import cascade_boxes as cb
from lightning_pose.skeleton import LSP


class TinyBackbone(nn.Module):
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.out_features = 8
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_batch(B: int = 2, S: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(B, 3, S, S, generator=g),
        "image_hr": torch.rand(B, 3, 2 * S, 2 * S, generator=g),
        "keypoints_norm": torch.rand(B, 14, 2, generator=g) * 0.6 - 0.3,
        "visible": torch.ones(B, 14, dtype=torch.bool),
        "box": torch.tensor([[50.0, 40.0, 100.0, 100.0]]).expand(B, 4),
    }


def test_joint_boxes_centre_and_side() -> None:
    centres = torch.tensor([[[0.1, -0.2], [0.0, 0.3]]])  # (1, 2, 2)
    boxes = cb.joint_boxes(centres, torch.tensor([0.25]), sigma=2.0)
    assert_close(boxes, torch.tensor([[[0.1, -0.2, 0.5, 0.5], [0.0, 0.3, 0.5, 0.5]]]))


def test_torso_diameter_is_left_shoulder_to_right_hip() -> None:
    kp = torch.zeros(1, 14, 2)
    kp[0, 9] = torch.tensor([0.0, 0.0])  # left shoulder
    kp[0, 2] = torch.tensor([0.3, 0.4])  # right hip
    assert_close(cb.torso_diameter(kp, LSP.torso), torch.tensor([0.5]))


def test_crop_window_centres_the_joint() -> None:
    # A 1-pixel marker at pixel (x=12, y=4) of a 16x16 view; a box centred on it (side 7/16,
    # odd crop of 7 px) puts it at the crop's centre pixel (3, 3).
    image = torch.zeros(1, 3, 16, 16)
    image[0, :, 4, 12] = 1.0
    centre = (torch.tensor([12.0, 4.0]) + 0.5) / 16 - 0.5  # pixel centre -> normalised
    boxes = torch.cat([centre, torch.tensor([7 / 16, 7 / 16])])[None, None]  # (1, 1, 4)
    crop = cb.crop_windows(image, boxes, 7)  # (1, 3, 7, 7)
    assert crop.shape == (1, 3, 7, 7)
    expected = torch.zeros(7, 7)
    expected[3, 3] = 1.0
    assert_close(crop[0, 0], expected, rtol=0, atol=1e-6)


def test_crop_window_at_the_border_is_zero_padded_not_shifted() -> None:
    # Box centred on the top-left pixel: its left/top half lies outside the image and reads 0;
    # the pixel itself stays at the crop centre.
    image = torch.ones(1, 3, 8, 8)
    centre = (torch.tensor([0.0, 0.0]) + 0.5) / 8 - 0.5
    boxes = torch.cat([centre, torch.tensor([5 / 8, 5 / 8])])[None, None]
    crop = cb.crop_windows(image, boxes, 5)[0, 0]  # (5, 5), one input pixel per output pixel
    expected = torch.zeros(5, 5)
    expected[2:, 2:] = 1.0
    assert_close(crop, expected, rtol=0, atol=1e-6)


def test_displacement_round_trip() -> None:
    g = torch.Generator().manual_seed(1)
    joints = torch.rand(3, 5, 2, generator=g) - 0.5
    centres = joints + 0.1 * torch.randn(3, 5, 2, generator=g)
    boxes = cb.joint_boxes(centres, torch.rand(3, generator=g) + 0.1, sigma=2.0)
    target = cb.displacement_target(joints, boxes)  # network's ideal output
    assert_close(cb.refine(boxes[..., :2], target, boxes[..., 2]), joints, rtol=0, atol=1e-6)


def test_sampled_displacements_follow_the_stored_statistics() -> None:
    mean = torch.tensor([[0.1, -0.2], [0.0, 0.05]], dtype=torch.float64)
    cov = torch.tensor(
        [[[0.04, 0.01], [0.01, 0.02]], [[0.01, 0.0], [0.0, 0.09]]], dtype=torch.float64
    )
    joints = torch.tensor([0, 1]).repeat(20000)
    g = torch.Generator().manual_seed(0)
    delta = cb.sample_displacements(mean, cov, joints, generator=g)  # (40000, 2)
    for k in range(2):
        d = delta[joints == k]
        assert_close(d.mean(0), mean[k], rtol=0, atol=6e-3)
        assert_close(torch.cov(d.T), cov[k], rtol=0, atol=4e-3)
    again = cb.sample_displacements(mean, cov, joints, generator=torch.Generator().manual_seed(0))
    assert_close(again, delta, rtol=0, atol=0)


def test_error_statistics_known_answer() -> None:
    errors = torch.tensor([[[1.0, 0.0]], [[3.0, 2.0]], [[100.0, 100.0]]])  # (3, 1, 2)
    valid = torch.tensor([[True], [True], [False]])
    mean, cov = cb.error_statistics(errors, valid)
    assert_close(mean, torch.tensor([[2.0, 1.0]]))
    assert_close(cov, torch.tensor([[[2.0, 2.0], [2.0, 2.0]]]))
    mean, cov = cb.error_statistics(errors, torch.zeros(3, 1, dtype=torch.bool))
    assert_close(cov, 0.01 * torch.eye(2)[None])


def test_zero_displacement_leaves_previous_estimate_unchanged_exactly() -> None:
    model = DeepPoseCascade(TinyBackbone(), LSP.joints, num_stages=3)
    for stage in model.stages[1:]:
        nn.init.zeros_(stage.head.weight)
        nn.init.zeros_(stage.head.bias)
    estimates = model.stage_estimates(make_batch())
    assert len(estimates) == 3
    assert torch.equal(estimates[1], estimates[0]) and torch.equal(estimates[2], estimates[0])


def test_refinement_trains_only_the_last_stage() -> None:
    model = DeepPoseCascade(TinyBackbone(), LSP.joints, num_stages=2, samples_per_image=5)
    model.error_cov[0] = 0.01 * torch.eye(2)
    model.train()
    assert not model.stages[0].training and model.stages[1].training
    loss = model.refinement_loss(make_batch())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in model.stages[0].parameters())
    grads = [p.grad for p in model.stages[1].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    optimizer = model.configure_optimizers()
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == {
        id(p) for p in model.stages[1].parameters()
    }


def test_stage_two_needs_the_high_resolution_view() -> None:
    model = DeepPoseCascade(TinyBackbone(), LSP.joints, num_stages=2)
    batch = make_batch()
    del batch["image_hr"]
    with pytest.raises(ValueError, match="data.highres_factor"):
        model.stage_estimates(batch)


def test_load_previous_stages_from_a_deeppose_checkpoint(tmp_path: Path) -> None:
    stage1 = DeepPose(TinyBackbone(), LSP.joints)
    path = tmp_path / "stage1.ckpt"
    torch.save({"state_dict": stage1.state_dict()}, path)
    cascade = DeepPoseCascade(TinyBackbone(), LSP.joints, num_stages=2)
    cascade.load_previous_stages(str(path))
    for a, b in zip(cascade.stages[0].parameters(), stage1.regressor.parameters(), strict=True):
        assert torch.equal(a, b)
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="no weights for stage 1"):
        cascade.load_previous_stages(str(path))
    with pytest.raises(FileNotFoundError, match="init_checkpoint"):
        cascade.load_previous_stages(str(tmp_path / "missing.ckpt"))


def test_joint_names_need_the_torso_joints() -> None:
    with pytest.raises(ValueError, match="right_hip"):
        DeepPoseCascade(TinyBackbone(), ["left_shoulder", "nose"], num_stages=2)


def test_crop_of_the_whole_view_at_its_own_size_is_the_identity() -> None:
    image = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0]], [[0.0, 0.0, 1.0, 1.0]]])  # (2, 1, 4)
    assert_close(cb.crop_windows(image, boxes, 12), image, rtol=0, atol=1e-6)
