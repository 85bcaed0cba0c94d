"""SimCC: each coordinate of a joint as a class among bins laid along one axis of the box (Li,
Zhang, Xing, Jiang, Xu, Wang, Xia, "SimCC: a Simple Coordinate Classification Perspective for
Human Pose Estimation", ECCV 2022, §3; the head of RTMPose, Jiang et al. 2023, §3.2).

The x axis of the box is cut into ``N_x`` bins and the y axis into ``N_y`` (SimCC's splitting
factor k: ``N = k S`` bins for an S-pixel input, k = 2 in RTMPose, so a bin is half an input
pixel). Bins are a grid over the box (:mod:`~lightning_pose.codecs.grid`): bin j's centre is at
box-normalised ``(j + 0.5) / N - 0.5``, and a box-normalised coordinate n sits at bin coordinate
``g = (n + 0.5) N - 0.5``.

Encoding (SimCC §3.3, Gaussian label smoothing): the target of each axis is a Gaussian of
standard deviation ``sigma`` bins centred on the exact bin coordinate g, normalised to sum 1, a
distribution over the bins that the network's softmax is trained to match with the KL
divergence (:func:`~lightning_pose.models.losses.simcc_kl_loss`). A joint whose g lies outside
the bins on either axis (outside the box) gets weight 0, as MMPose's ``SimCCLabel`` does.

Decoding (SimCC §3.2): the arg-max bin of each axis, at its centre (half an input pixel at
k = 2, so no sub-bin step is needed); the score is the smaller of the two axes' peak softmax
probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pose.codecs.grid import grid_to_norm, norm_to_grid


class SimCCCodec:
    """Keypoints <-> one distribution over bins per axis (SimCC, Li et al. 2022 §3).

    Args:
        num_bins: ``(N_x, N_y)`` bins along the box's x and y axes (an int: both).
        sigma: standard deviation of the Gaussian label, in bins.

    Raises:
        ValueError: fewer than 2 bins on an axis, or ``sigma <= 0``.
    """

    def __init__(self, num_bins: int | tuple[int, int], sigma: float) -> None:
        bins = (num_bins, num_bins) if isinstance(num_bins, int) else tuple(num_bins)
        if len(bins) != 2 or not all(int(n) == n and n >= 2 for n in bins):
            raise ValueError(f"SimCC num_bins must be (N_x, N_y) ints >= 2, got {num_bins!r}")
        if not sigma > 0:
            raise ValueError(f"SimCC sigma must be > 0 bins, got {sigma!r}")
        self.num_bins = (int(bins[0]), int(bins[1]))
        self.sigma = float(sigma)

    def encode(self, keypoints_norm: Tensor, labelled: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Gaussian labels over the bins of each axis, and the joints' weights.

        Shapes:
            keypoints_norm: (B, K, 2) box-normalised (x, y). labelled: (B, K) bool.
            returns target_x (B, K, N_x) and target_y (B, K, N_y), each summing to 1 where the
            weight is 1 (zeros elsewhere), and weight (B, K) float: labelled and inside the bins.
        """
        targets, inside = [], labelled.bool()
        for axis, n in enumerate(self.num_bins):
            g = norm_to_grid(keypoints_norm[..., axis].float(), n)  # (B, K) bin coordinates
            inside = inside & (g >= -0.5) & (g <= n - 0.5)
            bins = torch.arange(n, device=g.device, dtype=torch.float32)  # (N,)
            gauss = torch.exp(-((bins - g.unsqueeze(-1)) ** 2) / (2 * self.sigma**2))  # (B, K, N)
            targets.append(gauss)
        weight = inside.float()
        target_x, target_y = (
            t / t.sum(-1, keepdim=True).clamp_min(1e-12) * weight.unsqueeze(-1) for t in targets
        )
        return target_x, target_y, weight

    def decode(self, logits_x: Tensor, logits_y: Tensor) -> tuple[Tensor, Tensor]:
        """Arg-max bin of each axis -> box-normalised keypoints, and scores.

        Computed in float32 whatever the logits' dtype.

        Shapes:
            logits_x: (B, K, N_x); logits_y: (B, K, N_y).
            returns keypoints_norm (B, K, 2) (x, y) and scores (B, K) in (0, 1].

        Raises:
            ValueError: logits whose bins are not this codec's.
        """
        if logits_x.shape[-1] != self.num_bins[0] or logits_y.shape[-1] != self.num_bins[1]:
            raise ValueError(
                f"SimCC decode: expected {self.num_bins[0]} x bins and {self.num_bins[1]} y "
                f"bins, got logits {tuple(logits_x.shape)} and {tuple(logits_y.shape)}"
            )
        coords, peaks = [], []
        for logits, n in ((logits_x, self.num_bins[0]), (logits_y, self.num_bins[1])):
            prob = logits.float().softmax(dim=-1)  # (B, K, N)
            peak, index = prob.max(dim=-1)  # (B, K) each
            coords.append(grid_to_norm(index.float(), n))
            peaks.append(peak)
        return torch.stack(coords, dim=-1), torch.minimum(*peaks)
