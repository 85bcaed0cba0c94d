"""Heterogeneous multi-task pose network: joint regression with joint-point and body-part
detection (Li, Liu & Chan, "Heterogeneous Multi-task Learning for Human Pose Estimation with Deep
Convolutional Neural Network", CVPR workshops 2014 / IJCV 2015).

One trunk is shared by three heads (§3): a regressor of box-normalised joints (the DeepPose
stage-1 head), and, as auxiliary tasks that regularise the shared layers, sliding-window
detectors: for each joint (joint-point detection) and each body part (body-part detection: the
skeleton's limbs) one binary classifier per window of a grid over the input, a window being
positive when the joint, or the part's centre, lies in it
(:class:`~lightning_pose.codecs.windows.WindowCodec`). The loss is

    L = w_reg L_regression + lambda_joint L_joint_det + lambda_part L_part_det

with ``L_regression`` the L2 of DeepPose Eq. 3 over labelled joints and the detection terms the
binary cross-entropy over windows of visible joints and parts. A weight of 0 switches its task
off: "regression only", "+ joint detection", "+ both" and the detection pre-training phase
(``regression_weight=0``) are one model with different settings. The paper's second training
strategy, detection pre-training then regression initialised from its shared layers, is
``init_checkpoint`` (the base class's: the trunk alone). See docs/MULTITASK.md.
"""

from __future__ import annotations

from typing import ClassVar, NotRequired

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_pose.codecs.windows import WindowCodec
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.detection import WindowAveragePrecision
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import Batch, Estimate, PoseEstimator
from lightning_pose.models.heads import (
    DetectionHeadFactory,
    RegressionHead,
    RegressionHeadFactory,
    WindowDetectionHead,
)
from lightning_pose.models.losses import binary_cross_entropy_loss, coordinate_l2_loss
from lightning_pose.models.trunks import Trunk


class MultiTaskEstimate(Estimate):
    """:class:`Estimate` plus the detectors' window probabilities, where their tasks are on.

    Shapes:
        scores: (B, K) the joint detector's highest window probability per joint.
        joint_window_scores: (B, K, G_y, G_x) probability that window (row, column) holds joint k.
        part_window_scores: (B, L, G_y, G_x) the same for the centre of body part l.
    """

    joint_window_scores: NotRequired[Tensor]
    part_window_scores: NotRequired[Tensor]


