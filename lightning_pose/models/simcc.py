"""SimCC: coordinate classification on a trunk (Li et al., "SimCC: a Simple Coordinate
Classification Perspective for Human Pose Estimation", ECCV 2022; the head RTMPose uses, Jiang
et al. 2023): a slope lever beside heat-maps and integral regression, on the same trunk and
training recipe (``conf/model/simcc_budget.yaml``; measured in ``docs/RESULTS.md``, "Levers").

Each joint's x and y are classified among bins along the box's axes
(:class:`~lightning_pose.codecs.simcc.SimCCCodec`), trained with the KL divergence to
Gaussian-smoothed labels (:func:`~lightning_pose.models.losses.simcc_kl_loss`) and decoded by
the arg-max bin: no heat-map upsampling and no quantisation to a heat-map cell.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lightning_pose.codecs.simcc import SimCCCodec
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import Batch, Estimate, PoseEstimator
from lightning_pose.models.heads.simcc import SimCCHead, SimCCHeadFactory
from lightning_pose.models.losses import simcc_kl_loss
from lightning_pose.models.trunks import Trunk


class SimCCPose(PoseEstimator):
    """Trunk + :class:`~lightning_pose.models.heads.simcc.SimCCHead`, one stage.

    Args:
        trunk: a trunk whose last map the head reads, e.g. ``EfficientNetLite0Trunk``.
        skeleton, flip_test, init_checkpoint (the trunk's weights), optimizer, scheduler,
            evaluation: see :class:`PoseEstimator`.
        head: the head factory ``(trunk, num_joints, num_bins) -> SimCCHead``.
        num_bins: ``(N_x, N_y)`` bins along the box's axes: SimCC's splitting factor k times
            the input size (k = 2: 320 for a 160-px input).
        sigma: the Gaussian label's standard deviation, in bins.

    Shapes:
        estimate: batch["image"] (B, 3, S, S) in [0, 1] -> one stage (B, K, 2) box-normalised
        and ``scores`` (B, K).

    Raises:
        ValueError: bad ``num_bins`` or ``sigma`` (:class:`SimCCCodec`).
    """

    prediction_keys: ClassVar[tuple[str, ...]] = ("scores",)

    def __init__(
        self,
        trunk: Trunk,
        skeleton: Skeleton,
        head: SimCCHeadFactory = SimCCHead,
        num_bins: tuple[int, int] = (320, 320),
        sigma: float = 4.0,
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
        try:
            self.codec = SimCCCodec(tuple(num_bins), sigma)
        except (TypeError, ValueError) as err:
            raise ValueError(f"model.num_bins / model.sigma: {err}") from err
        self.head = head(trunk, self.num_joints, self.codec.num_bins)

    def logits(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The head's logits.

        Shapes:
            image (B, 3, S, S) in [0, 1] -> logits_x (B, K, N_x), logits_y (B, K, N_y).
        """
        return self.head(self.features(image))  # features (B, C, h, w)

    def inference_modules(self) -> list[str]:
        """The trunk; the head is a convolution and a few linear layers."""
        return ["trunk"]

    def estimate_view(self, batch: Batch) -> Estimate:
        keypoints, scores = self.codec.decode(*self.logits(batch["image"]))
        return {"stages": [keypoints], "scores": scores}

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """``simcc``: the KL divergence of each axis's logits to the Gaussian-smoothed labels
        of the labelled joints (SimCC §3.3)."""
        logits_x, logits_y = self.logits(batch["image"])
        target_x, target_y, weight = self.codec.encode(batch["keypoints_norm"], batch["labelled"])
        return {"simcc": simcc_kl_loss(logits_x, logits_y, target_x, target_y, weight)}

    def loss_weights(self) -> dict[str, float]:
        return {"simcc": 1.0}
