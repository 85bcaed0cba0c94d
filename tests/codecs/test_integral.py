"""Integral regression's soft-argmax (Sun et al. 2018): known answers on the package's grid."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.codecs.grid import cell_centres, grid_to_norm
from lightning_pose.codecs.integral import soft_argmax


def test_a_sharp_peak_decodes_to_its_cell_centre() -> None:
    maps = torch.full((1, 2, 5, 8), -50.0)
    maps[0, 0, 1, 6] = 50.0  # row 1, column 6
    maps[0, 1, 4, 0] = 50.0
    keypoints, scores = soft_argmax(maps)
    expected = grid_to_norm(torch.tensor([[6.0, 1.0], [0.0, 4.0]]), (8, 5))
    torch.testing.assert_close(keypoints[0], expected)
    torch.testing.assert_close(scores, torch.ones(1, 2))


def test_two_equal_peaks_decode_to_their_midpoint_and_a_flat_map_to_the_centre() -> None:
    maps = torch.full((1, 2, 4, 4), -30.0)
    maps[0, 0, 2, 0] = maps[0, 0, 2, 3] = 30.0  # columns 0 and 3 of row 2
    maps[0, 1] = 0.0  # flat: the mean of every cell centre, the box centre
    keypoints, scores = soft_argmax(maps)
    torch.testing.assert_close(keypoints[0, 0], grid_to_norm(torch.tensor([1.5, 2.0]), 4))
    torch.testing.assert_close(keypoints[0, 1], torch.zeros(2))
    assert scores[0, 0] == pytest.approx(0.5) and scores[0, 1] == pytest.approx(1 / 16)


def test_it_is_the_softmax_weighted_mean_of_the_cell_centres_with_a_gradient() -> None:
    torch.manual_seed(0)
    maps = torch.randn(2, 3, 6, 7, requires_grad=True)
    keypoints, _ = soft_argmax(maps)
    prob = maps.detach().flatten(2).softmax(-1)
    expected = torch.einsum("bkp,pc->bkc", prob, cell_centres((7, 6)).view(-1, 2))
    torch.testing.assert_close(keypoints.detach(), expected)
    keypoints.sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0


def test_bf16_maps_are_decoded_in_float32() -> None:
    maps = torch.randn(1, 1, 40, 40)
    keypoints, _ = soft_argmax(maps.bfloat16())
    assert keypoints.dtype == torch.float32
    torch.testing.assert_close(keypoints, soft_argmax(maps.bfloat16().float())[0])


def test_bad_maps_raise() -> None:
    with pytest.raises(ValueError, match="soft_argmax"):
        soft_argmax(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="soft_argmax"):
        soft_argmax(torch.zeros(1, 1, 4, 4, dtype=torch.long))
