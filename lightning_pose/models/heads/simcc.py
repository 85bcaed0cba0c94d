"""The SimCC head: feature maps -> one row of logits over the x bins and one over the y bins per
joint (Li et al. 2022, "SimCC", §3.2; RTMPose, Jiang et al. 2023, §3.2, without its gated
attention unit)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from lightning_pose.models.trunks import Trunk


class SimCCHead(nn.Module):
    """``(B, C, h, w) -> logits_x (B, K, N_x), logits_y (B, K, N_y)``.

    As RTMPose's head: a ``kernel_size`` convolution gives one map per joint, average-pooled to
    a fixed ``feature_grid`` and flattened into a vector per joint (``G_x G_y`` numbers: the
    joint's "keypoint representation", SimCC §3.2), a linear layer to ``hidden_features`` with
    layer normalisation (RTMPose's ScaleNorm plays this part) and SiLU, then two linear
    classifiers, one per axis, shared by every joint. RTMPose's gated attention unit between
    the two is not built.

    Args:
        trunk: the trunk it sits on (read for ``out_channels``).
        num_joints: K.
        num_bins: ``(N_x, N_y)`` (the model passes its codec's).
        feature_grid: ``(G_x, G_y)`` the joint maps are pooled to: the trunk's map size at the
            input size used (5 x 5 for EfficientNet-Lite0 at 160 px), so the pooling is the
            identity there and the head still accepts any input size.
        kernel_size: the joint-map convolution's kernel (RTMPose: 7), odd.
        hidden_features: width of the per-joint hidden layer (RTMPose: 256).
        dropout: dropout probability on the hidden layer in training.

    Shapes:
        features (B, C, h, w) -> (logits_x (B, K, N_x), logits_y (B, K, N_y)).

    Raises:
        ValueError: an even kernel, a bad grid or a dropout outside [0, 1).
    """

    def __init__(
        self,
        trunk: Trunk,
        num_joints: int,
        num_bins: tuple[int, int],
        feature_grid: tuple[int, int] = (5, 5),
        kernel_size: int = 7,
        hidden_features: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SimCC head kernel_size must be odd, got {kernel_size!r}")
        if len(feature_grid) != 2 or not all(int(n) == n and n > 0 for n in feature_grid):
            raise ValueError(f"SimCC head feature_grid must be (G_x, G_y), got {feature_grid!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SimCC head dropout must be in [0, 1), got {dropout!r}")
        gx, gy = int(feature_grid[0]), int(feature_grid[1])
        self.joint_maps = nn.Sequential(
            nn.Conv2d(trunk.out_channels, num_joints, kernel_size, padding=kernel_size // 2),
            nn.AdaptiveAvgPool2d((gy, gx)),
        )
        self.hidden = nn.Sequential(
            nn.Linear(gx * gy, hidden_features),
            nn.LayerNorm(hidden_features),
            nn.SiLU(),
            nn.Dropout(dropout),
        )
        self.classifier_x = nn.Linear(hidden_features, int(num_bins[0]))
        self.classifier_y = nn.Linear(hidden_features, int(num_bins[1]))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        joints = self.joint_maps(features).flatten(2)  # (B, K, G_y * G_x)
        hidden = self.hidden(joints)  # (B, K, hidden)
        return self.classifier_x(hidden), self.classifier_y(hidden)  # (B, K, N_x), (B, K, N_y)


SimCCHeadFactory = Callable[[Trunk, int, tuple[int, int]], SimCCHead]
