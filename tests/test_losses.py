"""visible_l2_loss: known answers, invisible placeholders, empty batches and shape errors."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.losses import visible_l2_loss


def test_known_answer_by_hand() -> None:
    pred = torch.tensor([[[0.0, 0.0], [0.1, 0.2], [0.5, 0.5]], [[0.3, -0.4], [0.0, 0.0], [1, 1]]])
    target = torch.zeros(2, 3, 2)
    visible = torch.tensor([[True, True, False], [True, False, False]])
    # visible squared errors: 0, 0.01 + 0.04, 0.09 + 0.16 -> 0.30 over 3 visible joints
    loss = visible_l2_loss(pred, target, visible)
    torch.testing.assert_close(loss, torch.tensor(0.30 / 3), rtol=1e-6, atol=1e-7)
    assert loss.shape == ()


def test_matches_a_plain_reference_on_random_input() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 14, 2, generator=g), torch.randn(4, 14, 2, generator=g)
    visible = torch.rand(4, 14, generator=g) > 0.3
    reference = sum(
        float(((pred[b, k] - target[b, k]) ** 2).sum())
        for b in range(4)
        for k in range(14)
        if visible[b, k]
    ) / int(visible.sum())
    torch.testing.assert_close(
        visible_l2_loss(pred, target, visible), torch.tensor(reference), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("placeholder", [float("inf"), float("nan"), -1e30])
def test_invisible_placeholders_contribute_nothing(placeholder: float) -> None:
    pred = torch.tensor([[[0.1, 0.0], [0.2, 0.2]]], requires_grad=True)
    target = torch.tensor([[[0.0, 0.0], [placeholder, placeholder]]])
    visible = torch.tensor([[True, False]])
    loss = visible_l2_loss(pred, target, visible)
    torch.testing.assert_close(loss, torch.tensor(0.01), rtol=1e-6, atol=1e-8)
    loss.backward()
    # d/dpred of (p - t)^2 / 1 = 2 (p - t) for the visible joint, exactly 0 for the other.
    expected_grad = torch.tensor([[[0.2, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(pred.grad, expected_grad, rtol=1e-6, atol=1e-8)


def test_all_invisible_batch_gives_zero_and_finite_gradient() -> None:
    pred = torch.randn(2, 14, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.full((2, 14, 2), float("nan"))
    loss = visible_l2_loss(pred, target, torch.zeros(2, 14, dtype=torch.bool))
    torch.testing.assert_close(loss, torch.tensor(0.0), rtol=0, atol=0)
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.zeros(2, 14, 2), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("pred_shape", "target_shape", "visible_shape"),
    [
        ((2, 14, 2), (2, 13, 2), (2, 14)),
        ((2, 14, 2), (2, 14, 2), (2, 13)),
        ((2, 14), (2, 14), (2,)),
    ],
)
def test_shape_mismatch_raises(pred_shape, target_shape, visible_shape) -> None:
    with pytest.raises(ValueError, match=r"visible_l2_loss: pred .* must be \(B, K, 2\)"):
        visible_l2_loss(
            torch.zeros(pred_shape),
            torch.zeros(target_shape),
            torch.ones(visible_shape, dtype=bool),
        )
