"""Geometry of the DeepPose cascade (Toshev & Szegedy 2014, §3.2, Eq. 6-8).

All coordinates here are box-normalised in the frame of the stage-1 box (DeepPose §3, Eq. 1):
the stage-1 crop spans [-0.5, 0.5]^2. A stage-s sub-image for joint i is the square

    b_i^s = (y_i^{s-1}, sigma * diam(y^{s-1}))            (Eq. 6: centre, side)

and its network regresses the joint's displacement in that box's own normalised frame; the
refined joint is

    y_i^s = y_i^{s-1} + N^-1(psi_i(N(x; b)); b) - b_c = y_i^{s-1} + side * psi_i   (Eq. 6)

Training boxes (Eq. 7-8) are centred on the true joint plus a displacement drawn from the
previous stage's error distribution, ``delta ~ N(mu_i, Sigma_i)``; errors and displacements are
stored in units of the torso diameter (left shoulder to right hip) so that they transfer between
people of different size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightning_pose.metrics.functional import keypoint_distances


def torso_diameter(keypoints: torch.Tensor, torso: tuple[int, int]) -> torch.Tensor:
    """``diam(y)``: distance between the torso joints (left shoulder, right hip) of an estimate,
    all joints taken as present (for labels with visibility use ``metrics.segment_lengths``).

    Shapes:
        keypoints: (B, K, 2). returns (B,).
    """
    return keypoint_distances(keypoints[:, torso[0]], keypoints[:, torso[1]])


def joint_boxes(centres: torch.Tensor, diam: torch.Tensor, sigma: float) -> torch.Tensor:
    """Square sub-image boxes ``(cx, cy, side, side)``, side ``sigma * diam`` (Eq. 6).

    Shapes:
        centres: (B, M, 2) box-normalised. diam: (B,). returns (B, M, 4).
    """
    side = (sigma * diam)[:, None, None].expand(*centres.shape[:2], 1)  # (B, M, 1)
    return torch.cat([centres, side, side], dim=-1)


def crop_windows(image: torch.Tensor, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """Resample each box of each image to ``output_size`` squared (bilinear ``grid_sample``).

    The image is the stage-1 view at any resolution: box-normalised (-0.5, -0.5) is its
    top-left corner, (0.5, 0.5) its bottom-right. Output pixel j samples the box at
    ``(j + 0.5) / output_size - 0.5`` of its side (the codec's pixel-centre convention). Parts
    of a box outside the image read as 0 (black), like the stage-1 crop's padding, so a box at
    the border keeps its geometry: it is neither shifted nor shrunk.

    Shapes:
        image: (B, 3, H, W). boxes: (B, M, 4) ``(cx, cy, w, h)`` box-normalised.
        returns (B * M, 3, output_size, output_size), image-major (b * M + m).
    """
    B, M, _ = boxes.shape
    S = output_size
    u = (torch.arange(S, device=boxes.device, dtype=boxes.dtype) + 0.5) / S - 0.5  # (S,)
    x = boxes[..., 0, None] + u * boxes[..., 2, None]  # (B, M, S)
    y = boxes[..., 1, None] + u * boxes[..., 3, None]  # (B, M, S)
    # grid_sample(align_corners=False) has the image edges at -1 and 1: grid = 2 * normalised.
    grid = torch.stack(
        [2 * x[:, :, None, :].expand(B, M, S, S), 2 * y[:, :, :, None].expand(B, M, S, S)], -1
    )  # (B, M, S, S, 2): (x, y) of output pixel (row, col) of crop m
    out = F.grid_sample(
        image,
        grid.reshape(B, M * S, S, 2).to(image.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # (B, 3, M*S, S): the M crops stacked vertically, the image is not copied
    return out.view(B, -1, M, S, S).transpose(1, 2).reshape(B * M, -1, S, S)


def refine(previous: torch.Tensor, displacement: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """``y^s = y^{s-1} + side * psi``: de-normalise a displacement predicted in a sub-image.

    Shapes:
        previous, displacement: (B, M, 2). side: (B, M) or (B, 1). returns (B, M, 2).
    """
    return previous + displacement * side[..., None]


def displacement_target(joints: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The true joint in its sub-image's normalised frame, ``N(y_i; b)`` (Eq. 8 target).

    Shapes:
        joints: (B, M, 2). boxes: (B, M, 4). returns (B, M, 2).
    """
    return (joints - boxes[..., :2]) / boxes[..., 2:]


def error_statistics(
    errors: torch.Tensor, valid: torch.Tensor, min_count: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-joint mean and covariance of a stage's errors ``(y^s_i - y_i) / diam(y)``.

    Joints with fewer than ``min_count`` valid errors get mean 0 and covariance 0.01 * I (a
    displacement of about a tenth of the torso diameter), stated rather than NaN.

    Shapes:
        errors: (N, K, 2) in torso diameters. valid: (N, K) bool.
        returns mean (K, 2), covariance (K, 2, 2).
    """
    K = errors.shape[1]
    mean = errors.new_zeros(K, 2)
    cov = errors.new_zeros(K, 2, 2) + 0.01 * torch.eye(2, dtype=errors.dtype)
    for k in range(K):
        e = errors[valid[:, k], k]  # (n, 2)
        if e.shape[0] >= min_count:
            mean[k] = e.mean(0)
            cov[k] = torch.cov(e.T)
    return mean, cov


def sample_displacements(
    mean: torch.Tensor,
    cov: torch.Tensor,
    joints: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``delta ~ N(mu_j, Sigma_j)`` for each requested joint j (Eq. 7), in torso diameters.

    Shapes:
        mean: (K, 2). cov: (K, 2, 2). joints: (...,) long. returns (..., 2).
    """
    # A square root of Sigma that also exists when Sigma is only semi-definite (few samples).
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # (K, 2), (K, 2, 2)
    root = eigenvectors * eigenvalues.clamp(min=0).sqrt()[..., None, :]  # (K, 2, 2)
    z = torch.randn((*joints.shape, 2), generator=generator, dtype=mean.dtype)
    return mean[joints] + (root[joints] @ z.to(mean.device)[..., None])[..., 0]
