"""DeepPose cascade of pose regressors (Toshev & Szegedy 2014, §3.2).

Stage 1 regresses all joints from the whole box: it is :class:`~lightning_pose.models.deeppose.
DeepPose` (the cascade subclasses it; its ``trunk`` and ``head``), so a ``DeepPose`` checkpoint
is a cascade's stage 1 under the same names and ``num_stages=1`` trains exactly ``DeepPose``.
Each stage s >= 2 (``refiners[s - 2]``) refines joint i from a sub-image centred on the stage
s-1 estimate, side ``sigma * diam(y^{s-1})``, regressing the joint's displacement there (Eq. 6).
Each stage has its own parameters and the stage-1 trunk and head architecture. Stage s trains
on boxes around the true joints displaced by samples of stage s-1's per-joint error
distribution on the training set (Eq. 7-8), with stages < s frozen.

How the error distribution is estimated and stored: at the start of ``fit`` of stage s, stages
1..s-1 run on ``error_stats_images`` training images (evenly spaced, no augmentation); the errors
``(y^{s-1}_i - y_i) / diam(y)`` of labelled joints of images whose torso diameter is measurable
give a per-joint mean (K, 2) and covariance (K, 2, 2) in torso diameters. They are stored in the
buffers ``error_mean[s-2]`` and ``error_cov[s-2]``, so they live in the checkpoint; the
``ErrorStatisticsWriter`` callback reports them in the run's ``error_statistics.json``.
"""

from __future__ import annotations

import copy

import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from lightning_pose.codecs.box import decode_in_boxes, encode_in_boxes, square_boxes
from lightning_pose.codecs.crop import crop_windows
from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import NOT_HPARAMS, Batch, Estimate, PoseEstimator
from lightning_pose.models.cascade_errors import error_statistics, sample_displacements
from lightning_pose.models.deeppose import DeepPose, PoseRegressor
from lightning_pose.models.heads import RegressionHead, RegressionHeadFactory
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.trunks import Trunk

MIN_SIDE = 0.02  # smallest sub-image side at inference, box-normalised (a degenerate torso)


