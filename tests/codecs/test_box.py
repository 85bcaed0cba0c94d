"""Box frame: known answers and round trips (DeepPose §3, Eq. 1 and §3.2, Eq. 6)."""

from __future__ import annotations

import numpy as np
import torch
from torch.testing import assert_close

from lightning_pose.codecs.box import (
    decode,
    decode_in_boxes,
    encode,
    encode_in_boxes,
    square_boxes,
    torso_box_to_person_box,
    whole_image_box,
)
from lightning_pose.codecs.crop import crop_image
from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid


def test_encode_known_answers() -> None:
    box = np.array([50.0, 40.0, 100.0, 80.0])  # spans x in [0, 100], y in [0, 80]
    keypoints = np.array([[50.0, 40.0], [0.0, 0.0], [100.0, 80.0], [75.0, 20.0]])
    expected = np.array([[0.0, 0.0], [-0.5, -0.5], [0.5, 0.5], [0.25, -0.25]])
    np.testing.assert_allclose(encode(keypoints, box), expected, rtol=0, atol=1e-12)


def test_decode_inverts_encode_numpy_and_torch() -> None:
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(-50, 400, size=(3, 5, 2))
    box = np.concatenate([rng.uniform(0, 300, (3, 2)), rng.uniform(20, 300, (3, 2))], axis=1)
    np.testing.assert_allclose(decode(encode(keypoints, box), box), keypoints, rtol=0, atol=1e-9)
    kp_t, box_t = torch.from_numpy(keypoints), torch.from_numpy(box)
    assert_close(decode(encode(kp_t, box_t), box_t), kp_t, rtol=0, atol=1e-9)


def test_per_point_boxes_known_answer_and_round_trip() -> None:
    # Two points, each in its own box: (0.1, -0.2) in a box at (0, 0) of side 0.4 is (0.25, -0.5).
    points = torch.tensor([[[0.1, -0.2], [0.5, 0.5]]])  # (1, 2, 2)
    boxes = torch.tensor([[[0.0, 0.0, 0.4, 0.4], [0.5, 0.3, 0.2, 0.8]]])  # (1, 2, 4)
    norm = encode_in_boxes(points, boxes)
    assert_close(norm, torch.tensor([[[0.25, -0.5], [0.0, 0.25]]]), rtol=0, atol=1e-6)
    assert_close(decode_in_boxes(norm, boxes), points, rtol=0, atol=1e-6)


def test_square_boxes_centre_and_side() -> None:
    centres = torch.tensor([[[0.1, -0.2], [0.0, 0.3]]])  # (1, 2, 2)
    boxes = square_boxes(centres, torch.tensor([0.5]))
    assert_close(
        boxes, torch.tensor([[[0.1, -0.2, 0.5, 0.5], [0.0, 0.3, 0.5, 0.5]]]), rtol=0, atol=1e-6
    )


def test_crop_image_moves_pixels_where_the_codec_says() -> None:
    # A single bright pixel must land, sub-pixel, where encode + norm_to_grid maps its centre.
    image = np.zeros((60, 90, 3), np.uint8)
    image[20, 70] = 255
    box = np.array([45.0, 30.0, 90.0, 90.0])  # whole-image square box, scale 1 at S = 90
    crop = crop_image(image, box, 90)
    expected = norm_to_grid(encode(np.array([[70.0, 20.0]]), box), 90)[0]  # (69.5, 34.5)
    weights = crop[..., 0].astype(np.float64)  # the mark, split over neighbouring pixels
    ys, xs = np.mgrid[0:90, 0:90]
    centroid = [(weights * xs).sum() / weights.sum(), (weights * ys).sum() / weights.sum()]
    np.testing.assert_allclose(centroid, expected, rtol=0, atol=0.01)


def test_round_trip_to_original_pixels_through_the_crop() -> None:
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 200, size=(14, 2))
    box = whole_image_box(width=200, height=150)
    crop_px = norm_to_grid(encode(keypoints, box), 220)
    back = decode(grid_to_norm(crop_px, 220), box)
    np.testing.assert_allclose(back, keypoints, rtol=0, atol=1e-4)


def test_whole_image_and_torso_boxes() -> None:
    np.testing.assert_allclose(
        whole_image_box(300, 200), [149.5, 99.5, 300, 300], rtol=0, atol=1e-6
    )
    box = torso_box_to_person_box(np.array([100.0, 50.0, 140.0, 150.0]), scale=3.0)
    np.testing.assert_allclose(box, [120.0, 100.0, 300.0, 300.0], rtol=0, atol=1e-6)
