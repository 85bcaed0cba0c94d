"""Training augmentation with albumentations, applied to the box crop.

Two traps of albumentations are handled here:
    * keypoints that leave the image are kept (``remove_invisible=False``) and marked not
      visible by :func:`inside_crop`, so joint indices never shift;
    * ``HorizontalFlip`` mirrors coordinates but does not swap left and right joints: after a
      flip the keypoint array is permuted with the skeleton's flip pairs.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def build_augmentation(
    scale: float = 0.25,
    rotation_deg: float = 30.0,
    translate: float = 0.1,
    flip_prob: float = 0.5,
    color_jitter: float = 0.2,
) -> A.Compose:
    """Scale, rotation, translation, horizontal flip and colour jitter on an (S, S) crop.

    Args:
        scale: zoom factor drawn from [1 - scale, 1 + scale].
        rotation_deg: rotation drawn from [-rotation_deg, rotation_deg] degrees.
        translate: shift drawn from [-translate, translate] x crop size, per axis.
        flip_prob: probability of a horizontal flip (left/right joints swapped by
            :func:`augment`).
        color_jitter: brightness, contrast and saturation jitter strength (hue: a tenth of it).

    Raises:
        ValueError: a value out of range, naming the argument.
    """
    for name, value, upper in (
        ("scale", scale, 1.0),
        ("translate", translate, 1.0),
        ("flip_prob", flip_prob, 1.0),
        ("color_jitter", color_jitter, 1.0),
        ("rotation_deg", rotation_deg, 180.0),
    ):
        if not 0.0 <= value <= upper:
            raise ValueError(f"augmentation `{name}` must be in [0, {upper}], got {value}")
    transforms: list[A.BasicTransform] = [
        A.Affine(
            scale=(1.0 - scale, 1.0 + scale),
            rotate=(-rotation_deg, rotation_deg),
            translate_percent=(-translate, translate),
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            p=1.0,
        ),
        A.HorizontalFlip(p=flip_prob),
    ]
    if color_jitter > 0:
        transforms.append(
            A.ColorJitter(
                brightness=color_jitter,
                contrast=color_jitter,
                saturation=color_jitter,
                hue=color_jitter / 10,
                p=0.8,
            )
        )
    return A.Compose(
        transforms,
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        save_applied_params=True,
    )


def augment(
    pipeline: A.Compose,
    image: np.ndarray,
    keypoints_px: np.ndarray,
    labelled: np.ndarray,
    visible: np.ndarray,
    flip_permutation: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``pipeline`` to a crop and its joints; swap left/right joints after a flip.

    Shapes:
        image: (S, S, 3) uint8. keypoints_px: (K, 2) crop pixels. labelled, visible: (K,) bool.
        returns image (S, S, 3) uint8, keypoints_px (K, 2) float32 crop pixels, labelled (K,)
        bool (the truth is still known where a joint leaves the crop) and visible (K,) bool
        (also False for joints pushed out of the crop).
    """
    out = pipeline(image=image, keypoints=keypoints_px.astype(np.float32))
    keypoints = np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 2)  # (K, 2)
    labelled, visible = labelled.copy(), visible.copy()
    if any(name == "HorizontalFlip" for name, _ in out["applied_transforms"]):
        keypoints = keypoints[flip_permutation]
        labelled = labelled[flip_permutation]
        visible = visible[flip_permutation]
    visible &= inside_crop(keypoints, image.shape[1], image.shape[0])
    return out["image"], keypoints, labelled, visible


def inside_crop(keypoints_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """Whether each keypoint lies inside the image ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.

    Shapes:
        keypoints_px: (K, 2) pixels. returns (K,) bool.
    """
    x, y = keypoints_px[:, 0], keypoints_px[:, 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
