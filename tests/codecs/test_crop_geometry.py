"""Crop geometry to a tenth of a pixel: every pixel of a cropped linear ramp equals the ramp at
the original-image position the codec decodes for it, and a one-pixel mark at a labelled joint
peaks, sub-pixel, at the training sample's keypoint (with and without augmentation).

A half-pixel misalignment between an image and its labels costs accuracy silently; each test
here fails when the crop is shifted by a quarter of a pixel. OpenCV's ``warpAffine`` samples
at positions rounded to 1/32 of a source pixel (``INTER_BITS = 5``): the ramp boxes below
put every sample on that grid, so the ramp is exact; an arbitrary box is off by at most 1/64
source pixel (checked too).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lightning_pose.codecs.box import decode, whole_image_box
from lightning_pose.codecs.crop import crop_image
from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid
from lightning_pose.data.annotations import PoseAnnotations
from lightning_pose.data.dataset import PoseDataset
from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.data.transforms import build_augmentation

W, H = 90, 60  # a non-square original image


def ramp_image() -> np.ndarray:
    """(H, W, 3) float32: channel 0 = x, channel 1 = y, channel 2 = x + 2 y (pixel centres)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([x, y, x + 2 * y], axis=-1)


def bilinear_zero_padded(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) sampled bilinearly at (x, y) pixel positions, 0 outside the pixel
    centres' grid (the crop's black border). Returns (..., C) float64."""
    padded = np.pad(image.astype(np.float64), ((2, 2), (2, 2), (0, 0)))  # zeros around
    px, py = np.clip(x + 2, 0, W + 2.999), np.clip(y + 2, 0, H + 2.999)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    return (
        padded[y0, x0] * (1 - fx) * (1 - fy)
        + padded[y0, x0 + 1] * fx * (1 - fy)
        + padded[y0 + 1, x0] * (1 - fx) * fy
        + padded[y0 + 1, x0 + 1] * fx * fy
    )


def decoded_positions(box: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The original-image (x, y) of every crop pixel, as the codec decodes it: crop pixel ->
    box-normalised (``grid_to_norm``) -> original pixels (``decode``). Returns (S, S) each."""
    q = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), -1)  # (S, S, 2)
    points = decode(grid_to_norm(q.reshape(-1, 2).astype(np.float64), size), box)
    points = points.reshape(size, size, 2)
    return points[..., 0], points[..., 1]


BOXES = {
    # the whole image padded to a square (DeepPose stage 1): crop pixel = image pixel, 15 rows
    # of black border above and below
    "whole-image": (whole_image_box(W, H).astype(np.float64), 90),
    # scale 2: each image pixel spans two crop pixels; samples on half pixels
    "scale-2": (np.array([40.25, 27.75, 45.0, 45.0]), 90),
    # non-square box, scale 1 in x and 2 in y, reaching past the right edge
    "non-square": (np.array([70.0, 30.0, 60.0, 30.0]), 60),
    # scale 1/2 (the usual case: a large image shrunk to the network input)
    "scale-half": (np.array([44.5, 29.5, 64.0, 64.0]), 32),
}


@pytest.mark.parametrize("name", sorted(BOXES))
def test_every_crop_pixel_is_the_ramp_at_the_decoded_position(name: str) -> None:
    box, size = BOXES[name]
    crop = crop_image(ramp_image(), box, size)  # (S, S, 3) float32
    x, y = decoded_positions(box, size)
    expected = bilinear_zero_padded(ramp_image(), x, y)  # (S, S, 3)
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    assert inside.any() and (name != "whole-image" or (~inside).any())  # both are checked
    np.testing.assert_allclose(crop, expected, rtol=0, atol=1e-3)
    np.testing.assert_allclose(crop[..., 0][inside], x[inside], rtol=0, atol=1e-3)
    np.testing.assert_allclose(crop[..., 1][inside], y[inside], rtol=0, atol=1e-3)


def test_the_uint8_crop_of_a_ramp_is_exact_for_the_whole_image_box() -> None:
    """The pipeline's dtype: a uint8 ramp (2 x column, 3 x row) through the whole-image box at
    scale 1 lands on integer pixels, so every value is exact."""
    y, x = np.mgrid[0:H, 0:W]
    image = np.stack([2 * x, 3 * y, np.full_like(x, 7)], axis=-1).astype(np.uint8)
    box, size = BOXES["whole-image"]
    crop = crop_image(image, box, size)
    qx, qy = decoded_positions(box, size)
    expected = bilinear_zero_padded(image, qx, qy)
    np.testing.assert_allclose(crop.astype(np.float64), expected, rtol=0, atol=1e-3)


