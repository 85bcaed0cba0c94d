"""Heat-map regression with position refinement (Tompson, Goroshin, Jain, LeCun, Bregler,
"Efficient Object Localization Using Convolutional Networks", CVPR 2015).

* The **coarse model** (§3, Fig. 3): a trunk's feature pyramid (the paper's multi-resolution
  banks, :class:`~lightning_pose.models.trunks.MultiResolutionTrunk`, or a pretrained
  backbone's maps at strides s, 2s, 4s), upsampled and summed at the output stride s, then
  SpatialDropout (``nn.Dropout2d``, §3.1) before the first 1x1 convolution, and a 1x1
  convolution to one heat-map per joint: :class:`HeatmapHead`. Trained with the MSE against
  Gaussian target heat-maps (§3, Eq. 1; :class:`~lightning_pose.codecs.heatmap.HeatmapCodec`).
* The **position refinement** (§4, Fig. 7-8): for every joint, a square window of the coarse
  model's own feature maps (every resolution) around the coarse heat-map's maximum is cropped
  (:func:`~lightning_pose.codecs.crop.crop_windows`, bilinear, on the device), passed through
  a fine network whose weights are shared across joints, and a per-joint 1x1 layer gives a
  fine heat-map over the window: :class:`PositionRefinement`. The fine heat-map's decoded
  position is an offset from the window centre; the refined estimate is coarse + offset.
* **Training phases** (§4.1): ``"coarse"`` (the coarse model alone; no refinement is built),
  ``"fine"`` (the refinement with the coarse model frozen, typically initialised from a coarse
  run through ``init_checkpoint``) and ``"joint"`` (``E = E_coarse + lambda E_fine``, the
  paper's lambda = 0.1).

Coarse and refined estimates are the model's two stages (``val/stage1/...``,
``val/stage2/...``); the per-joint score is the coarse heat-map's maximum. ``flip_test``
averages every heat-map with that of the mirrored input, left and right swapped through the
skeleton's flip pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_pose.checkpoints import load_partial_weights
from lightning_pose.codecs.box import encode_in_boxes, square_boxes
from lightning_pose.codecs.crop import crop_windows
from lightning_pose.codecs.heatmap import HeatmapCodec
from lightning_pose.losses import heatmap_mse_loss
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import NOT_HPARAMS, Batch, Estimate, PoseEstimator
from lightning_pose.models.trunks import Trunk, feature_pyramid_levels
from lightning_pose.skeleton import Skeleton


class HeatmapHead(nn.Module):
    """Merge a trunk's pyramid maps at the output stride and predict one heat-map per joint
    (Tompson et al. 2015, §3, Fig. 3).

    Each selected map (strides s, 2s, ... from ``output_stride``) is projected to ``width``
    channels by a 1x1 convolution (the identity where it already has them, as the banks of
    :class:`~lightning_pose.models.trunks.MultiResolutionTrunk` do), bilinearly upsampled to
    the finest map and summed (the paper's "upsample and add"); then SpatialDropout, 1x1 conv
    (``hidden_channels``) - ReLU - 1x1 conv (K). The output is linear (MSE target in [0, 1]).

    Args:
        trunk: read for its pyramid strides and channels.
        num_joints: K.
        output_stride: input pixels per heat-map cell; None = the trunk's finest map.
        levels: how many pyramid maps to merge (the paper: 3 resolutions).
        width: channels of the merged map; None = the maps' own width if they all share it,
            else 128.
        hidden_channels: width of the first 1x1 convolution.
        dropout: SpatialDropout probability (whole channels are dropped, §3.1).

    Shapes:
        forward: maps, the trunk's selected pyramid maps (:attr:`levels`) ->
        heatmaps (B, K, S / s, S / s).

    Raises:
        ValueError: no pyramid map at ``output_stride``, or dropout outside [0, 1).
    """

    def __init__(
        self,
        trunk: Trunk,
        num_joints: int,
        output_stride: int | None = None,
        levels: int = 3,
        width: int | None = None,
        hidden_channels: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"heatmap head dropout must be in [0, 1), got {dropout!r}")
        self.levels = feature_pyramid_levels(trunk, output_stride, levels)
        self.output_stride = trunk.pyramid_strides[self.levels[0]]
        channels = [trunk.pyramid_channels[i] for i in self.levels]
        if width is None:
            width = channels[0] if len(set(channels)) == 1 else 128
        self.channels = channels
        self.width = width
        self.lateral = nn.ModuleList(
            nn.Identity() if c == width else nn.Conv2d(c, width, 1) for c in channels
        )
        self.dropout = nn.Dropout2d(dropout)
        self.conv = nn.Conv2d(width, hidden_channels, 1)
        self.out = nn.Conv2d(hidden_channels, num_joints, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def select(self, pyramid: Sequence[Tensor]) -> list[Tensor]:
        """The maps this head reads, finest first, from the trunk's whole pyramid."""
        return [pyramid[i] for i in self.levels]

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        size = maps[0].shape[-2:]
        merged = self.lateral[0](maps[0])
        for lateral, x in zip(self.lateral[1:], maps[1:], strict=True):
            merged = merged + F.interpolate(
                lateral(x), size=size, mode="bilinear", align_corners=False
            )
        return self.out(F.relu(self.conv(self.dropout(merged))))  # (B, K, h, w)


HeatmapHeadFactory = Callable[[Trunk, int], HeatmapHead]


class PositionRefinement(nn.Module):
    """The fine model of Tompson et al. 2015, §4 (Fig. 7-8): feature crops -> fine heat-maps.

    Every map the coarse head reads is projected to ``width`` channels by a 1x1 convolution of
    its own; for every joint, a square window (``boxes``) centred on the coarse estimate is
    cropped from each projected map and resampled to ``fine_size`` x ``fine_size`` cells
    (bilinear; the coarser maps are thereby upsampled, as the paper upsamples its coarser
    banks' crops), and the crops are summed; then ``depth`` 3x3 conv - ReLU layers. Cropping
    commutes with a 1x1 convolution (both act linearly per pixel; only the zero padding outside
    the map differs by the bias), so projecting before cropping is projecting each crop, at a
    fraction of the cost: the B x K windows overlap. Everything but the last layer is shared
    across joints (the crops are a batch of B x K windows); the last 1x1 layer has its own
    weights per joint.

    ``fine_size`` is odd so that the window centre is a cell centre: a fine heat-map peaked
    there decodes to an offset of exactly 0.

    Args:
        channels: channels of the cropped maps, finest first.
        num_joints: K.
        fine_size: cells of the fine heat-map per side (odd).
        width: channels of the fine network.
        depth: 3x3 conv - ReLU layers after the merge.

    Shapes:
        forward: maps [(B, C_l, h_l, w_l)], boxes (B, K, 4) ``(cx, cy, side, side)``
        box-normalised -> fine heat-maps (B, K, fine_size, fine_size).
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_joints: int,
        fine_size: int = 17,
        width: int = 32,
        depth: int = 2,
    ) -> None:
        super().__init__()
        if fine_size < 3 or fine_size % 2 == 0:
            raise ValueError(f"refinement fine_size must be odd and >= 3, got {fine_size!r}")
        self.fine_size = fine_size
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        # The per-joint 1x1 layer: joint k's fine map is w_k . features + b_k.
        self.joint_weight = nn.Parameter(torch.randn(num_joints, width) * 1e-3)
        self.joint_bias = nn.Parameter(torch.zeros(num_joints))

    def forward(self, maps: Sequence[Tensor], boxes: Tensor) -> Tensor:
        B, K, _ = boxes.shape
        S = self.fine_size
        x = sum(
            crop_windows(lateral(m), boxes, S)
            for lateral, m in zip(self.lateral, maps, strict=True)
        )  # (B*K, width, S, S)
        x = self.body(F.relu(x)).view(B, K, -1, S, S)
        return (
            torch.einsum("bkcij,kc->bkij", x, self.joint_weight)
            + self.joint_bias[None, :, None, None]
        )


RefinementFactory = Callable[[Sequence[int], int], PositionRefinement]


class CoarseHeatmapModel(nn.Module):
    """Trunk + :class:`HeatmapHead`: image -> (coarse heat-maps, the maps the head read).

    Shapes:
        forward: image (B, 3, S, S) in [0, 1] -> heatmaps (B, K, S/s, S/s), maps.
    """

    def __init__(self, trunk: Trunk, num_joints: int, head: HeatmapHeadFactory) -> None:
        super().__init__()
        trunk.keep_pyramid_only()  # the head reads the pyramid alone
        self.trunk = trunk
        self.head = head(trunk, num_joints)

    def forward(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        maps = self.head.select(self.trunk.pyramid(self.trunk.normalise(image)))
        return self.head(maps), maps


class HeatmapPose(PoseEstimator):
    """Coarse heat-map model + position refinement (Tompson et al., CVPR 2015); see the
    module docstring.

    Args:
        trunk: a trunk with a feature pyramid: ``MultiResolutionTrunk`` (the paper's network),
            ``EfficientNetLite0Trunk`` or ``ResNetTrunk``.
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
            flip pairs.
        init_checkpoint: a checkpoint whose coarse model (``coarse.``) initialises this one at
            the start of ``fit`` (:meth:`load_coarse_model`); e.g. a coarse-phase run before the
            fine phase.

    Raises:
        ValueError: an unknown phase, a phase without a refinement model, a negative weight,
            or a window side <= 0.
    """

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
        if fine_loss_weight < 0:
            raise ValueError(f"model.fine_loss_weight must be >= 0, got {fine_loss_weight!r}")
        if window_size <= 0:
            raise ValueError(f"model.window_size must be > 0 input pixels, got {window_size!r}")
        refine = training_phase != "coarse"
        super().__init__(skeleton, 2 if refine else 1, optimizer, scheduler, evaluation)
        # flip_test is an evaluation switch, not a property of the weights: kept out of the
        # hyperparameters so that `validate --ckpt_path=... --model.init_args.flip_test=true`
        # is not overridden by the checkpoint's recorded value.
        self.save_hyperparameters(ignore=list(NOT_HPARAMS) + ["refinement", "flip_test"])
        self.training_phase = training_phase
        self.fine_loss_weight = fine_loss_weight
        self.window_size = float(window_size)
        self.flip_test = flip_test
        self.codec = HeatmapCodec(sigma)
        self.fine_codec = HeatmapCodec(fine_sigma)
        self.flip_permutation = skeleton.flip_permutation()
        self.coarse = CoarseHeatmapModel(trunk, self.num_joints, head)
        self.refinement = refinement(self.coarse.head.channels, self.num_joints) if refine else None
        self.init_checkpoint = init_checkpoint
        if training_phase == "fine":
            self.coarse.requires_grad_(False)

    # --- modules ------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.init_checkpoint is not None and self.trainer.ckpt_path is None:
            self.load_coarse_model(self.init_checkpoint)

    def load_coarse_model(self, path: str) -> str:
        """Initialise the coarse model (trunk + heat-map head), and nothing else, from a
        checkpoint's ``coarse.`` weights (shared loader, ``weights_only=True``): e.g. a
        coarse-phase run before the fine phase (§4.1). Done at the start of ``fit``, not when
        resuming from ``ckpt_path``.

        Raises:
            FileNotFoundError, ValueError: see
                :func:`~lightning_pose.checkpoints.load_partial_weights`.
        """
        return load_partial_weights(self.coarse, path, ["coarse."], "model.init_checkpoint")

    def train(self, mode: bool = True) -> HeatmapPose:
        super().train(mode)
        if self.training_phase == "fine":
            self.coarse.eval()  # frozen: no dropout, batch-norm statistics kept
        return self

    # --- the two models -----------------------------------------------------------------
    def windows(self, centres: Tensor, image: Tensor) -> Tensor:
        """Refinement windows around ``centres (B, K, 2)`` box-normalised: (B, K, 4)."""
        side = centres.new_full((centres.shape[0],), self.window_size / image.shape[-1])
        return square_boxes(centres, side)

    def _flip_test(self) -> bool:
        return self.flip_test and not self.training

    def _mirror(self, points: Tensor) -> Tensor:
        """Box-normalised points of the image -> those of its mirror, joints swapped."""
        return points[:, self.flip_permutation] * points.new_tensor([-1.0, 1.0])

    def heatmaps(self, image: Tensor) -> dict[str, Tensor | list[Tensor]]:
        """Coarse heat-maps (flip-averaged under ``flip_test`` in eval), their decoded
        estimate and scores, the maps the refinement crops, and the fine heat-maps.

        Shapes:
            image (B, 3, S, S) -> ``coarse (B, K, S/s, S/s)``, ``coarse_keypoints (B, K, 2)``,
            ``scores (B, K)``, ``maps``, ``fine (B, K, F, F)`` and ``boxes (B, K, 4)`` (only
            with a refinement model).
        """
        coarse, maps = self.coarse(image)
        flip = self._flip_test()
        if flip:
            mirrored_coarse, mirrored_maps = self.coarse(image.flip(-1))
            coarse = 0.5 * (
                coarse + self.codec.flip_heatmaps(mirrored_coarse, self.flip_permutation)
            )
        keypoints, scores = self.codec.decode(coarse.detach())
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
                mirrored = self.refinement(
                    mirrored_maps, self.windows(self._mirror(keypoints), image)
                )
                fine = 0.5 * (fine + self.fine_codec.flip_heatmaps(mirrored, self.flip_permutation))
            out |= {"fine": fine, "boxes": boxes}
        return out

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
        return ["coarse"]

    def estimate(self, batch: Batch) -> Estimate:
        out = self.heatmaps(batch["image"])
        stages = [out["coarse_keypoints"]]
        if self.refinement is not None:
            stages.append(self.refine(out["coarse_keypoints"], out["fine"], out["boxes"]))
        return {"stages": stages, "scores": out["scores"]}

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """``coarse`` and (with a refinement model) ``fine`` heat-map MSE, labelled joints.

        The fine target is a Gaussian at the true joint in its window's frame; a joint outside
        its window (the coarse estimate was far off) has weight 0 (§4).
        """
        out = self.heatmaps(batch["image"])
        keypoints, labelled = batch["keypoints_norm"], batch["labelled"]
        height, width = out["coarse"].shape[-2:]
        losses = {
            "coarse": heatmap_mse_loss(
                out["coarse"], *self.codec.encode(keypoints, labelled, (width, height))
            )
        }
        if self.refinement is not None:
            size = self.refinement.fine_size
            target, weight = self.fine_codec.encode(
                encode_in_boxes(keypoints, out["boxes"]), labelled, (size, size)
            )
            losses["fine"] = heatmap_mse_loss(out["fine"], target, weight)
            losses["fine_in_window"] = weight.sum() / labelled.sum().clamp_min(1)
        return losses

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        losses = self.losses(batch)
        if self.training_phase == "coarse":
            loss = losses["coarse"]
        elif self.training_phase == "fine":
            loss = losses["fine"]
        else:
            loss = losses["coarse"] + self.fine_loss_weight * losses["fine"]
        batch_size = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        names = {"coarse": "loss_coarse", "fine": "loss_fine", "fine_in_window": "fine_in_window"}
        self.log_dict(
            {f"train/{names[k]}": v.detach() for k, v in losses.items()}, batch_size=batch_size
        )
        return loss


__all__ = [
    "CoarseHeatmapModel",
    "HeatmapHead",
    "HeatmapPose",
    "PositionRefinement",
]