class MultiTaskPose(PoseEstimator):
    """Shared trunk + joint regressor + sliding-window joint and body-part detectors.

    The output (``stages``, evaluated with PDJ/PCKh/PCP) is the regression estimate. With the
    joint detector on, ``scores`` is its highest window probability per joint, and
    ``predict_step`` also returns ``joint_window_scores`` (and ``part_window_scores`` with the
    part detector), which the ``PredictionWriter`` writes to ``predictions.npz``.

    A task whose weight is 0 is off: a detector is not built (no parameters, no loss term, no
    metric); the regression head (``head``), always built because it gives the model's output,
    is frozen (no gradient, not given to the optimiser) and its loss not computed.

    Under ``flip_test`` the detectors' window scores are averaged too, each mirrored window
    read for the mirrored joint (or body part).

    Args:
        trunk: the shared layers, any ``Trunk``.
        skeleton: joints and limbs (linked from ``data.skeleton``); its limbs are the body parts.
        head: the regression head factory ``(trunk, num_joints) -> head``. Its
            ``coordinate_dim`` stays a parameter for the paper's 3D variant; this model trains
            2D coordinates.
        detection_head: ``(trunk, num_classes, grid) -> head``, for both detectors.
        window_grid: ``(G_x, G_y)`` windows over the input.
        regression_weight: weight of the regression loss; 0 for detection pre-training.
        joint_detection_weight: lambda_joint; 0 = no joint detector.
        part_detection_weight: lambda_part; 0 = no body-part detector.
        init_checkpoint: a checkpoint whose shared trunk (and only it) initialises this one's,
            read with ``weights_only=True`` at the start of ``fit`` (not when resuming with
            ``ckpt_path``): a ``MultiTaskPose`` (e.g. detection pre-training) or ``DeepPose``.
        flip_test, optimizer, scheduler, evaluation: see :class:`PoseEstimator`.

    Logged: ``train/loss`` and, per task on, its unweighted term (:meth:`losses`):
    ``train/loss_regression``, ``train/loss_joint_det``, ``train/loss_part_det``; in
    evaluation, besides the base metrics, ``{split}/joint_det/ap`` (mean over joints),
    ``{split}/joint_det/ap/<joint>``, ``{split}/part_det/ap``, ``{split}/part_det/ap/<limb>``
    and the positive windows counted, ``{split}/count/joint_det``, ``{split}/count/part_det``.

    Raises:
        ValueError: a negative weight, every weight 0, or a bad grid.
    """

    prediction_keys: ClassVar[tuple[str, ...]] = (
        "scores",
        "joint_window_scores",
        "part_window_scores",
    )
    not_hparams: ClassVar[tuple[str, ...]] = (*PoseEstimator.not_hparams, "detection_head")

    def __init__(
        self,
        trunk: Trunk,
        skeleton: Skeleton,
        head: RegressionHeadFactory = RegressionHead,
        detection_head: DetectionHeadFactory = WindowDetectionHead,
        window_grid: tuple[int, int] = (7, 7),
        regression_weight: float = 1.0,
        joint_detection_weight: float = 0.1,
        part_detection_weight: float = 0.1,
        init_checkpoint: str | None = None,
        flip_test: bool = False,
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
        weights = {
            "regression_weight": regression_weight,
            "joint_detection_weight": joint_detection_weight,
            "part_detection_weight": part_detection_weight,
        }
        for key, value in weights.items():
            if not value >= 0:
                raise ValueError(f"model.{key} must be >= 0, got {value}")
        if not any(weights.values()):
            raise ValueError(f"model: every task is off (all of {sorted(weights)} are 0)")
        if part_detection_weight > 0 and not skeleton.limbs:
            raise ValueError(
                f"model.part_detection_weight > 0 needs body parts, but skeleton "
                f"{skeleton.name!r} has no limbs"
            )
        try:
            self.codec = WindowCodec(tuple(window_grid))
        except (TypeError, ValueError) as err:
            raise ValueError(f"model.window_grid: {err}") from err
        self.regression_weight = float(regression_weight)
        self.joint_detection_weight = float(joint_detection_weight)
        self.part_detection_weight = float(part_detection_weight)

        self.head = head(trunk, self.num_joints)  # the regression head: the model's output
        # Off: no gradient, but left in its mode (its dropout draws as it always did).
        self.head.requires_grad_(self.regression_weight > 0)
        self.joint_detector = self.part_detector = None
        if self.joint_detection_weight > 0:
            self.joint_detector = detection_head(trunk, self.num_joints, self.codec.grid)
        if self.part_detection_weight > 0:
            self.part_detector = detection_head(trunk, len(skeleton.limbs), self.codec.grid)
        limb_weights = torch.from_numpy(skeleton.limb_endpoint_weights())  # (L, 2, K)
        self.register_buffer("limb_weights", limb_weights, persistent=False)
        self.detection_metrics = nn.ModuleDict(
            {split: self._detection_metrics() for split in ("val", "test")}
        )

    def _detection_metrics(self) -> nn.ModuleDict:
        metrics = nn.ModuleDict()
        if self.joint_detector is not None:
            metrics["joint_det"] = WindowAveragePrecision(self.joint_names)
        if self.part_detector is not None:
            metrics["part_det"] = WindowAveragePrecision(self.skeleton.limb_names)
        return metrics

    # --- forward ------------------------------------------------------------------------
    def heads(self, image: Tensor) -> dict[str, Tensor]:
        """Every head's raw output, from one pass through the shared trunk.

        Shapes:
            image (B, 3, S, S) in [0, 1] -> ``regression`` (B, K, 2) box-normalised and, for the
            tasks on, ``joint_logits`` (B, K, G_y, G_x), ``part_logits`` (B, L, G_y, G_x).
        """
        features = self.features(image)  # (B, C, h, w)
        out = {"regression": self.head(features)}  # (B, K, 2)
        if self.joint_detector is not None:
            out["joint_logits"] = self.joint_detector(features)  # (B, K, G_y, G_x)
        if self.part_detector is not None:
            out["part_logits"] = self.part_detector(features)  # (B, L, G_y, G_x)
        return out

    def inference_modules(self) -> list[str]:
        """The shared trunk; the heads are a few small layers."""
        return ["trunk"]

    def estimate_view(self, batch: Batch) -> MultiTaskEstimate:
        out = self.heads(batch["image"])
        estimate: MultiTaskEstimate = {"stages": [out["regression"]]}
        if "joint_logits" in out:
            joint_windows = out["joint_logits"].sigmoid()  # (B, K, G_y, G_x)
            estimate["joint_window_scores"] = joint_windows
            estimate["scores"] = joint_windows.flatten(2).amax(dim=-1)  # (B, K)
        if "part_logits" in out:
            estimate["part_window_scores"] = out["part_logits"].sigmoid()  # (B, L, G_y, G_x)
        return estimate

    def mirror_estimate(self, estimate: MultiTaskEstimate) -> MultiTaskEstimate:
        """The base class's (stages, scores), and the window scores: window columns reversed
        (the grid tiles the box symmetrically), joints and body parts swapped left and right.

        Shapes:
            joint_window_scores (B, K, G_y, G_x), part_window_scores (B, L, G_y, G_x).
        """
        windows = {
            "joint_window_scores": self.flip_permutation,
            "part_window_scores": limb_flip_permutation(self.skeleton),
        }
        out = super().mirror_estimate({k: v for k, v in estimate.items() if k not in windows})
        for key, permutation in windows.items():
            if key in estimate:
                out[key] = estimate[key][:, permutation].flip(-1)
        return out

    # --- training -----------------------------------------------------------------------
    def window_labels(self, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        """Window labels and weights of the detection tasks on, from the batch's visible joints.

        Shapes:
            returns ``joint_det``: labels (B, K, G_y, G_x), weight (B, K); ``part_det``: labels
            (B, L, G_y, G_x), weight (B, L).
        """
        keypoints_norm, visible = batch["keypoints_norm"], batch["visible"]
        out = {}
        if self.joint_detector is not None:
            out["joint_det"] = self.codec.encode_points(keypoints_norm, visible)
        if self.part_detector is not None:
            out["part_det"] = self.codec.encode_parts(keypoints_norm, visible, self.limb_weights)
        return out

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """The loss of each task on (unweighted): ``regression`` (DeepPose Eq. 3),
        ``joint_det``, ``part_det`` (binary cross-entropy over windows)."""
        out = self.heads(batch["image"])
        losses = {}
        if self.regression_weight > 0:
            losses["regression"] = coordinate_l2_loss(
                out["regression"], batch["keypoints_norm"], batch["labelled"]
            )
        for task, (labels, weight) in self.window_labels(batch).items():
            logits = out["joint_logits" if task == "joint_det" else "part_logits"]
            losses[task] = binary_cross_entropy_loss(logits, labels, weight)
        return losses

    def loss_weights(self) -> dict[str, float]:
        """``w_reg``, ``lambda_joint``, ``lambda_part`` (a task whose weight is 0 has no term)."""
        return {
            "regression": self.regression_weight,
            "joint_det": self.joint_detection_weight,
            "part_det": self.part_detection_weight,
        }

    # --- evaluation ---------------------------------------------------------------------
    def _evaluate_detection(self, batch: Batch, split: str) -> None:
        estimate = self._evaluate(batch, split)
        for task, (labels, weight) in self.window_labels(batch).items():
            scores = estimate[
                "joint_window_scores" if task == "joint_det" else "part_window_scores"
            ]
            self.detection_metrics[split][task].update(scores, labels, weight)

    def _log_detection(self, split: str) -> None:
        values = {}
        for task, metric in self.detection_metrics[split].items():
            result = metric.compute()  # a collective under DDP: on every process
            values[f"{split}/count/{task}"] = result.pop("positives")
            values |= {f"{split}/{task}/{key}": value for key, value in result.items()}
            metric.reset()
        if values:
            self.log_reduced(values)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate_detection(batch, "val")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_detection("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate_detection(batch, "test")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_detection("test")


def limb_flip_permutation(skeleton: Skeleton) -> list[int]:
    """Body part l of a mirrored image is part ``permutation[l]`` of the original: the limb
    whose end points are l's end points swapped through the flip pairs (either direction).

    Raises:
        ValueError: a limb whose mirror is not one of the skeleton's limbs.
    """
    joints = skeleton.flip_permutation()

    def end_points(start, end) -> frozenset:  # an end point is the mean of its joints
        return frozenset((frozenset(start), frozenset(end)))  # a mirror may run end to start

    ends = [end_points(limb.start, limb.end) for limb in skeleton.limbs]
    out = []
    for limb in skeleton.limbs:
        mirrored = end_points((joints[j] for j in limb.start), (joints[j] for j in limb.end))
        if mirrored not in ends:
            raise ValueError(
                f"skeleton {skeleton.name!r}: the mirror of limb {limb.name!r} is not one of its "
                "limbs; flip_test needs limbs closed under the flip pairs"
            )
        out.append(ends.index(mirrored))
    return out
