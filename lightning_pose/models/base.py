"""Shared LightningModule plumbing: metrics, evaluation, prediction and optimisers.

Every variant (DeepPose stage 1, the cascade, heatmap+refine, multi-task) subclasses
:class:`PoseEstimator` and implements :meth:`PoseEstimator.predict_keypoints_norm` and
``training_step``; validation, test and predict are shared, so every variant reports the same
metrics in original-image pixels, and the same ``val/loss``: the visibility-weighted L2 of its
final joints in the box-normalised frame (DeepPose §3, Eq. 3), comparable across variants.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from lightning_pose import codec
from lightning_pose.losses import visible_l2_loss
from lightning_pose.metrics import PDJ, PCKh
from lightning_pose.skeleton import joint_groups

Batch = dict[str, torch.Tensor]


class PoseEstimator(pl.LightningModule):
    """Base class: evaluation in original-image pixels with PDJ and PCKh, and predict.

    Args:
        joint_names: joint names in annotation order (linked from ``data.joint_names``).
        optimizer: optimiser factory, called with the parameters.
        scheduler: LR scheduler factory, called with the optimiser; None = constant LR.
            ``ReduceLROnPlateau`` monitors ``val/loss``.
        pdj_thresholds: PDJ thresholds, fractions of the torso diameter (DeepPose §5).
        pckh_thresholds: PCKh thresholds, fractions of the head segment.
    """

    def __init__(
        self,
        joint_names: Sequence[str],
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        pdj_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
        pckh_thresholds: Sequence[float] = (0.5,),
    ) -> None:
        super().__init__()
        if len(joint_names) == 0:
            raise ValueError("model.joint_names must name at least one joint")
        self.joint_names = list(joint_names)
        self.num_joints = len(self.joint_names)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        groups = joint_groups(self.joint_names)
        self.metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {
                        "pdj": PDJ(self.joint_names, pdj_thresholds, groups=groups),
                        "pckh": PCKh(self.joint_names, pckh_thresholds, groups=groups),
                    }
                )
                for stage in ("val", "test")
            }
        )

    # --- to implement -------------------------------------------------------------------
    def predict_keypoints_norm(self, batch: Batch) -> torch.Tensor:
        """Joints in the box-normalised frame of the input crop.

        Shapes:
            batch["image"]: (B, 3, S, S) float in [0, 1]. returns (B, K, 2).
        """
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def predict_keypoints_px(self, batch: Batch) -> torch.Tensor:
        """Joints in original-image pixels: decode the box-normalised prediction with the box.

        Shapes:
            returns (B, K, 2) pixels.
        """
        return self.decode(self.predict_keypoints_norm(batch), batch)

    def decode(self, keypoints_norm: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Box-normalised joints of a batch -> original-image pixels, (B, K, 2)."""
        return codec.decode(keypoints_norm, batch["box"])

    def _evaluate(self, batch: Batch, stage: str) -> None:
        self._score(self.predict_keypoints_norm(batch), batch, stage)

    def _score(self, pred_norm: torch.Tensor, batch: Batch, stage: str) -> None:
        """Log ``<stage>/loss`` and update PDJ and PCKh with a (B, K, 2) prediction."""
        visible = batch["visible"]
        loss = visible_l2_loss(pred_norm, batch["keypoints_norm"], visible)
        self.log(f"{stage}/loss", loss, batch_size=visible.shape[0], sync_dist=True)
        pred_px = self.decode(pred_norm, batch)  # (B, K, 2)
        self.metrics[stage]["pdj"].update(
            pred_px, batch["keypoints_px"], visible, batch["torso_diameter_px"]
        )
        self.metrics[stage]["pckh"].update(
            pred_px, batch["keypoints_px"], visible, batch["head_size_px"]
        )

    def _log_metrics(self, stage: str) -> None:
        for metric in self.metrics[stage].values():
            values = metric.compute()
            self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, prog_bar=False)
            metric.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Returns ``index (B,)`` and ``keypoints_px (B, K, 2)`` original-image pixels."""
        return {"index": batch["index"], "keypoints_px": self.predict_keypoints_px(batch)}

    def trainable_parameters(self):
        """Parameters handed to the optimiser (all, unless a variant freezes some)."""
        return self.parameters()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        config = {"scheduler": scheduler}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}
