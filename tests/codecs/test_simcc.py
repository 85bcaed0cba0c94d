"""SimCC's codec (Li et al. 2022): Gaussian labels over the bins of each axis and the arg-max
decoding, known answers on the package's grid."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.codecs.grid import grid_to_norm
from lightning_pose.codecs.simcc import SimCCCodec


def test_labels_are_normalised_gaussians_centred_on_the_exact_bin_coordinate() -> None:
    codec = SimCCCodec((10, 8), sigma=1.0)
    # x at bin coordinate 3.0 exactly, y at 2.5 (between bins 2 and 3)
    x, y = grid_to_norm(torch.tensor(3.0), 10), grid_to_norm(torch.tensor(2.5), 8)
    keypoints = torch.stack([x, y]).view(1, 1, 2)
    target_x, target_y, weight = codec.encode(keypoints, torch.ones(1, 1, dtype=torch.bool))
    gauss_x = torch.exp(-((torch.arange(10.0) - 3.0) ** 2) / 2)
    gauss_y = torch.exp(-((torch.arange(8.0) - 2.5) ** 2) / 2)
    torch.testing.assert_close(target_x[0, 0], gauss_x / gauss_x.sum())
    torch.testing.assert_close(target_y[0, 0], gauss_y / gauss_y.sum())
    assert target_y[0, 0, 2] == pytest.approx(target_y[0, 0, 3])  # symmetric about 2.5
    assert weight.tolist() == [[1.0]]


def test_unlabelled_joints_and_joints_outside_the_bins_get_weight_zero_and_no_target() -> None:
    codec = SimCCCodec(20, sigma=2.0)
    keypoints = torch.tensor([[[0.0, 0.0], [0.1, -0.2], [0.6, 0.0], [0.0, -0.51]]])
    labelled = torch.tensor([[True, False, True, True]])
    target_x, target_y, weight = codec.encode(keypoints, labelled)
    assert weight.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    torch.testing.assert_close(target_x[0, 0].sum(), torch.tensor(1.0))
    assert target_x[0, 1:].abs().sum() == 0 and target_y[0, 1:].abs().sum() == 0


def test_decode_is_the_argmax_bin_centre_and_the_smaller_peak_probability() -> None:
    codec = SimCCCodec((6, 4), sigma=1.0)
    logits_x = torch.full((1, 2, 6), -30.0)
    logits_y = torch.zeros(1, 2, 4)  # flat: bin 0 on a tie, peak probability 1/4
    logits_x[0, 0, 5] = 30.0
    logits_x[0, 1, 1] = math.log(3.0)  # softmax 3 / (3 + 5 e^-30) ~ 1
    logits_y[0, 0, 2] = 50.0
    keypoints, scores = codec.decode(logits_x, logits_y)
    expected = torch.stack(
        [grid_to_norm(torch.tensor([5.0, 1.0]), 6), grid_to_norm(torch.tensor([2.0, 0.0]), 4)], -1
    )
    torch.testing.assert_close(keypoints[0], expected)
    torch.testing.assert_close(scores[0], torch.tensor([1.0, 0.25]))


def test_encoding_then_decoding_its_log_labels_lands_within_half_a_bin() -> None:
    torch.manual_seed(0)
    codec = SimCCCodec((320, 256), sigma=4.0)
    keypoints = torch.rand(3, 5, 2) * 0.9 - 0.45
    target_x, target_y, weight = codec.encode(keypoints, torch.ones(3, 5, dtype=torch.bool))
    decoded, _ = codec.decode(target_x.log(), target_y.log())
    half_bin = torch.tensor([0.5 / 320, 0.5 / 256])
    assert ((decoded - keypoints).abs() <= half_bin + 1e-6).all()
    assert weight.eq(1).all()


def test_bf16_logits_are_decoded_in_float32() -> None:
    codec = SimCCCodec(32, sigma=2.0)
    logits = torch.randn(2, 3, 32)
    keypoints, scores = codec.decode(logits.bfloat16(), logits.bfloat16())
    assert keypoints.dtype == scores.dtype == torch.float32


def test_bad_arguments_and_logits_raise() -> None:
    with pytest.raises(ValueError, match="num_bins"):
        SimCCCodec((1, 10), sigma=1.0)
    with pytest.raises(ValueError, match="sigma"):
        SimCCCodec(10, sigma=0.0)
    with pytest.raises(ValueError, match="expected 10 x bins"):
        SimCCCodec(10, sigma=1.0).decode(torch.zeros(1, 1, 9), torch.zeros(1, 1, 10))
