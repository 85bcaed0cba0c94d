"""Error statistics of a DeepPose stage, and the training displacements drawn from them
(Toshev & Szegedy 2014, §3.2, Eq. 7-8).

Stage s trains on sub-images centred on the true joint plus a displacement drawn from stage
s-1's per-joint error distribution, ``delta ~ N(mu_i, Sigma_i)``; errors and displacements are
in units of the torso diameter (left shoulder to right hip) so that they transfer between
people of different size. The sub-image geometry itself (Eq. 6) is the box codec's
(:mod:`lightning_pose.codecs.box`: ``square_boxes``, ``encode_in_boxes``, ``decode_in_boxes``).
"""

from __future__ import annotations

import torch


def error_statistics(
    errors: torch.Tensor, valid: torch.Tensor, min_count: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-joint mean and covariance of a stage's errors ``(y^s_i - y_i) / diam(y)``.

    Joints with fewer than ``min_count`` valid errors get mean 0 and covariance 0.01 * I (a
    displacement of about a tenth of the torso diameter), stated rather than NaN.

    Shapes:
        errors: (N, K, 2) in torso diameters. valid: (N, K) bool.
        returns mean (K, 2), covariance (K, 2, 2) (unbiased, as ``torch.cov``), on the
        errors' device.
    """
    w = valid[..., None].to(errors.dtype)  # (N, K, 1)
    e = torch.where(valid[..., None], errors, torch.zeros_like(errors))  # no NaN of an invalid
    n = w.sum(0)  # (K, 1)
    mean = (w * e).sum(0) / n.clamp(min=1)  # (K, 2)
    d = (e - mean) * w  # (N, K, 2), 0 where invalid
    cov = torch.einsum("nki,nkj->kij", d, d) / (n[..., None] - 1).clamp(min=1)  # (K, 2, 2)
    enough = n[:, 0] >= min_count  # (K,)
    default = 0.01 * torch.eye(2, dtype=errors.dtype, device=errors.device)
    mean = torch.where(enough[:, None], mean, torch.zeros_like(mean))
    cov = torch.where(enough[:, None, None], cov, default)
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
