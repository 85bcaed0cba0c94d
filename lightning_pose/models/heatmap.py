"""Heat-map regression with position refinement (Tompson, Goroshin, Jain, LeCun, Bregler,
"Efficient Object Localization Using Convolutional Networks", CVPR 2015).

* The **coarse model** (§3, Fig. 3; ``trunk`` + ``head``): a trunk's feature pyramid (the
  paper's multi-resolution banks, :class:`~lightning_pose.models.trunks.MultiResolutionTrunk`,
  or a pretrained backbone's maps at strides s, 2s, 4s), upsampled and summed at the output
  stride s, then SpatialDropout (``nn.Dropout2d``, §3.1) before the first 1x1 convolution, and
  a 1x1 convolution to one heat-map per joint:
  :class:`~lightning_pose.models.heads.HeatmapHead`. Trained with the MSE against Gaussian
  target heat-maps (§3, Eq. 1; :class:`~lightning_pose.codecs.heatmap.HeatmapCodec`).
* The **position refinement** (§4, Fig. 7-8): for every joint, a square window of the coarse
  model's own feature maps (every resolution) around the coarse heat-map's maximum is cropped
  (:func:`~lightning_pose.codecs.crop.crop_windows`, bilinear, on the device), passed through
  a fine network whose weights are shared across joints, and a per-joint 1x1 layer gives a
  fine heat-map over the window: :class:`~lightning_pose.models.heads.PositionRefinement`
  (``refinement``). The fine heat-map's decoded
  position is an offset from the window centre; the refined estimate is coarse + offset.
* **Training phases** (§4.1): ``"coarse"`` (the coarse model alone; no refinement is built),
  ``"fine"`` (the refinement with the coarse model frozen, typically initialised from a coarse
  run through ``init_checkpoint``) and ``"joint"`` (``E = E_coarse + lambda E_fine``, the
  paper's lambda = 0.1).

``coarse_loss="integral"`` trains the coarse model as integral regression instead (Sun et al.,
"Integral Human Pose Regression", ECCV 2018, §3): its maps are logits, the estimate is their
softmax's expected position (:func:`~lightning_pose.codecs.integral.soft_argmax`) and the loss
is its L1 distance to the true joint, so the map's resolution no longer quantises the training
signal (a lever of the levers study, ``docs/RESULTS.md``, "Levers").

Coarse and refined estimates are the model's two stages (``val/stage1/...``,
``val/stage2/...``); the per-joint score is the coarse heat-map's maximum. ``flip_test``
averages every heat-map with that of the mirrored input, left and right swapped through the
skeleton's flip pairs (the base class's flip test, done on heat-maps here).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from lightning_pose.codecs.box import encode_in_boxes, square_boxes
from lightning_pose.codecs.heatmap import HeatmapCodec
from lightning_pose.codecs.integral import soft_argmax
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import Batch, Estimate, PoseEstimator, mirror_keypoints
from lightning_pose.models.heads import (
    HeatmapHead,
    HeatmapHeadFactory,
    PositionRefinement,
    RefinementFactory,
)
from lightning_pose.models.losses import coordinate_l1_loss, heatmap_mse_loss
from lightning_pose.models.trunks import Trunk


class HeatmapPose(PoseEstimator):
    """Coarse heat-map model + position refinement (Tompson et al., CVPR 2015); see the
    module docstring.

    Args:
        trunk: a trunk with a feature pyramid and no layers after it:
            ``MultiResolutionTrunk`` (the paper's network), ``ResNetTrunk`` or
            ``EfficientNetLite0Trunk(pyramid_only=True)``.
        skeleton, optimizer, scheduler, evaluation: see :class:`PoseEstimator`.
        head: the coarse heat-map head factory (output stride, merged levels, dropout).
        refinement: the fine model factory ``(channels, num_joints) -> PositionRefinement``.
        training_phase: ``"coarse"`` (no refinement is built: one stage), ``"fine"`` (coarse
            model frozen and in eval mode) or ``"joint"``.
        fine_loss_weight: lambda of ``E_coarse + lambda E_fine`` in the joint phase (§4.1:
            0.1).
        sigma: standard deviation of the coarse target Gaussian, in heat-map cells.
        window_size: side of the refinement window, in input pixels (the network input).
        fine_sigma: standard deviation of the fine target Gaussian, in fine cells.
        flip_test: at evaluation and predict, average every heat-map (coarse and fine) with
            that of the horizontally mirrored input, joints swapped through the skeleton's
            flip pairs (:meth:`flip_averaged`).
        subpixel: the heat-map decoder's sub-cell step, ``"dark"`` (DARK's Taylor step, Zhang
            et al. 2020 §3.2), ``"quarter"`` or ``"none"`` (:class:`HeatmapCodec`); it
            changes no training and can be set at validate time.
        coarse_loss: ``"mse"`` (Tompson et al.'s MSE against Gaussian targets, decoded by
            the arg-max and ``subpixel``) or ``"integral"`` (Sun et al. 2018: L1 on the maps'
            softmax expectation, decoded the same way; ``sigma`` and ``subpixel`` are then
            unused by the coarse model).
        init_checkpoint: a checkpoint whose coarse model (``trunk.`` and ``head.``)
            initialises this one at the start of ``fit``; e.g. a coarse-phase run before the
            fine phase (§4.1).

    Training terms (:meth:`losses`): ``coarse`` and, with a refinement model, ``fine``,
    weighted by the phase (:meth:`loss_weights`); ``fine_in_window`` is a monitor
    (``train/fine_in_window``).

    Raises:
        ValueError: an unknown phase or ``coarse_loss``, a phase without a refinement model,
            a negative weight, a window side <= 0, an unknown ``subpixel``, or a trunk with
            layers after its pyramid.
    """

    not_hparams: ClassVar[tuple[str, ...]] = (*PoseEstimator.not_hparams, "refinement")
    monitors: ClassVar[tuple[str, ...]] = ("fine_in_window",)

    def __init__(
        self,
        trunk: Trunk,
        skeleton: Skeleton,
        head: HeatmapHeadFactory = HeatmapHead,
        refinement: RefinementFactory | None = PositionRefinement,
        training_phase: Literal["coarse", "fine", "joint"] = "joint",
        fine_loss_weight: float = 0.1,
        sigma: float = 1.5,
        window_size: float = 48.0,
        fine_sigma: float = 1.5,
        flip_test: bool = False,
        subpixel: Literal["dark", "quarter", "none"] = "dark",
        coarse_loss: Literal["mse", "integral"] = "mse",
        init_checkpoint: str | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        evaluation: EvaluationProtocol | None = None,
    ) -> None:
        if training_phase not in ("coarse", "fine", "joint"):
            raise ValueError(
                f"model.training_phase must be 'coarse', 'fine' or 'joint', got {training_phase!r}"
            )
        if training_phase != "coarse" and refinement is None:
            raise ValueError(
                f"model.training_phase={training_phase!r} needs a model.refinement; use "
                "training_phase='coarse' for the coarse model alone"
            )
        if coarse_loss not in ("mse", "integral"):
            raise ValueError(f"model.coarse_loss must be 'mse' or 'integral', got {coarse_loss!r}")
        if fine_loss_weight < 0:
            raise ValueError(f"model.fine_loss_weight must be >= 0, got {fine_loss_weight!r}")
        if window_size <= 0:
            raise ValueError(f"model.window_size must be > 0 input pixels, got {window_size!r}")
        if trunk.layers_after_pyramid:
            raise ValueError(
                f"model.trunk: {type(trunk).__name__} runs layers after its last pyramid level, "
                "which the heat-map head never reads (their parameters would get no gradient): "
                "configure it without them (model.init_args.trunk.init_args.pyramid_only: true)"
            )
        refine = training_phase != "coarse"
        stages = 2 if refine else 1
        super().__init__(
            skeleton=skeleton,
            num_stages=stages,
            trunk=trunk,
            flip_test=flip_test,
            init_checkpoint=init_checkpoint,
            optimizer=optimizer,
            scheduler=scheduler,
            evaluation=evaluation,
        )
        self.training_phase = training_phase
        self.coarse_loss = coarse_loss
        self.fine_loss_weight = fine_loss_weight
        self.window_size = float(window_size)
        self.codec = HeatmapCodec(sigma, subpixel)
        self.fine_codec = HeatmapCodec(fine_sigma, subpixel)
        self.head = head(trunk, self.num_joints)
        self.refinement = refinement(self.head.channels, self.num_joints) if refine else None
        if training_phase == "fine":
            self.freeze("trunk", "head")  # the coarse model

    def init_checkpoint_parts(self) -> dict[str, tuple[str, ...]]:
        """The coarse model, trunk and heat-map head, and nothing else (§4.1: a coarse-phase
        run before the fine phase)."""
        return {"trunk": ("trunk.",), "head": ("head.",)}

    # --- the two models -----------------------------------------------------------------
    def windows(self, centres: Tensor, image: Tensor) -> Tensor:
        """Refinement windows around ``centres (B, K, 2)`` box-normalised: (B, K, 4)."""
        side = centres.new_full((centres.shape[0],), self.window_size / image.shape[-1])
        return square_boxes(centres, side)

    def coarse(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The coarse model: image -> (coarse heat-maps, the pyramid maps the head read).

        Shapes:
            image (B, 3, S, S) in [0, 1] -> heatmaps (B, K, S/s, S/s), maps.
        """
        maps = self.head.select(self.features(image, pyramid=True))
        return self.head(maps), maps

    def heatmaps(self, image: Tensor, flip: bool = False) -> dict[str, Tensor | list[Tensor]]:
        """Coarse heat-maps (with ``flip``, averaged with the mirrored input's), their decoded
        estimate and scores, the maps the refinement crops, and the fine heat-maps.

        Shapes:
            image (B, 3, S, S) -> ``coarse (B, K, S/s, S/s)``, ``coarse_keypoints (B, K, 2)``,
            ``scores (B, K)``, ``maps``, ``fine (B, K, F, F)`` and ``boxes (B, K, 4)`` (only
            with a refinement model).
        """
        coarse, maps = self.coarse(image)
        if flip:
            mirrored_coarse, mirrored_maps = self.coarse(image.flip(-1))
            coarse = 0.5 * (
                coarse + self.codec.flip_heatmaps(mirrored_coarse, self.flip_permutation)
            )
        keypoints, scores = self.decode_coarse(coarse.detach())
        out: dict[str, Tensor | list[Tensor]] = {
            "coarse": coarse,
            "coarse_keypoints": keypoints,
            "scores": scores,
            "maps": maps,
        }
        if self.refinement is not None:
            boxes = self.windows(keypoints, image)
            fine = self.refinement(maps, boxes)
            if flip:
                mirrored_keypoints = mirror_keypoints(keypoints, self.flip_permutation)
                mirrored = self.refinement(mirrored_maps, self.windows(mirrored_keypoints, image))
                fine = 0.5 * (fine + self.fine_codec.flip_heatmaps(mirrored, self.flip_permutation))
            out |= {"fine": fine, "boxes": boxes}
        return out

    def decode_coarse(self, coarse: Tensor) -> tuple[Tensor, Tensor]:
        """Coarse maps -> (keypoints (B, K, 2) box-normalised, scores (B, K)): the arg-max
        and sub-cell step (:class:`HeatmapCodec`), or the softmax expectation under
        ``coarse_loss="integral"``."""
        if self.coarse_loss == "integral":
            return soft_argmax(coarse)
        return self.codec.decode(coarse)

    def refine(self, coarse_keypoints: Tensor, fine: Tensor, boxes: Tensor) -> Tensor:
        """Coarse estimate + the fine heat-map's offset from the window centre (§4).

        Shapes:
            coarse_keypoints (B, K, 2), fine (B, K, F, F), boxes (B, K, 4) centred on the
            coarse keypoints -> (B, K, 2) box-normalised.
        """
        in_window, _ = self.fine_codec.decode(fine)  # (B, K, 2) window-normalised
        return coarse_keypoints + in_window * boxes[..., 2:]

    # --- PoseEstimator ------------------------------------------------------------------
    def inference_modules(self) -> list[str]:
        """The coarse model (trunk + heat-map head); the refinement's crops depend on its
        output and stay eager."""
        return ["trunk", "head"]

    def estimate_view(self, batch: Batch) -> Estimate:
        return self._estimate(self.heatmaps(batch["image"]))

    def flip_averaged(self, batch: Batch) -> Estimate:
        """Flip test on the heat-maps (coarse and fine) rather than on the decoded joints: the
        average of two heat-maps decodes to their common peak where two decoded estimates would
        be averaged instead."""
        return self._estimate(self.heatmaps(batch["image"], flip=True))

    def _estimate(self, out: dict[str, Tensor | list[Tensor]]) -> Estimate:
        stages = [out["coarse_keypoints"]]
        if self.refinement is not None:
            stages.append(self.refine(out["coarse_keypoints"], out["fine"], out["boxes"]))
        return {"stages": stages, "scores": out["scores"]}

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """``coarse`` (heat-map MSE, or under ``coarse_loss="integral"`` the L1 distance of
        the maps' softmax expectation) and, with a refinement model, ``fine`` heat-map MSE;
        labelled joints.

        The fine target is a Gaussian at the true joint in its window's frame; a joint outside
        its window (the coarse estimate was far off) has weight 0 (§4).
        """
        out = self.heatmaps(batch["image"])
        keypoints, labelled = batch["keypoints_norm"], batch["labelled"]
        height, width = out["coarse"].shape[-2:]
        if self.coarse_loss == "integral":
            coarse = coordinate_l1_loss(soft_argmax(out["coarse"])[0], keypoints, labelled)
        else:
            target, weight = self.codec.encode(keypoints, labelled, (width, height))
            coarse = heatmap_mse_loss(out["coarse"], target, weight)
        losses = {"coarse": coarse}
        if self.refinement is not None:
            size = self.refinement.fine_size
            target, weight = self.fine_codec.encode(
                encode_in_boxes(keypoints, out["boxes"]), labelled, (size, size)
            )
            losses["fine"] = heatmap_mse_loss(out["fine"], target, weight)
            losses["fine_in_window"] = weight.sum() / labelled.sum().clamp_min(1)
        return losses

    def loss_weights(self) -> dict[str, float]:
        """By phase (§4.1): ``coarse`` alone; ``fine`` alone (the coarse term, frozen model,
        logged with weight 0); or ``E_coarse + lambda E_fine`` (``fine_loss_weight``)."""
        if self.training_phase == "coarse":
            return {"coarse": 1.0}
        if self.training_phase == "fine":
            return {"coarse": 0.0, "fine": 1.0}
        return {"coarse": 1.0, "fine": self.fine_loss_weight}


__all__ = ["HeatmapHead", "HeatmapPose", "PositionRefinement"]
