"""DeepPose stage 1: holistic regression of box-normalised joints (Toshev & Szegedy 2014, §3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lightning_pose.losses import visible_l2_loss
from lightning_pose.models.base import Batch, PoseEstimator


def normalise_image(image: torch.Tensor, backbone: nn.Module) -> torch.Tensor:
    """[0, 1] RGB -> the backbone's input normalisation (its ``mean``/``std`` attributes).

    Shapes:
        image: (B, 3, H, W). returns (B, 3, H, W).
    """
    mean = image.new_tensor(backbone.mean).view(1, 3, 1, 1)
    std = image.new_tensor(backbone.std).view(1, 3, 1, 1)
    return (image - mean) / std


class PoseRegressor(nn.Module):
    """Backbone + linear regression head: image -> box-normalised joints ``psi(x; theta)``.

    DeepPose §3, Eq. 2: ``y* = N^-1(psi(N(x); theta))``; the head outputs 2K numbers.

    Args:
        backbone: maps (B, 3, S, S) to (B, backbone.out_features); has ``mean``/``std``.
        num_joints: K.

    Shapes:
        forward: image (B, 3, S, S) in [0, 1] -> keypoints_norm (B, K, 2).
    """

    def __init__(self, backbone: nn.Module, num_joints: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_joints = num_joints
        self.head = nn.Linear(backbone.out_features, 2 * num_joints)
        nn.init.normal_(self.head.weight, std=1e-3)  # start near the box centre
        nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.backbone(normalise_image(image, self.backbone))  # (B, F)
        return self.head(features).view(-1, self.num_joints, 2)  # (B, K, 2)


class DeepPose(PoseEstimator):
    """DeepPose stage-1 regressor (Toshev & Szegedy, CVPR 2014, §3).

    Trained with the L2 loss on box-normalised coordinates, weighted by visibility (§3, Eq. 3;
    :func:`lightning_pose.losses.visible_l2_loss`).

    Args:
        backbone: feature extractor, e.g. ``AlexNetBackbone`` (the paper's net),
            ``ResNetBackbone`` or ``EfficientNetLite0Backbone``.
        joint_names, optimizer, scheduler, pdj_thresholds, pckh_thresholds: see
            :class:`lightning_pose.models.base.PoseEstimator`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        joint_names: Sequence[str],
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        pdj_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        pckh_thresholds: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__(joint_names, optimizer, scheduler, pdj_thresholds, pckh_thresholds)
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        self.regressor = PoseRegressor(backbone, self.num_joints)

    def predict_keypoints_norm(self, batch: Batch) -> torch.Tensor:
        return self.regressor(batch["image"])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        pred = self.regressor(batch["image"])  # (B, K, 2)
        loss = visible_l2_loss(pred, batch["keypoints_norm"], batch["visible"])
        self.log("train/loss", loss, prog_bar=True, batch_size=pred.shape[0])
        return loss
