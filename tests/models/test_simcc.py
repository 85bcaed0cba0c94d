"""SimCCPose (Li et al. 2022): its loss is the codec's labels under the KL loss, its estimate
the codec's decoding of the head's logits, and it learns a fixed pose."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.codecs.simcc import SimCCCodec
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import SimCCHead, SimCCPose
from lightning_pose.models.losses import simcc_kl_loss
from tests.models.test_deeppose import TinyTrunk, make_batch


def test_training_loss_and_estimate_are_the_codecs_on_the_heads_logits() -> None:
    torch.manual_seed(0)
    model = SimCCPose(TinyTrunk(), LSP_SKELETON, num_bins=(40, 30), sigma=2.0).eval()
    batch = make_batch(batch_size=2, size=32)
    logits_x, logits_y = model.logits(batch["image"])
    assert logits_x.shape == (2, 14, 40) and logits_y.shape == (2, 14, 30)
    codec = SimCCCodec((40, 30), 2.0)
    target_x, target_y, weight = codec.encode(batch["keypoints_norm"], batch["labelled"])
    expected = simcc_kl_loss(logits_x, logits_y, target_x, target_y, weight)
    torch.testing.assert_close(model.training_step(batch, 0), expected)
    keypoints, scores = codec.decode(logits_x, logits_y)
    estimate = model.estimate(batch)
    torch.testing.assert_close(estimate["stages"][0], keypoints)
    torch.testing.assert_close(estimate["scores"], scores)


def test_it_learns_one_fixed_pose_to_within_a_bin() -> None:
    """Overfitting one batch: the decoded joints reach their targets (SimCC §3: the arg-max of
    a well-trained classifier is the labelled bin)."""
    torch.manual_seed(0)
    model = SimCCPose(TinyTrunk(), LSP_SKELETON, num_bins=(32, 32), sigma=1.0)
    batch = make_batch(batch_size=2, size=32)
    batch["labelled"] = torch.ones_like(batch["labelled"])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        model.training_step(batch, 0).backward()
        optimiser.step()
    with torch.no_grad():
        keypoints = model.eval().estimate(batch)["stages"][0]
    error = (keypoints - batch["keypoints_norm"]).abs()
    assert error.max() <= 1.0 / 32  # one bin


def test_bad_bins_and_head_arguments_name_the_key() -> None:
    with pytest.raises(ValueError, match="model.num_bins"):
        SimCCPose(TinyTrunk(), LSP_SKELETON, num_bins=(1, 32))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        SimCCHead(TinyTrunk(), 14, (32, 32), kernel_size=4)
