"""DeepPose cascade of pose regressors (Toshev & Szegedy 2014, §3.2).

The cascade holds its stages, ``stages[s - 1]`` for stage s, each a :class:`PoseRegressor`
(a trunk and a regression head, with its own parameters; the configured trunk is stage 1's and
each later stage's is a copy of it). Stage 1 regresses all joints from the whole box: it is
:class:`~lightning_pose.models.deeppose.DeepPose`'s network and loss, so a ``DeepPose``
checkpoint (``trunk.``, ``head.``) initialises stage 1 and ``num_stages=1`` trains what
``DeepPose`` trains. Each stage s >= 2 refines joint i from a sub-image centred on the stage
s-1 estimate, side ``sigma * diam(y^{s-1})``, regressing the joint's displacement there
(Eq. 6). Stage s trains on boxes around the true joints displaced by samples of stage s-1's
per-joint error distribution on the training set (Eq. 7-8), with stages < s frozen.

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
from torch import Tensor, nn

from lightning_pose.codecs.box import decode_in_boxes, encode_in_boxes, square_boxes
from lightning_pose.codecs.crop import crop_windows
from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import Batch, Estimate, PoseEstimator, trunk_features
from lightning_pose.models.cascade_errors import error_statistics, sample_displacements
from lightning_pose.models.heads import RegressionHead, RegressionHeadFactory
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.trunks import Trunk

MIN_SIDE = 0.02  # smallest sub-image side at inference, box-normalised (a degenerate torso)


class PoseRegressor(nn.Module):
    """Trunk + regression head: image -> box-normalised joints ``psi(x; theta)``, one stage of
    the cascade (DeepPose §3, Eq. 2: ``y* = N^-1(psi(N(x); theta))``; the head outputs 2K
    numbers).

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

    def forward(self, image: Tensor) -> Tensor:
        return self.head(trunk_features(self.trunk, image))  # (B, K, 2)


class DeepPoseCascade(PoseEstimator):
    """DeepPose with ``num_stages`` stages; trains the last one, the others frozen.

    Stage s is ``stages[s - 1]``, a :class:`PoseRegressor`: stage 1 on the configured trunk
    (:class:`DeepPose`'s network), every later stage on a copy of it.

    Args:
        trunk: the stage trunk (stage 1's; deep-copied for each later stage).
        skeleton: the dataset's skeleton; its ``torso`` gives diam(y).
        head: the regression head factory of every stage (see ``PoseRegressor``).
        num_stages: cascade depth S (1 = stage 1 alone, trained as :class:`DeepPose`).
        sigma: sub-image side in torso diameters (paper: 1.0 for FLIC, 2.0 for LSP).
        samples_per_image: sub-images drawn per training image and step (joints cycled from a
            random start). Over E epochs an image yields E x this many boxes (paper: ~40).
        init_checkpoint: checkpoint of the first S-1 stages: a ``DeepPose`` (S = 2; its
            ``trunk.`` and ``head.`` are stage 1) or a ``DeepPoseCascade`` with >= S-1 stages
            (for S = 1, the trunk of any family's checkpoint); loaded (``weights_only=True``) at the
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
    PDJ-versus-distance curve per stage (DeepPose Fig. 5). The training term is
    ``regression`` (stage 1, as :class:`DeepPose`) or ``refinement`` (stage S >= 2).

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
        # The stages hold the trunks: the base class holds none (``features`` is each stage's).
        super().__init__(
            skeleton=skeleton,
            num_stages=num_stages,
            flip_test=flip_test,
            init_checkpoint=init_checkpoint,
            optimizer=optimizer,
            scheduler=scheduler,
            evaluation=evaluation,
        )
        self.torso = skeleton.torso
        self.sigma = sigma
        self.samples_per_image = samples_per_image
        self.error_stats_images = error_stats_images
        self.image_hr_factor = int(image_hr_factor) if num_stages >= 2 else 1
        self.stages = nn.ModuleList(
            PoseRegressor(trunk if s == 1 else copy.deepcopy(trunk), self.num_joints, head)
            for s in range(1, num_stages + 1)
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
        """Stages 1..S-1 (``get_submodule`` paths ``stages.{s - 1}``): frozen here, and what
        ``init_checkpoint`` initialises."""
        return [f"stages.{i}" for i in range(self.num_stages - 1)]

    # --- inference ----------------------------------------------------------------------
    def _image_hr(self, batch: Batch) -> Tensor:
        if "image_hr" not in batch:
            raise ValueError(
                "DeepPoseCascade with num_stages >= 2 needs the high-resolution view "
                "image_hr: leave data.highres_factor unset (it follows "
                f"model.image_hr_factor={self.image_hr_factor}) or set it to that"
            )
        return batch["image_hr"]

    def refine_stage(self, s: int, image_hr: Tensor, previous: Tensor, input_size: int) -> Tensor:
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
        out = self.stages[s - 1](crops).view(B, K, K, 2)  # (B, crop joint, output joint, 2)
        own = torch.arange(K, device=out.device)
        displacement = out[:, own, own]  # (B, K, 2): joint i read from its own crop
        return decode_in_boxes(displacement, boxes)

    def stage_estimates(self, batch: Batch, depth: int | None = None) -> list[Tensor]:
        """Estimates after each of the first ``depth`` stages (default all), (B, K, 2) each."""
        depth = self.num_stages if depth is None else depth
        image = batch["image"]  # (B, 3, S, S)
        estimates = [self.stages[0](image)]  # (B, K, 2)
        for s in range(2, depth + 1):
            estimates.append(
                self.refine_stage(s, self._image_hr(batch), estimates[-1], image.shape[-1])
            )
        return estimates

    def inference_modules(self) -> list[str]:
        """Stage 1's trunk, and every later stage's regressor (on the B x K crops)."""
        return ["stages.0.trunk", *(f"stages.{i}" for i in range(1, self.num_stages))]

    def estimate_view(self, batch: Batch) -> Estimate:
        return {"stages": self.stage_estimates(batch)}

    # --- training -----------------------------------------------------------------------
    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """``regression`` for a one-stage cascade (stage 1, as :class:`DeepPose`), else
        ``refinement`` (:meth:`refinement_loss`, the last stage)."""
        if self.num_stages == 1:
            pred = self.stages[0](batch["image"])  # (B, K, 2)
            labelled = batch["labelled"]
            return {"regression": coordinate_l2_loss(pred, batch["keypoints_norm"], labelled)}
        return {"refinement": self.refinement_loss(batch)}

    def loss_weights(self) -> dict[str, float]:
        return {"regression": 1.0, "refinement": 1.0}

    def refinement_loss(self, batch: Batch) -> Tensor:
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
        out = self.stages[-1](crops).view(B, M, K, 2)
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

    def init_checkpoint_parts(self) -> dict[str, tuple[str, ...]]:
        """Stages 1..S-1, each from a cascade's ``stages.{s - 1}.``, stage 1 also from a
        ``DeepPose`` (its ``trunk.`` and ``head.``); for a one-stage cascade stage 1's trunk
        alone, as ``DeepPose`` (a cascade's stage-1 trunk, or any family's trunk)."""
        if self.num_stages == 1:
            return {"stages.0.trunk": ("stages.0.trunk.", "trunk.")}
        parts = {
            "stages.0.trunk": ("stages.0.trunk.", "trunk."),
            "stages.0.head": ("stages.0.head.", "head."),
        }
        return parts | {name: (f"{name}.",) for name in self.previous_stages()[1:]}

    def load_init_checkpoint(self, path: str) -> dict[str, Tensor]:
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
