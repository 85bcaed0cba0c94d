"""Codec: known answers and round trips (DeepPose §3, Eq. 1)."""

from __future__ import annotations

import numpy as np
import torch
from torch.testing import assert_close

from lightning_pose import codec


def test_encode_known_answers() -> None:
    box = np.array([50.0, 40.0, 100.0, 80.0])  # spans x in [0, 100], y in [0, 80]
    keypoints = np.array([[50.0, 40.0], [0.0, 0.0], [100.0, 80.0], [75.0, 20.0]])
    expected = np.array([[0.0, 0.0], [-0.5, -0.5], [0.5, 0.5], [0.25, -0.25]])
    np.testing.assert_allclose(codec.encode(keypoints, box), expected, rtol=0, atol=1e-12)


def test_decode_inverts_encode_numpy_and_torch() -> None:
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(-50, 400, size=(3, 5, 2))
    box = np.concatenate([rng.uniform(0, 300, (3, 2)), rng.uniform(20, 300, (3, 2))], axis=1)
    np.testing.assert_allclose(
        codec.decode(codec.encode(keypoints, box), box), keypoints, rtol=0, atol=1e-9
    )
    kp_t, box_t = torch.from_numpy(keypoints), torch.from_numpy(box)
    assert_close(codec.decode(codec.encode(kp_t, box_t), box_t), kp_t, rtol=0, atol=1e-9)


def test_crop_pixel_convention() -> None:
    # Normalised -0.5 is the left edge of pixel 0 (x = -0.5); +0.5 the right edge of pixel S-1.
    S = 4
    norm = np.array([[-0.5, 0.5], [0.0, -0.375]])
    np.testing.assert_allclose(
        codec.norm_to_crop_px(norm, S), [[-0.5, 3.5], [1.5, 0.0]], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        codec.crop_px_to_norm(codec.norm_to_crop_px(norm, S), S), norm, rtol=0, atol=1e-12
    )


def test_crop_image_moves_pixels_where_the_codec_says() -> None:
    # A single bright pixel must land where encode + norm_to_crop_px maps its centre.
    image = np.zeros((60, 90, 3), np.uint8)
    image[20, 70] = 255
    box = np.array([45.0, 30.0, 90.0, 90.0])  # whole-image square box, scale 1 at S = 90
    crop = codec.crop_image(image, box, 90)
    expected = codec.norm_to_crop_px(codec.encode(np.array([[70.0, 20.0]]), box), 90)[0]
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    np.testing.assert_allclose([x, y], expected, rtol=0, atol=0.51)


def test_round_trip_to_original_pixels_through_the_crop() -> None:
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 200, size=(14, 2))
    box = codec.whole_image_box(width=200, height=150)
    crop_px = codec.norm_to_crop_px(codec.encode(keypoints, box), 220)
    back = codec.decode(codec.crop_px_to_norm(crop_px, 220), box)
    np.testing.assert_allclose(back, keypoints, rtol=0, atol=1e-4)


def test_whole_image_and_torso_boxes() -> None:
    np.testing.assert_allclose(codec.whole_image_box(300, 200), [149.5, 99.5, 300, 300])
    box = codec.torso_box_to_person_box(np.array([100.0, 50.0, 140.0, 150.0]), scale=3.0)
    np.testing.assert_allclose(box, [120.0, 100.0, 300.0, 300.0])


def test_crop_matrix_rejects_empty_box() -> None:
    import pytest

    with pytest.raises(ValueError, match="positive width and height"):
        codec.crop_matrix(np.array([0.0, 0.0, 0.0, 10.0]), 8)