def test_an_off_grid_box_is_within_opencvs_sub_pixel_precision() -> None:
    """A box whose samples fall between OpenCV's 1/32-pixel steps: every interior crop value
    is within 1/64 source pixel (+ float rounding) of the decoded position, never a quarter
    pixel off."""
    box, size = np.array([41.3, 28.7, 37.1, 23.9]), 71
    crop = crop_image(ramp_image(), box, size)
    x, y = decoded_positions(box, size)
    inside = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1)
    assert inside.all()
    np.testing.assert_allclose(crop[..., 0], x, rtol=0, atol=1 / 64 + 1e-4)
    np.testing.assert_allclose(crop[..., 1], y, rtol=0, atol=1 / 64 + 1e-4)


# --- a one-pixel mark at a labelled joint -> the training sample ------------------------------
MARKED = LSP_SKELETON.joints.index("left_wrist")
MARK_PX = (30, 22)  # (x, y) integer pixel of the mark and the joint's label
CROP = 64
BOX = np.array([31.0, 24.0, 16.0, 16.0], np.float32)  # scale 4: the mark spans ~9 crop pixels


def marked_annotations(tmp_path: Path) -> PoseAnnotations:
    """One 64 x 48 black PNG (lossless) with a white pixel at the left wrist's label; the other
    13 joints labelled along a row 18 pixels below, at least 4 pixels apart."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[MARK_PX[1], MARK_PX[0]] = 255
    path = tmp_path / "marked.png"
    cv2.imwrite(str(path), image)
    keypoints = np.stack([4.0 * np.arange(14) + 5, np.full(14, 40.0)], -1)  # (K, 2)
    keypoints[MARKED] = MARK_PX
    return PoseAnnotations(
        skeleton=LSP_SKELETON,
        image_paths=[path],
        keypoints_px=keypoints[None].astype(np.float32),
        labelled=np.ones((1, 14), bool),
        visible=np.ones((1, 14), bool),
        box_px=BOX[None],
    )


def peak(channel: np.ndarray, radius: int = 12) -> np.ndarray:
    """Sub-pixel peak (x, y) of a single blob: the intensity centroid in a (2r+1)^2 window
    around its brightest pixel (exact for a bilinearly resampled point at an integer scale)."""
    y, x = np.unravel_index(channel.argmax(), channel.shape)
    y0, x0 = max(y - radius, 0), max(x - radius, 0)
    window = channel[y0 : y + radius + 1, x0 : x + radius + 1].astype(np.float64)
    ys, xs = np.mgrid[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]]
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


def test_the_mark_peaks_at_the_samples_keypoint_without_augmentation(tmp_path: Path) -> None:
    sample = PoseDataset(marked_annotations(tmp_path), np.array([0]), CROP)[0]
    keypoint = norm_to_grid(sample["keypoints_norm"][MARKED].double().numpy(), CROP)
    # by hand: (30 - 31) x 4 + 31.5 = 27.5, (22 - 24) x 4 + 31.5 = 23.5
    np.testing.assert_allclose(keypoint, [27.5, 23.5], rtol=0, atol=1e-5)
    np.testing.assert_allclose(peak(sample["image"][0].numpy()), keypoint, rtol=0, atol=0.05)


def test_the_mark_peaks_at_the_samples_keypoint_with_augmentation(tmp_path: Path) -> None:
    """50 draws of the training augmentation (scale, rotation, translation, flip; colour
    jitter off: it moves no pixel but lifts the black background, which biases a centroid).
    After a flip the mark is the right wrist's label, so the peak is matched to the nearest
    keypoint, which must be the wrist's or its flip partner's, within 0.05 crop pixels."""
    augmentation = build_augmentation(color_jitter=0.0)
    dataset = PoseDataset(marked_annotations(tmp_path), np.array([0]), CROP, augmentation)
    partner = LSP_SKELETON.flip_permutation()[MARKED]
    seen = set()
    for seed in range(50):
        augmentation.set_random_seed(seed)
        sample = dataset[0]
        keypoints = norm_to_grid(sample["keypoints_norm"].double().numpy(), CROP)  # (K, 2)
        found = peak(sample["image"][0].numpy())
        distances = np.linalg.norm(keypoints - found, axis=-1)
        joint = int(distances.argmin())
        assert joint in (MARKED, partner), f"draw {seed}: peak nearest {LSP_SKELETON.joints[joint]}"
        assert distances[joint] <= 0.05, f"draw {seed}: peak {found}, keypoint {keypoints[joint]}"
        seen.add(joint)
    assert seen == {MARKED, partner}  # flipped and unflipped draws both checked
