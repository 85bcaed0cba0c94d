"""Window codec: known-answer windows of joints and part centres, weights, edges, NaN."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from lightning_pose.codecs.grid import grid_to_norm
from lightning_pose.codecs.windows import WindowCodec
from lightning_pose.data.skeleton import LSP_SKELETON

S = 64  # input pixels; a 4 x 4 grid has 16-pixel windows: window j covers q in [16j - 0.5, ...)


def pixels_to_norm(q: list[list[float]]) -> torch.Tensor:
    """(N, 2) input pixels -> (1, N, 2) box-normalised."""
    return grid_to_norm(torch.tensor([q], dtype=torch.float32), S)


def positive_windows(labels: torch.Tensor) -> list[tuple[int, int]]:
    """(column, row) of every 1 in one (G_y, G_x) label map."""
    return [(int(c), int(r)) for r, c in labels.nonzero().tolist()]


@pytest.mark.parametrize(
    ("pixel", "window"),
    [
        ((0.0, 0.0), (0, 0)),
        ((15.0, 15.0), (0, 0)),  # the last pixel of window 0
        ((16.0, 15.0), (1, 0)),  # the first pixel of window 1
        ((31.0, 32.0), (1, 2)),
        ((40.0, 20.0), (2, 1)),
        ((63.0, 63.0), (3, 3)),
        ((63.5, -0.5), (3, 0)),  # the box's far edges belong to the outer windows
    ],
)
def test_joint_at_a_known_pixel_turns_on_exactly_its_window(
    pixel: tuple[float, float], window: tuple[int, int]
) -> None:
    labels, weight = WindowCodec((4, 4)).encode_points(
        pixels_to_norm([list(pixel)]), torch.ones(1, 1)
    )
    assert labels.shape == (1, 1, 4, 4)
    assert positive_windows(labels[0, 0]) == [window]
    assert_close(labels.sum(), torch.tensor(1.0), rtol=0, atol=0)
    assert_close(weight, torch.ones(1, 1), rtol=0, atol=0)


def test_non_square_grid_windows_follow_x_and_y() -> None:
    # G_x = 2 (32-px columns), G_y = 8 (8-px rows): pixel (40, 20) -> column 1, row 2.
    labels, _ = WindowCodec((2, 8)).encode_points(pixels_to_norm([[40.0, 20.0]]), torch.ones(1, 1))
    assert labels.shape == (1, 1, 8, 2)
    assert positive_windows(labels[0, 0]) == [(1, 2)]


def test_unlabelled_and_nan_joints_have_no_positive_and_weight_zero() -> None:
    points = pixels_to_norm([[10.0, 10.0], [float("nan"), 5.0], [20.0, 50.0]])
    weight = torch.tensor([[False, True, True]])
    labels, target_weight = WindowCodec((4, 4)).encode_points(points, weight)
    assert labels[0, 0].sum() == 0 and labels[0, 1].sum() == 0
    assert torch.isfinite(labels).all()
    assert positive_windows(labels[0, 2]) == [(1, 3)]
    assert_close(target_weight, torch.tensor([[0.0, 0.0, 1.0]]), rtol=0, atol=0)


def test_off_grid_weighted_joint_is_a_negative_everywhere_with_its_weight() -> None:
    points = pixels_to_norm([[-1.0, 30.0], [30.0, 64.0]])  # left of, and below, the box
    labels, target_weight = WindowCodec((4, 4)).encode_points(points, torch.tensor([[1.0, 0.5]]))
    assert labels.sum() == 0
    assert_close(target_weight, torch.tensor([[1.0, 0.5]]), rtol=0, atol=0)


def test_part_centre_is_the_midpoint_of_its_end_points_and_turns_on_its_window() -> None:
    # Right lower arm = right wrist (6) -> right elbow (7). Wrist at pixel (4, 4), elbow at
    # (40, 4): centre (22, 4), window (1, 0), though neither end is in that window.
    keypoints = torch.zeros(1, LSP_SKELETON.num_joints, 2)
    keypoints[0, 6] = pixels_to_norm([[4.0, 4.0]])[0, 0]
    keypoints[0, 7] = pixels_to_norm([[40.0, 4.0]])[0, 0]
    visible = torch.zeros(1, LSP_SKELETON.num_joints, dtype=torch.bool)
    visible[0, [6, 7]] = True
    limb_weights = torch.from_numpy(LSP_SKELETON.limb_endpoint_weights())
    codec = WindowCodec((4, 4))
    labels, weight = codec.encode_parts(keypoints, visible, limb_weights)
    part = LSP_SKELETON.limb_names.index("right_lower_arm")
    assert labels.shape == (1, len(LSP_SKELETON.limbs), 4, 4)
    assert positive_windows(labels[0, part]) == [(1, 0)]
    expected_weight = torch.zeros(1, len(LSP_SKELETON.limbs))
    expected_weight[0, part] = 1.0
    assert_close(weight, expected_weight, rtol=0, atol=0)  # every other part has a hidden end
    assert labels.sum() == 1
    centres, _ = codec.part_centres(keypoints, visible, limb_weights)
    assert_close(centres[0, part], pixels_to_norm([[22.0, 4.0]])[0, 0], rtol=0, atol=1e-6)


def test_torso_centre_averages_hip_and_shoulder_midpoints() -> None:
    # LSP torso: hip midpoint (2, 3) -> shoulder midpoint (8, 9). Hips at (20, 50) and (40, 50),
    # shoulders at (20, 10) and (40, 10): centre (30, 30), window (1, 1).
    keypoints = torch.zeros(1, LSP_SKELETON.num_joints, 2)
    for joint, q in {2: [20.0, 50.0], 3: [40.0, 50.0], 8: [20.0, 10.0], 9: [40.0, 10.0]}.items():
        keypoints[0, joint] = pixels_to_norm([q])[0, 0]
    visible = torch.ones(1, LSP_SKELETON.num_joints, dtype=torch.bool)
    visible[0, 9] = False  # one torso joint hidden: no torso label, no weight
    limb_weights = torch.from_numpy(LSP_SKELETON.limb_endpoint_weights())
    torso = LSP_SKELETON.limb_names.index("torso")
    labels, weight = WindowCodec((4, 4)).encode_parts(keypoints, visible, limb_weights)
    assert labels[0, torso].sum() == 0 and weight[0, torso] == 0
    visible[0, 9] = True
    labels, weight = WindowCodec((4, 4)).encode_parts(keypoints, visible, limb_weights)
    assert positive_windows(labels[0, torso]) == [(1, 1)] and weight[0, torso] == 1


def test_bad_grid_and_shapes_raise_naming_what_was_expected() -> None:
    with pytest.raises(ValueError, match="grid must be"):
        WindowCodec((4, 0))
    with pytest.raises(ValueError, match=r"weight must be \(B, N\)"):
        WindowCodec((4, 4)).encode_points(torch.zeros(2, 3, 2), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"points must be \(B, N, 2\)"):
        WindowCodec((4, 4)).encode_points(torch.zeros(2, 3), torch.ones(2, 3))
