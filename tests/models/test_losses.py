"""Losses: known answers, float weights, zero-weight placeholders, empty batches, shape errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_pose.models.losses import (
    binary_cross_entropy_loss,
    coordinate_l1_loss,
    coordinate_l2_loss,
    heatmap_mse_loss,
    simcc_kl_loss,
)


def test_coordinate_l2_known_answer_by_hand() -> None:
    pred = torch.tensor([[[0.0, 0.0], [0.1, 0.2], [0.5, 0.5]], [[0.3, -0.4], [0.0, 0.0], [1, 1]]])
    target = torch.zeros(2, 3, 2)
    labelled = torch.tensor([[True, True, False], [True, False, False]])
    # labelled squared errors: 0, 0.01 + 0.04, 0.09 + 0.16 -> 0.30 over 3 labelled joints
    loss = coordinate_l2_loss(pred, target, labelled)
    torch.testing.assert_close(loss, torch.tensor(0.30 / 3), rtol=1e-6, atol=1e-7)
    assert loss.shape == ()


def test_coordinate_l1_known_answer_by_hand_and_placeholders() -> None:
    pred = torch.tensor([[[0.1, -0.2], [0.5, 0.5], [0.0, 0.3]]], requires_grad=True)
    target = torch.tensor([[[0.0, 0.0], [float("nan"), float("inf")], [0.0, 0.0]]])
    weight = torch.tensor([[1.0, 0.0, 3.0]])
    # |0.1| + |-0.2| = 0.3 (weight 1), 0.3 (weight 3); the NaN/inf joint has weight 0
    loss = coordinate_l1_loss(pred, target, weight)
    torch.testing.assert_close(loss, torch.tensor((0.3 + 3 * 0.3) / 4), rtol=1e-6, atol=1e-7)
    loss.backward()
    expected = torch.tensor([[[0.25, -0.25], [0.0, 0.0], [0.0, 0.75]]])
    torch.testing.assert_close(pred.grad, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="coordinate_l1_loss"):
        coordinate_l1_loss(pred, target[..., :1], weight)


def test_coordinate_l2_float_weights_known_answer() -> None:
    pred = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # squared errors 1 and 4
    weight = torch.tensor([[0.25, 0.75]])
    loss = coordinate_l2_loss(pred, torch.zeros(1, 2, 2), weight)
    torch.testing.assert_close(loss, torch.tensor((0.25 * 1 + 0.75 * 4) / 1.0), rtol=0, atol=1e-7)


def test_coordinate_l2_matches_a_plain_reference_on_random_input() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 14, 2, generator=g), torch.randn(4, 14, 2, generator=g)
    weight = torch.rand(4, 14, generator=g) * (torch.rand(4, 14, generator=g) > 0.3)
    reference = sum(
        float(weight[b, k]) * float(((pred[b, k] - target[b, k]) ** 2).sum())
        for b in range(4)
        for k in range(14)
    ) / float(weight.sum())
    torch.testing.assert_close(
        coordinate_l2_loss(pred, target, weight), torch.tensor(reference), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("placeholder", [float("inf"), float("nan"), -1e30])
def test_zero_weight_placeholders_contribute_nothing(placeholder: float) -> None:
    pred = torch.tensor([[[0.1, 0.0], [0.2, 0.2]]], requires_grad=True)
    target = torch.tensor([[[0.0, 0.0], [placeholder, placeholder]]])
    labelled = torch.tensor([[True, False]])
    loss = coordinate_l2_loss(pred, target, labelled)
    torch.testing.assert_close(loss, torch.tensor(0.01), rtol=1e-6, atol=1e-8)
    loss.backward()
    # d/dpred of (p - t)^2 / 1 = 2 (p - t) for the labelled joint, exactly 0 for the other.
    expected_grad = torch.tensor([[[0.2, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(pred.grad, expected_grad, rtol=1e-6, atol=1e-8)


def test_all_zero_weight_batch_gives_zero_and_finite_gradient() -> None:
    pred = torch.randn(2, 14, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.full((2, 14, 2), float("nan"))
    loss = coordinate_l2_loss(pred, target, torch.zeros(2, 14, dtype=torch.bool))
    torch.testing.assert_close(loss, torch.tensor(0.0), rtol=0, atol=0)
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.zeros(2, 14, 2), rtol=0, atol=0)


def test_heatmap_mse_known_answer_and_weights() -> None:
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 2.0  # joint 0: mean of (4, 0, 0, 0) = 1
    target[0, 1] = float("nan")  # joint 1 has weight 0: ignored, no NaN
    loss = heatmap_mse_loss(pred, target, torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(loss, torch.tensor(1.0), rtol=0, atol=1e-7)


def test_binary_cross_entropy_matches_torch_on_weighted_joints() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 5, 5, generator=g)
    target = (torch.rand(3, 4, 5, 5, generator=g) > 0.8).float()
    weight = torch.tensor([[1.0, 0.0, 1.0, 1.0]]).expand(3, 4)
    loss = binary_cross_entropy_loss(logits, target, weight)
    keep = weight[0] > 0
    expected = F.binary_cross_entropy_with_logits(logits[:, keep], target[:, keep])
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("pred_shape", "target_shape", "weight_shape"),
    [
        ((2, 14, 2), (2, 13, 2), (2, 14)),
        ((2, 14, 2), (2, 14, 2), (2, 13)),
        ((2, 14), (2, 14), (2,)),
    ],
)
def test_coordinate_l2_shape_mismatch_raises(pred_shape, target_shape, weight_shape) -> None:
    with pytest.raises(ValueError, match=r"coordinate_l2_loss: .*\(B, K"):
        coordinate_l2_loss(
            torch.zeros(pred_shape), torch.zeros(target_shape), torch.ones(weight_shape)
        )


def test_heatmap_and_bce_shape_mismatch_raise() -> None:
    with pytest.raises(ValueError, match="heatmap_mse_loss"):
        heatmap_mse_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 3), torch.ones(1, 2))
    with pytest.raises(ValueError, match="binary_cross_entropy_loss: weight"):
        binary_cross_entropy_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.ones(1, 3))


def test_simcc_kl_matches_torch_kl_div_summed_over_axes_and_weighted() -> None:
    """SimCC §3.3: KL(target || softmax(logits)) per axis, summed over x and y, weighted mean
    over joints; a zero-weight joint's NaN placeholder adds nothing."""
    torch.manual_seed(0)
    logits_x, logits_y = torch.randn(2, 3, 7), torch.randn(2, 3, 5)
    target_x, target_y = torch.rand(2, 3, 7).softmax(-1), torch.rand(2, 3, 5).softmax(-1)
    weight = torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    logits_x[0, 1] = float("nan")
    per_joint = sum(
        F.kl_div(lg.log_softmax(-1), t, reduction="none").sum(-1)
        for lg, t in ((logits_x, target_x), (logits_y, target_y))
    )
    keep = weight > 0
    expected = (per_joint[keep] * weight[keep]).sum() / weight.sum()
    loss = simcc_kl_loss(logits_x, logits_y, target_x, target_y, weight)
    torch.testing.assert_close(loss, expected)


def test_simcc_kl_is_zero_when_the_softmax_is_the_target_and_positive_otherwise() -> None:
    target = torch.tensor([[[0.1, 0.2, 0.7]]])
    weight = torch.ones(1, 1)
    exact = simcc_kl_loss(target.log(), target.log(), target, target, weight)
    torch.testing.assert_close(exact, torch.tensor(0.0), atol=1e-6, rtol=0)
    flat = simcc_kl_loss(torch.zeros(1, 1, 3), target.log(), target, target, weight)
    by_hand = (target * (target / (1 / 3)).log()).sum()  # KL to the uniform, x axis only
    torch.testing.assert_close(flat, by_hand)
    with pytest.raises(ValueError, match="simcc_kl_loss: y logits"):
        simcc_kl_loss(target, torch.zeros(1, 1, 4), target, target, weight)