class DeepPoseCascade(DeepPose):
    """DeepPose with ``num_stages`` stages; trains the last one, the others frozen.

    Stage 1 is ``trunk`` + ``head`` (as in :class:`DeepPose`); stage s >= 2 is
    ``refiners[s - 2]``, a :class:`PoseRegressor` on a copy of the trunk.

    Args:
        trunk: the stage trunk (stage 1's; deep-copied for each later stage).
        skeleton: the dataset's skeleton; its ``torso`` gives diam(y).
        head: the regression head factory of every stage (see ``PoseRegressor``).
        num_stages: cascade depth S (1 = stage 1 alone: :class:`DeepPose`).
        sigma: sub-image side in torso diameters (paper: 1.0 for FLIC, 2.0 for LSP).
        samples_per_image: sub-images drawn per training image and step (joints cycled from a
            random start). Over E epochs an image yields E x this many boxes (paper: ~40).
        init_checkpoint: checkpoint of the first S-1 stages: a ``DeepPose`` (S = 2) or a
            ``DeepPoseCascade`` with >= S-1 stages; loaded (``weights_only=True``) at the
            start of ``fit`` (not when resuming with ``ckpt_path``). Without it stage S trains
            on untrained earlier stages, with a warning: meant for smoke tests only.
        error_stats_images: training images used to estimate stage S-1's error distribution.
        image_hr_factor: f >= 2, the stages s >= 2 crop their sub-images from the box at f x
            the input size (``image_hr``), which the data module then serves (its
            ``highres_factor`` left unset follows the model; another name, as Lightning
            refuses a key in both hyperparameter sets with two values). Not used when
            ``num_stages == 1`` (no high-resolution view is served) but checked all the same,
            so that one value serves every trial of a depth sweep.
        flip_test, optimizer, scheduler, evaluation: see ``PoseEstimator``.

    Every stage is evaluated (``val/stage{s}/pdj@t``); ``callbacks.PDJCurveWriter`` writes the
    PDJ-versus-distance curve per stage (DeepPose Fig. 5).

    Raises:
        ValueError: ``sigma <= 0``, ``samples_per_image < 1``, ``error_stats_images < 2`` or
            ``image_hr_factor < 2`` (naming the keys and the values given).
    """

    def __init__(
        self,
        trunk: Trunk,
        skeleton: Skeleton,
        head: RegressionHeadFactory = RegressionHead,
        num_stages: int = 2,
        sigma: float = 2.0,
        samples_per_image: int = 14,
        init_checkpoint: str | None = None,
        error_stats_images: int = 1000,
        image_hr_factor: int = 2,
        flip_test: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        evaluation: EvaluationProtocol | None = None,
    ) -> None:
        # Not DeepPose.__init__, which fixes one stage: the base class, then stage 1 as there.
        S = num_stages  # noqa: N806 (the paper's S)
        PoseEstimator.__init__(
            self, skeleton, S, optimizer, scheduler, evaluation, trunk, flip_test, init_checkpoint
        )
        self.head = head(trunk, self.num_joints)
        if sigma <= 0 or samples_per_image < 1 or error_stats_images < 2 or image_hr_factor < 2:
            raise ValueError(
                "model.sigma must be > 0, model.samples_per_image >= 1, "
                "model.error_stats_images >= 2 and model.image_hr_factor >= 2; got "
                f"{sigma}, {samples_per_image}, {error_stats_images}, {image_hr_factor}"
            )
        if skeleton.torso is None:
            raise ValueError(
                f"the DeepPose cascade measures displacements in torso diameters (§3.2); "
                f"skeleton {skeleton.name!r} has no torso: name its joints in the dataset "
                "(e.g. data.dataset.init_args.torso: [left_shoulder, right_hip])"
            )
        self.save_hyperparameters(ignore=list(NOT_HPARAMS))
        self.torso = skeleton.torso
        self.sigma = sigma
        self.samples_per_image = samples_per_image
        self.error_stats_images = error_stats_images
        self.image_hr_factor = int(image_hr_factor) if num_stages >= 2 else 1
        self.refiners = nn.ModuleList(
            PoseRegressor(copy.deepcopy(trunk), self.num_joints, head)
            for _ in range(num_stages - 1)
        )
        if num_stages >= 2:
            self.freeze(*self.previous_stages())
        K = self.num_joints
        self.register_buffer("error_mean", torch.zeros(max(num_stages - 1, 1), K, 2))
        self.register_buffer("error_cov", torch.zeros(max(num_stages - 1, 1), K, 2, 2))
        # Set when this fit estimated stage S-1's statistics: what ErrorStatisticsWriter writes.
        self.error_statistics_record: dict | None = None

    # --- frozen stages ------------------------------------------------------------------
    def previous_stages(self) -> list[str]:
        """The parts of stages 1..S-1 (``get_submodule`` paths): frozen here, and what
        ``init_checkpoint`` initialises."""
        refiners = [f"refiners.{i}" for i in range(self.num_stages - 2)]
        return ["trunk", "head", *refiners]

    # --- inference ----------------------------------------------------------------------
    def _image_hr(self, batch: Batch) -> torch.Tensor:
        if "image_hr" not in batch:
            raise ValueError(
                "DeepPoseCascade with num_stages >= 2 needs the high-resolution view "
                "image_hr: leave data.highres_factor unset (it follows "
                f"model.image_hr_factor={self.image_hr_factor}) or set it to that"
            )
        return batch["image_hr"]

    def refine_stage(
        self, s: int, image_hr: torch.Tensor, previous: torch.Tensor, input_size: int
    ) -> torch.Tensor:
        """Stage ``s`` (1-based, >= 2) applied to all joints of the stage s-1 estimate (Eq. 6).

        Shapes:
            image_hr: (B, 3, H, W). previous: (B, K, 2). returns (B, K, 2).
            input_size: side of the stage network's input (that of the stage-1 view).
        """
        B, K, _ = previous.shape
        every = torch.ones(B, K, dtype=torch.bool, device=previous.device)
        diam = segment_lengths(previous, every, self.torso).clamp(min=MIN_SIDE / self.sigma)
        boxes = square_boxes(previous, self.sigma * diam)  # (B, K, 4)
        crops = crop_windows(image_hr, boxes, input_size)  # (B*K, 3, S, S)
        out = self.refiners[s - 2](crops).view(B, K, K, 2)  # (B, crop joint, output joint, 2)
        own = torch.arange(K, device=out.device)
        displacement = out[:, own, own]  # (B, K, 2): joint i read from its own crop
        return decode_in_boxes(displacement, boxes)

    def stage_estimates(self, batch: Batch, depth: int | None = None) -> list[torch.Tensor]:
        """Estimates after each of the first ``depth`` stages (default all), (B, K, 2) each."""
        depth = self.num_stages if depth is None else depth
        image = batch["image"]  # (B, 3, S, S)
        estimates = [self.regress(image)]
        for s in range(2, depth + 1):
            estimates.append(
                self.refine_stage(s, self._image_hr(batch), estimates[-1], image.shape[-1])
            )
        return estimates

    def inference_modules(self) -> list[str]:
        """Stage 1's trunk, and every later stage's regressor (on the B x K crops)."""
        return ["trunk", *(f"refiners.{i}" for i in range(self.num_stages - 1))]

    def estimate_view(self, batch: Batch) -> Estimate:
        return {"stages": self.stage_estimates(batch)}

    # --- training -----------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.num_stages == 1:
            return super().training_step(batch, batch_idx)  # DeepPose stage 1
        loss = self.refinement_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def refinement_loss(self, batch: Batch) -> torch.Tensor:
        """Loss of the last stage on simulated sub-images (DeepPose §3.2, Eq. 7-8)."""
        image_hr = self._image_hr(batch)
        joints_true = batch["keypoints_norm"]  # (B, K, 2)
        labelled = batch["labelled"]  # (B, K)
        B, K, _ = joints_true.shape
        M = self.samples_per_image
        diam = segment_lengths(joints_true, labelled, self.torso)  # (B,) diam(y), 0 if unknown
        has_torso = diam > 1e-4
        start = torch.randint(K, (B, 1), device=joints_true.device)
        joints = (start + torch.arange(M, device=joints_true.device)) % K  # (B, M)
        stats = self.num_stages - 2
        delta = sample_displacements(self.error_mean[stats], self.error_cov[stats], joints)
        target_joints = joints_true.gather(1, joints[..., None].expand(B, M, 2))  # (B, M, 2)
        diam = torch.where(has_torso, diam, torch.ones_like(diam))
        centres = target_joints + delta * diam[:, None, None]
        boxes = square_boxes(centres, self.sigma * diam)  # (B, M, 4)
        target = encode_in_boxes(target_joints, boxes)  # (B, M, 2), Eq. 8
        crops = crop_windows(image_hr, boxes, batch["image"].shape[-1])  # (B*M, 3, S, S)
        out = self.refiners[-1](crops).view(B, M, K, 2)
        pred = out.gather(2, joints[..., None, None].expand(B, M, 1, 2))[:, :, 0]  # (B, M, 2)
        weight = labelled.gather(1, joints) & has_torso[:, None]  # (B, M)
        return coordinate_l2_loss(pred, target, weight)

    # --- error statistics ---------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Load stages 1..S-1 from ``init_checkpoint`` (the base class's mechanism), then
        estimate stage S-1's error statistics unless the checkpoint brought them."""
        super().on_fit_start()
        if self.num_stages == 1:
            return
        if self.init_checkpoint is None and self.trainer.ckpt_path is None:
            rank_zero_warn(
                f"training stage {self.num_stages} on untrained stages 1..{self.num_stages - 1}"
                ": set model.init_checkpoint (fine for smoke tests only)"
            )
        if not bool(self.error_cov[self.num_stages - 2].any()):
            self.estimate_error_statistics()

    def init_checkpoint_parts(self) -> dict[str, str]:
        """Stages 1..S-1, each under its own name (a ``DeepPose`` checkpoint is stage 1);
        stage 1's trunk alone for a one-stage cascade, as ``DeepPose``."""
        if self.num_stages == 1:
            return super().init_checkpoint_parts()
        return {f"{name}.": name for name in self.previous_stages()}

    def load_init_checkpoint(self, path: str) -> dict[str, torch.Tensor]:
        """Stages 1..S-1 (:meth:`PoseEstimator.load_init_checkpoint`) and the error statistics
        the checkpoint already has for them.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: it is not a checkpoint, or holds neither a ``DeepPose`` nor a
                deep-enough cascade.
        """
        state = super().load_init_checkpoint(path)
        # Error statistics already estimated for earlier stages (rows of non-zero covariance).
        if "error_cov" in state:
            for row in range(min(state["error_cov"].shape[0], self.num_stages - 1)):
                if state["error_cov"][row].any():
                    self.error_mean[row] = state["error_mean"][row]
                    self.error_cov[row] = state["error_cov"][row]
        return state

    @torch.no_grad()
    def estimate_error_statistics(self) -> None:
        """Estimate stage S-1's per-joint error distribution on training images (Eq. 7)."""
        loader = self.trainer.datamodule.unaugmented_train_dataloader(self.error_stats_images)
        n = len(loader.dataset)
        was_training = self.training
        self.eval()
        errors, valid = [], []
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            estimate = self.stage_estimates(batch, depth=self.num_stages - 1)[-1]
            truth, labelled = batch["keypoints_norm"], batch["labelled"]
            diam = segment_lengths(truth, labelled, self.torso)  # (B,), 0 if unknown
            errors.append((estimate - truth) / diam.clamp(min=1e-4)[:, None, None])
            valid.append(labelled & (diam > 1e-4)[:, None])
        self.train(was_training)
        mean, cov = error_statistics(torch.cat(errors), torch.cat(valid))
        s = self.num_stages - 1
        self.error_mean[s - 1] = mean
        self.error_cov[s - 1] = cov
        self.error_statistics_record = {
            "stage": s,
            "unit": "torso diameters of the true pose, box-normalised frame",
            "joints_counted": int(torch.cat(valid).sum()),
            "images": n,
            "joints": self.joint_names,
            "mean": mean.tolist(),
            "cov": cov.tolist(),
        }
