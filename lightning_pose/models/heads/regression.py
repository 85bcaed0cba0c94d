"""The regression head: feature maps -> box-normalised joint coordinates, DeepPose's
``psi(x; theta)`` (Toshev & Szegedy 2014, §3, Eq. 2): pooling (global average, or the flatten of
the paper's fully connected layers), optional hidden ``F`` layers, and a linear layer with
``coordinate_dim x K`` outputs.

A model builds its head from the trunk, so the head's sizes never repeat the trunk's in a
config: the model's ``head`` argument is a callable ``(trunk, num_joints) -> head`` (a class,
or in a config a ``class_path`` with the remaining ``init_args``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from torch import Tensor, nn

from lightning_pose.models.trunks import Trunk


class RegressionHead(nn.Module):
    """Pool + (hidden ``F`` layers) + linear: ``(B, C, h, w) -> (B, K, coordinate_dim)``.

    ``pooling="avg"``: global average pooling (for ResNet/EfficientNet trunks);
    ``pooling="flatten"``: the whole map flattened, as DeepPose's first fully connected layer
    reads AlexNet's ``pool5`` (needs a trunk with a fixed ``input_size``). Each hidden layer is
    ``Linear - ReLU - Dropout(dropout)`` (DeepPose §3: ``F(4096) - F(4096)`` with dropout);
    without hidden layers dropout acts on the pooled features. The last layer starts near zero
    (weights ~ N(0, 1e-3), bias 0), i.e. every joint at the box centre.

    Args:
        trunk: the trunk it sits on (read for ``out_channels`` and, for flatten, its map size).
        num_joints: K.
        pooling: ``"avg"`` or ``"flatten"``.
        hidden_features: widths of the hidden fully connected layers.
        dropout: dropout probability in training.
        coordinate_dim: 2 for (x, y); a parameter so that a 3D variant (Li & Chan's
            Human3.6M setting) needs no new head.

    Shapes:
        features (B, C, h, w) -> keypoints_norm (B, K, coordinate_dim).

    Raises:
        ValueError: an unknown pooling, a dropout outside [0, 1), or flatten on a trunk
            without a fixed ``input_size``.
    """

    def __init__(
        self,
        trunk: Trunk,
        num_joints: int,
        pooling: Literal["avg", "flatten"] = "avg",
        hidden_features: Sequence[int] = (),
        dropout: float = 0.0,
        coordinate_dim: int = 2,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"head dropout must be in [0, 1), got {dropout!r}")
        if pooling == "avg":
            layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            width = trunk.out_channels
        elif pooling == "flatten":
            if trunk.input_size is None:
                raise ValueError(
                    f"head pooling='flatten' needs a trunk with a fixed input_size; "
                    f"{type(trunk).__name__} accepts any size: use pooling='avg'"
                )
            h, w = trunk.feature_size(trunk.input_size)
            layers, width = [nn.Flatten()], trunk.out_channels * h * w
        else:
            raise ValueError(f"head pooling must be 'avg' or 'flatten', got {pooling!r}")
        for features in hidden_features:
            layers += [nn.Linear(width, features), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = features
        if not hidden_features:
            layers.append(nn.Dropout(dropout))
        self.pool = nn.Sequential(*layers)
        self.num_joints = num_joints
        self.coordinate_dim = coordinate_dim
        self.linear = nn.Linear(width, coordinate_dim * num_joints)
        nn.init.normal_(self.linear.weight, std=1e-3)  # start near the box centre
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: Tensor) -> Tensor:
        out = self.linear(self.pool(features))  # (B, K * coordinate_dim)
        return out.view(-1, self.num_joints, self.coordinate_dim)  # (B, K, coordinate_dim)


RegressionHeadFactory = Callable[[Trunk, int], RegressionHead]
