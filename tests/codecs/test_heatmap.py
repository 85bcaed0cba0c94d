"""Gaussian heatmap codec: pixel-centre mapping by known answers, round trips, weights, flips."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid
from lightning_pose.codecs.heatmap import HeatmapCodec

S = 64  # input size in pixels
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _argmax_cell(heatmap: torch.Tensor) -> tuple[int, int]:
    """(column, row) of the maximum of one (H, W) map."""
    index = int(heatmap.flatten().argmax())
    return index % heatmap.shape[-1], index // heatmap.shape[-1]


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_joint_at_cell_centre_pixel_peaks_at_that_cell_and_decodes_back(stride: int) -> None:
    # Cell j's centre is input pixel j s + (s - 1) / 2: a joint there peaks at exactly 1.0 on
    # cell (3, 5), not on a neighbour as the q / s mapping would put it for s > 1.
    G = S // stride
    q = torch.tensor([[[3 * stride + (stride - 1) / 2, 5 * stride + (stride - 1) / 2]]])
    codec = HeatmapCodec(sigma=2.0)
    heatmaps, _ = codec.encode(grid_to_norm(q, S), torch.ones(1, 1, dtype=torch.bool), (G, G))
    assert heatmaps.shape == (1, 1, G, G)
    assert _argmax_cell(heatmaps[0, 0]) == (3, 5)
    assert_close(heatmaps[0, 0, 5, 3], torch.tensor(1.0), rtol=0, atol=1e-6)
    decoded_norm, scores = codec.decode(heatmaps)
    assert_close(norm_to_grid(decoded_norm, S), q, rtol=0, atol=1e-4)
    assert_close(scores, torch.ones(1, 1), rtol=0, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_joint_at_cell_corner_pixel_lands_on_that_cell_and_decodes_back(stride: int) -> None:
    # Input pixel j s is cell j - (s - 1) / (2 s), within half a cell of cell j.
    G = S // stride
    q = torch.tensor([[[3.0 * stride, 5.0 * stride]]])
    codec = HeatmapCodec(sigma=2.0)
    heatmaps, _ = codec.encode(grid_to_norm(q, S), torch.ones(1, 1), (G, G))
    assert _argmax_cell(heatmaps[0, 0]) == (3, 5)
    expected_peak = math.exp(-2 * ((stride - 1) / (2 * stride)) ** 2 / (2 * 2.0**2))
    assert_close(heatmaps[0, 0, 5, 3], torch.tensor(expected_peak), rtol=0, atol=1e-6)
    decoded_px = norm_to_grid(codec.decode(heatmaps)[0], S)
    assert_close(decoded_px, q, rtol=0, atol=stride / 4)  # within 1/4 cell, as asked
    assert_close(decoded_px, q, rtol=0, atol=1e-3)  # and in fact exact: the fit is exact


@pytest.mark.parametrize("sigma", [1.0, 2.0])
@pytest.mark.parametrize("stride", [4, 8])
def test_round_trip_of_random_subcell_positions(stride: int, sigma: float) -> None:
    G = S // stride
    generator = torch.Generator().manual_seed(stride)
    cells = 2 + (G - 5) * torch.rand(2, 100, 2, generator=generator)  # 2 cells from the border
    q = (cells + 0.5) * stride - 0.5  # input pixels
    codec = HeatmapCodec(sigma=sigma)
    heatmaps, weight = codec.encode(grid_to_norm(q, S), torch.ones(2, 100), (G, G))
    assert_close(weight, torch.ones(2, 100), rtol=0, atol=0)
    decoded_px = norm_to_grid(codec.decode(heatmaps)[0], S)
    assert_close(decoded_px, q, rtol=0, atol=1 / stride)
    assert_close(decoded_px, q, rtol=0, atol=1e-3)


def test_target_weights_and_zero_heatmaps_for_missing_joints() -> None:
    G = 16
    keypoints_norm = torch.tensor(
        [
            [
                [0.1, -0.2],  # inside, weight True -> 1
                [0.6, 0.0],  # outside the grid in x -> 0
                [float("nan"), float("nan")],  # NaN placeholder -> 0
                [0.0, 0.0],  # inside but weight 0 -> 0
                [-0.5, 0.5],  # on the grid's edge (g = -0.5, G - 0.5): inside -> 1
                [-1e9, 2e9],  # huge placeholder -> 0
                [float("inf"), 0.0],  # not finite -> 0
            ]
        ]
    )
    labelled = torch.tensor([[True, True, True, False, True, True, True]])
    codec = HeatmapCodec()
    heatmaps, target_weight = codec.encode(keypoints_norm, labelled, (G, G))
    expected = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    assert target_weight.dtype == torch.float32
    assert_close(target_weight, expected, rtol=0, atol=0)
    assert torch.isfinite(heatmaps).all()
    assert_close(heatmaps[0, [1, 2, 3, 5, 6]], torch.zeros(5, G, G), rtol=0, atol=0)
    assert heatmaps[0, 0].max() > 0.9 and heatmaps[0, 4].max() > 0.9

    # Float weights pass through unchanged where the joint is on the grid.
    float_weight = torch.tensor([[0.5, 2.0, 1.0, 0.0, 0.25, 1.0, 1.0]])
    _, target_weight = codec.encode(keypoints_norm, float_weight, (G, G))
    assert_close(target_weight, torch.tensor([[0.5, 0, 0, 0, 0.25, 0, 0]]), rtol=0, atol=0)


def test_heatmap_values_are_the_unnormalised_gaussian() -> None:
    # A joint at cell (2.25, 1.5) of a (W=6, H=4) map, sigma 1.5: every value by formula.
    codec = HeatmapCodec(sigma=1.5)
    centre = torch.tensor([2.25, 1.5])
    heatmaps, _ = codec.encode(grid_to_norm(centre, (6, 4))[None, None], torch.ones(1, 1), (6, 4))
    assert heatmaps.shape == (1, 1, 4, 6)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(6.0), indexing="ij")
    expected = torch.exp(-((xs - 2.25) ** 2 + (ys - 1.5) ** 2) / (2 * 1.5**2))
    assert_close(heatmaps[0, 0], expected, rtol=0, atol=1e-6)


def test_decode_subcell_step_known_answer() -> None:
    # Row values 0.5, 1, 0.25 around the peak at column 3: l = (L, 0, 2L) with L = log 0.5, so
    # the offset is 0.5 (L - 2L) / (L + 2L) = -1/6. Column: 0.5, 1, 0.5 -> offset 0.
    heatmaps = torch.zeros(1, 1, 5, 7)
    heatmaps[0, 0, 2, 2:5] = torch.tensor([0.5, 1.0, 0.25])
    heatmaps[0, 0, 1, 3] = heatmaps[0, 0, 3, 3] = 0.5
    keypoints_norm, scores = HeatmapCodec().decode(heatmaps)
    expected = torch.tensor([[[3 - 1 / 6, 2.0]]])
    assert_close(norm_to_grid(keypoints_norm, (7, 5)), expected, rtol=0, atol=1e-5)
    assert_close(scores, torch.ones(1, 1), rtol=0, atol=0)


@pytest.mark.parametrize(("subpixel", "x"), [("dark", 3 - 1 / 6), ("quarter", 2.75), ("none", 3.0)])
def test_each_subpixel_step_on_the_same_map(subpixel: str, x: float) -> None:
    # the map of the known-answer test: the left neighbour (0.5) beats the right (0.25)
    heatmaps = torch.zeros(1, 1, 5, 7)
    heatmaps[0, 0, 2, 2:5] = torch.tensor([0.5, 1.0, 0.25])
    heatmaps[0, 0, 1, 3] = heatmaps[0, 0, 3, 3] = 0.5  # a tie along y: no step
    keypoints_norm, _ = HeatmapCodec(subpixel=subpixel).decode(heatmaps)
    expected = torch.tensor([[[x, 2.0]]])
    assert_close(norm_to_grid(keypoints_norm, (7, 5)), expected, rtol=0, atol=1e-5)
    heatmaps[0, 0, 2, 2] = 0.0  # the peak's other side now wins: quarter steps right
    heatmaps[0, 0, 2, 0:2] = 0.0
    keypoints_norm, _ = HeatmapCodec(subpixel="quarter").decode(heatmaps)
    assert_close(
        norm_to_grid(keypoints_norm, (7, 5))[0, 0, 0], torch.tensor(3.25), rtol=0, atol=1e-6
    )


def test_decode_at_the_border_and_flat_peaks() -> None:
    generator = torch.Generator().manual_seed(0)
    heatmaps = 0.5 * torch.rand(1, 4, 6, 7, generator=generator)  # (B, K, H=6, W=7)
    heatmaps[0, 0, 3, 0] = 1.0  # left border, row 3
    heatmaps[0, 0, 2, 0] = 0.8  # upper neighbour larger than the lower one: y offset < 0
    heatmaps[0, 1, 5, 6] = 1.0  # bottom-right corner
    heatmaps[0, 2, 0, 4] = 1.0  # top border, column 4
    heatmaps[0, 3] = -heatmaps[0, 3] - 0.2  # all negative: every log clamped, denominator 0
    heatmaps[0, 3, 3, 2] = -0.1  # unique maximum, at column 2, row 3
    keypoints_norm, scores = HeatmapCodec().decode(heatmaps)
    grid = norm_to_grid(keypoints_norm, (7, 6))  # (1, 4, 2)
    assert torch.isfinite(grid).all()
    assert_close(grid[0, 0, 0], torch.tensor(0.0), rtol=0, atol=1e-6)  # border axis: centre

    # the inner axes: DARK's step d = 0.5 (l_-1 - l_+1) / (l_-1 - 2 l_0 + l_+1) on the logs
    # of the seeded neighbours (Zhang et al. 2020 §3.2), within [-0.5, 0.5]
    def step(before: float, after: float) -> float:
        lm, lp = math.log(before), math.log(after)  # l_0 = log 1 = 0
        return min(max(0.5 * (lm - lp) / (lm + lp), -0.5), 0.5)

    dy = step(0.8, float(heatmaps[0, 0, 4, 0]))
    assert -0.5 < dy < 0  # the upper neighbour is the larger one
    assert_close(grid[0, 0, 1], torch.tensor(3 + dy), rtol=0, atol=1e-6)
    assert_close(grid[0, 1], torch.tensor([6.0, 5.0]), rtol=0, atol=1e-6)
    assert_close(grid[0, 2, 1], torch.tensor(0.0), rtol=0, atol=1e-6)
    dx = step(float(heatmaps[0, 2, 0, 3]), float(heatmaps[0, 2, 0, 5]))
    assert_close(grid[0, 2, 0], torch.tensor(4 + dx), rtol=0, atol=1e-6)
    assert_close(grid[0, 3], torch.tensor([2.0, 3.0]), rtol=0, atol=1e-6)  # no sub-cell step
    assert_close(scores, heatmaps.flatten(2).amax(-1), rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_flip_heatmaps_of_mirrored_pose_equals_original(device: str) -> None:
    generator = torch.Generator().manual_seed(1)
    keypoints_norm = (torch.rand(2, 5, 2, generator=generator) - 0.5) * 0.7  # off the border
    keypoints_norm = keypoints_norm.to(device)
    flip_permutation = [0, 2, 1, 4, 3]
    mirrored = keypoints_norm[:, flip_permutation] * keypoints_norm.new_tensor([-1.0, 1.0])
    codec = HeatmapCodec(sigma=1.5)
    size = (12, 16)  # W, H
    heatmaps, _ = codec.encode(keypoints_norm, torch.ones(2, 5, device=device), size)
    heatmaps_of_mirror, _ = codec.encode(mirrored, torch.ones(2, 5, device=device), size)
    flipped_back = codec.flip_heatmaps(heatmaps_of_mirror, flip_permutation)
    assert flipped_back.device == heatmaps.device
    assert_close(flipped_back, heatmaps, rtol=0, atol=1e-6)
    # Decoded keypoints of the flipped-back maps are the original keypoints.
    assert_close(codec.decode(flipped_back)[0], keypoints_norm, rtol=0, atol=1e-5)


def test_flip_of_cell_j_is_cell_w_minus_1_minus_j() -> None:
    heatmaps = torch.zeros(1, 2, 3, 4)
    heatmaps[0, 0, 1, 0] = 1.0  # joint 0 at cell (0, 1)
    heatmaps[0, 1, 2, 1] = 1.0  # joint 1 at cell (1, 2)
    flipped = HeatmapCodec().flip_heatmaps(heatmaps, [1, 0])
    expected = torch.zeros(1, 2, 3, 4)
    expected[0, 0, 2, 2] = 1.0  # joint 1's map, column 1 -> 4 - 1 - 1 = 2
    expected[0, 1, 1, 3] = 1.0  # joint 0's map, column 0 -> 3
    assert_close(flipped, expected, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_float64_batch_keeps_dtype_and_device(device: str) -> None:
    generator = torch.Generator().manual_seed(2)
    cells = 2 + 4 * torch.rand(2, 3, 2, generator=generator, dtype=torch.float64)
    keypoints_norm = grid_to_norm(cells, (9, 8)).to(device)
    codec = HeatmapCodec(sigma=1.0)
    weight = torch.tensor([[True, False, True], [True, True, True]], device=device)
    heatmaps, target_weight = codec.encode(keypoints_norm, weight, (9, 8))
    assert heatmaps.shape == (2, 3, 8, 9) and target_weight.shape == (2, 3)
    assert heatmaps.dtype == target_weight.dtype == torch.float64
    assert heatmaps.device == keypoints_norm.device
    decoded, scores = codec.decode(heatmaps)
    assert decoded.shape == (2, 3, 2) and scores.shape == (2, 3)
    assert decoded.dtype == scores.dtype == torch.float64
    keep = weight.bool()
    assert_close(decoded[keep], keypoints_norm[keep], rtol=0, atol=1e-9)
    # The score is the Gaussian at the cell nearest the centre.
    expected_scores = torch.exp(-((cells - cells.round()) ** 2).sum(-1) / 2).to(device)
    assert_close(scores[keep], expected_scores[keep], rtol=0, atol=1e-12)


def test_bad_arguments_raise_naming_what_was_expected() -> None:
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec(sigma=0.0)
    with pytest.raises(ValueError, match=r"subpixel must be one of .*'cubic'"):
        HeatmapCodec(subpixel="cubic")
    codec = HeatmapCodec()
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        codec.encode(torch.zeros(2, 3), torch.ones(2), (4, 4))
    with pytest.raises(ValueError, match="weight"):
        codec.encode(torch.zeros(2, 3, 2), torch.ones(2, 4), (4, 4))
    with pytest.raises(ValueError, match="size"):
        codec.encode(torch.zeros(2, 3, 2), torch.ones(2, 3), (4, 0))
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        codec.decode(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="permutation"):
        codec.flip_heatmaps(torch.zeros(1, 3, 4, 4), [0, 1, 1])
