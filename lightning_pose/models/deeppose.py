"""DeepPose stage 1: holistic regression of box-normalised joints (Toshev & Szegedy 2014, §3)."""

from __future__ import annotations

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import Batch, Estimate, PoseEstimator
from lightning_pose.models.heads import RegressionHead, RegressionHeadFactory
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.trunks import Trunk


class DeepPose(PoseEstimator):
    """DeepPose stage-1 regressor (Toshev & Szegedy, CVPR 2014, §3): ``trunk`` + ``head``,
    ``y* = N^-1(psi(N(x); theta))`` (§3, Eq. 2), the head giving 2K numbers.

    Trained with the L2 loss on box-normalised coordinates of the labelled joints (§3, Eq. 3;
    :func:`lightning_pose.models.losses.coordinate_l2_loss`), the one term ``regression``. The
    cascade (:class:`~lightning_pose.models.cascade.DeepPoseCascade`) adds refinement stages
    to this model's network; with ``num_stages=1`` it trains this model.

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
            skeleton=skeleton,
            trunk=trunk,
            flip_test=flip_test,
            init_checkpoint=init_checkpoint,
            optimizer=optimizer,
            scheduler=scheduler,
            evaluation=evaluation,
        )
        self.head = head(trunk, self.num_joints)

    def inference_modules(self) -> list[str]:
        """The trunk; the head is a pooling and a few fully connected layers."""
        return ["trunk"]

    def estimate_view(self, batch: Batch) -> Estimate:
        return {"stages": [self.head(self.features(batch["image"]))]}  # (B, K, 2)

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """``regression``: the L2 of the labelled joints, box-normalised (§3, Eq. 3)."""
        pred = self.head(self.features(batch["image"]))  # (B, K, 2)
        return {"regression": coordinate_l2_loss(pred, batch["keypoints_norm"], batch["labelled"])}

    def loss_weights(self) -> dict[str, float]:
        return {"regression": 1.0}
