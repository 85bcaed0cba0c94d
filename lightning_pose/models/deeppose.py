"""DeepPose stage 1: holistic regression of box-normalised joints (Toshev & Szegedy 2014, §3)."""

from __future__ import annotations

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import NOT_HPARAMS, Batch, Estimate, PoseEstimator
from lightning_pose.models.heads import RegressionHead, RegressionHeadFactory
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.trunks import Trunk


class PoseRegressor(nn.Module):
    """Trunk + regression head: image -> box-normalised joints ``psi(x; theta)``; a stage
    s >= 2 of the cascade (stage 1 is the estimator's own ``trunk`` and ``head``).

    DeepPose §3, Eq. 2: ``y* = N^-1(psi(N(x); theta))``; the head outputs 2K numbers.

    Args:
        trunk: image -> feature maps (``Trunk``), with its input normalisation.
        num_joints: K.
        head: ``(trunk, num_joints) -> head``; default a global-average-pooling
            :class:`~lightning_pose.models.heads.RegressionHead`.

    Shapes:
        forward: image (B, 3, S, S) in [0, 1] -> keypoints_norm (B, K, 2).
    """

    def __init__(
        self, trunk: Trunk, num_joints: int, head: RegressionHeadFactory = RegressionHead
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head(trunk, num_joints)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.trunk(self.trunk.normalise(image))  # (B, C, h, w)
        return self.head(features)  # (B, K, 2)


class DeepPose(PoseEstimator):
    """DeepPose stage-1 regressor (Toshev & Szegedy, CVPR 2014, §3): ``trunk`` + ``head``.

    Trained with the L2 loss on box-normalised coordinates of the labelled joints (§3, Eq. 3;
    :func:`lightning_pose.models.losses.coordinate_l2_loss`). The cascade
    (:class:`~lightning_pose.models.cascade.DeepPoseCascade`) is this model plus refinement
    stages; with ``num_stages=1`` it is this model.

    Args:
        trunk: e.g. ``AlexNetTrunk`` (the paper's net, with
            ``RegressionHead(pooling="flatten", hidden_features=[4096, 4096], dropout=0.5)``),
            ``ResNetTrunk`` or ``EfficientNetLite0Trunk``.
        skeleton, flip_test, init_checkpoint (the trunk's weights), optimizer, scheduler,
            evaluation: see :class:`PoseEstimator`.
        head: the regression head factory ``(trunk, num_joints) -> head``.

    Shapes:
        estimate: batch["image"] (B, 3, S, S) in [0, 1] -> one stage (B, K, 2) box-normalised.
    """

    def __init__(
        self,
        trunk: Trunk,
        skeleton: Skeleton,
        head: RegressionHeadFactory = RegressionHead,
        flip_test: bool = False,
        init_checkpoint: str | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        evaluation: EvaluationProtocol | None = None,
    ) -> None:
        super().__init__(
            skeleton, 1, optimizer, scheduler, evaluation, trunk, flip_test, init_checkpoint
        )
        self.save_hyperparameters(ignore=list(NOT_HPARAMS))
        self.head = head(trunk, self.num_joints)

    def regress(self, image: torch.Tensor) -> torch.Tensor:
        """Stage 1: ``image (B, 3, S, S)`` in [0, 1] -> ``keypoints_norm (B, K, 2)``."""
        features = self.trunk(self.trunk.normalise(image))  # (B, C, h, w)
        return self.head(features)  # (B, K, 2)

    def inference_modules(self) -> list[str]:
        """The trunk; the head is a pooling and a few fully connected layers."""
        return ["trunk"]

    def estimate_view(self, batch: Batch) -> Estimate:
        return {"stages": [self.regress(batch["image"])]}

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        pred = self.regress(batch["image"])  # (B, K, 2)
        loss = coordinate_l2_loss(pred, batch["keypoints_norm"], batch["labelled"])
        self.log("train/loss", loss, prog_bar=True, batch_size=pred.shape[0])
        return loss
