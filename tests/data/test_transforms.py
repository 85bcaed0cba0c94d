"""Augmentation: known answers for the flip swap and for joints pushed out of the frame."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.data.transforms import augment, build_augmentation, inside_crop

FLIP_ONLY = A.Compose(
    [A.HorizontalFlip(p=1.0)],
    keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    save_applied_params=True,
)


def test_flip_of_3x3_image_swaps_left_and_right_joints() -> None:
    image = np.zeros((3, 3, 3), np.uint8)
    image[1, 0] = 255  # a mark in the left column
    # joint 0 = "left" at column 0, joint 1 = "right" at column 2, joint 2 = centre
    keypoints = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]], np.float32)
    visible = np.array([True, False, True])
    labelled = np.array([False, True, True])
    out_image, out_kp, out_lab, out_vis = augment(
        FLIP_ONLY, image, keypoints, labelled, visible, [1, 0, 2]
    )
    assert out_image[1, 2].tolist() == [255, 255, 255] and out_image[1, 0].sum() == 0
    # mirrored x' = (W - 1) - x, then left/right swapped: the left joint is again at column 0
    np.testing.assert_allclose(out_kp, [[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out_vis, [False, True, True])  # visibility swapped too
    np.testing.assert_array_equal(out_lab, [True, False, True])  # and the labels


def test_lsp_flip_permutation_swaps_named_joints() -> None:
    perm = LSP_SKELETON.flip_permutation()
    for i, j in enumerate(perm):
        a, b = LSP_SKELETON.joints[i], LSP_SKELETON.joints[j]
        assert a.replace("left", "X").replace("right", "left").replace("X", "right") == b


def test_joint_shifted_out_of_frame_is_not_visible_but_still_labelled() -> None:
    shift = A.Compose(
        [A.Affine(translate_px={"x": 5, "y": 0}, p=1.0)],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        save_applied_params=True,
    )
    image = np.zeros((8, 8, 3), np.uint8)
    keypoints = np.array([[1.0, 2.0], [6.0, 3.0]], np.float32)
    both = np.array([True, True])
    _, out_kp, out_lab, out_vis = augment(shift, image, keypoints, both, both, [0, 1])
    assert out_kp.shape == (2, 2)  # nothing dropped
    np.testing.assert_allclose(out_kp, [[6.0, 2.0], [11.0, 3.0]], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(out_vis, [True, False])
    np.testing.assert_array_equal(out_lab, [True, True])  # its position is still known


def test_inside_crop_edges() -> None:
    kp = np.array([[-0.5, 0.0], [-0.51, 0.0], [7.5, 7.5], [7.51, 0.0]])
    np.testing.assert_array_equal(inside_crop(kp, 8, 8), [True, False, True, False])


def test_random_pipeline_keeps_all_joints_and_swaps_on_flip() -> None:
    rng = np.random.default_rng(0)
    pipeline = build_augmentation(scale=0.0, rotation_deg=0.0, translate=0.0, flip_prob=0.5)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    keypoints = rng.uniform(0, 31, size=(14, 2)).astype(np.float32)
    flips = 0
    for _ in range(20):
        flags = np.ones(14, bool)
        _, out_kp, _, _ = augment(
            pipeline, image, keypoints, flags, flags, LSP_SKELETON.flip_permutation()
        )
        assert out_kp.shape == (14, 2)
        if not np.allclose(out_kp, keypoints, atol=1e-4):
            flips += 1
            mirrored = keypoints.copy()
            mirrored[:, 0] = 31 - mirrored[:, 0]
            np.testing.assert_allclose(
                out_kp, mirrored[LSP_SKELETON.flip_permutation()], atol=1e-4, rtol=0
            )
    assert 0 < flips < 20


@pytest.mark.parametrize("name", ["scale", "translate", "flip_prob", "color_jitter"])
def test_augmentation_value_out_of_range(name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}` must be in"):
        build_augmentation(**{name: 1.5})
