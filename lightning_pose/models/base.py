"""The base class of every model family, :class:`PoseEstimator`, and what all of them share.

A family (DeepPose stage 1, the cascade, heatmap+refine, multi-task, SimCC) is its heads, its
estimate and its losses: its constructor builds its heads (on ``self.trunk``, the trunk the base
class holds; the main head is ``self.head``) and passes the shared arguments to
``PoseEstimator.__init__`` by keyword; it implements :meth:`PoseEstimator.estimate_view` (its
estimate after each stage, from one view of the input), :meth:`PoseEstimator.losses` (its named
training terms) and :meth:`PoseEstimator.loss_weights` (their weights). The base class owns:

* the feature call (:meth:`PoseEstimator.features`: the trunk's input normalisation, then the
  trunk) and the one ``training_step``: the weighted sum of the terms, logged as ``train/loss``,
  and each term (:meth:`PoseEstimator.training_step`);
* the hyperparameters: ``save_hyperparameters`` once, of the family's constructor arguments;
* ``init_checkpoint``: weights loaded at the start of ``fit`` (not when resuming), part by part
  as :meth:`PoseEstimator.init_checkpoint_parts` says, read with ``weights_only=True``;
* frozen parts (:meth:`PoseEstimator.freeze`): no gradient, and in eval mode whatever the
  model's mode, so their batch-norm statistics and dropout stay as trained;
* ``flip_test``: the estimate averaged with that of the mirrored input
  (:meth:`PoseEstimator.flip_averaged`);
* the callbacks every fit needs (:meth:`PoseEstimator.configure_callbacks`: the generator state
  in checkpoints, :class:`~lightning_pose.callbacks.rng_state.RNGStateCheckpoint`).

Validation, test and predict are shared: every stage is scored
(``val/stage{s}/...`` when there are several), the final stage under the plain names
(``val/pdj@0.2``, ``val/pdj@0.2/wrist``, ``val/pckh@0.5``, ``val/pcp@0.5``) with what they
counted (``val/count/images``, ``val/count/pdj`` joints, ...), all in original-image pixels,
with the thresholds of one :class:`EvaluationProtocol`; ``val/loss`` is the labelled-joint L2
of the final estimate in the box-normalised frame (DeepPose §3, Eq. 3), comparable across
variants.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import ClassVar, NotRequired, TypedDict

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lightning_pose.callbacks.rng_state import RNGStateCheckpoint
from lightning_pose.codecs.box import decode
from lightning_pose.data.dataset import Batch
from lightning_pose.data.skeleton import Skeleton
from lightning_pose.metrics.protocol import (
    EvaluationProtocol,
    StageMetrics,
    earlier_stage_prefix,
)
from lightning_pose.models.losses import coordinate_l2_loss
from lightning_pose.models.trunks import Trunk
from lightning_pose.runtime.checkpoints import load_partial_weights, read_state_dict
from lightning_pose.runtime.precision import compute_record


def trunk_features(trunk: Trunk, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
    """The feature maps of ``trunk`` for ``image``: the trunk's input normalisation, then the
    trunk. The one home of this call (:meth:`PoseEstimator.features`, the cascade's stages).

    Shapes:
        image (B, 3, S, S) float in [0, 1] -> (B, C, h, w); with ``pyramid``, the trunk's
        pyramid maps, finest first (``Trunk.pyramid``).
    """
    x = trunk.normalise(image)
    return trunk(x, pyramid=True) if pyramid else trunk(x)


def mirror_keypoints(keypoints_norm: Tensor, flip_permutation: list[int]) -> Tensor:
    """Box-normalised joints of an image -> those of its horizontal mirror: x negated (the box
    frame is centred, so mirroring the ``S x S`` input maps x to -x exactly) and left and right
    swapped (joint k of the result is joint ``flip_permutation[k]`` of the input). An
    involution.

    Shapes:
        keypoints_norm (B, K, 2), flip_permutation K indices -> (B, K, 2).
    """
    return keypoints_norm[:, flip_permutation] * keypoints_norm.new_tensor([-1.0, 1.0])


def flip_batch(batch: Batch) -> Batch:
    """The batch with its images (``image`` and, where present, ``image_hr``) mirrored
    horizontally; the other entries as they are (no model reads them to estimate).

    Shapes:
        image (B, 3, H, W) -> the same, column j -> W - 1 - j.
    """
    out = dict(batch)
    for key in ("image", "image_hr"):
        if key in batch:
            out[key] = batch[key].flip(-1)
    return out


class Estimate(TypedDict):
    """A model's output for a batch.

    Shapes:
        stages: S tensors (B, K, 2), box-normalised, stage 1 ... S; the last is the output.
        scores: (B, K) per-joint confidence, where the model has one (heatmap maxima).
    """

    stages: list[Tensor]
    scores: NotRequired[Tensor]


class PoseEstimator(pl.LightningModule):
    """Base class: the trunk and its feature call, the training step, hyperparameters, weight
    loading, flip test, stages, evaluation in original-image pixels (PDJ, PCKh, PCP), predict.

    A family implements :meth:`estimate_view`, :meth:`losses` and :meth:`loss_weights`, and
    passes every argument below by keyword (they are keyword-only).

    Args:
        skeleton: the dataset's joints, flip pairs, torso, head segment and limbs (linked
            from ``data.skeleton``).
        num_stages: S, the number of estimates :meth:`estimate` returns.
        optimizer: optimiser factory, called with :meth:`trainable_parameters`.
        scheduler: LR scheduler factory, called with the optimiser; None = constant LR.
            ``ReduceLROnPlateau`` monitors ``val/loss``.
        evaluation: thresholds of the reported metrics (linked from the top-level
            ``evaluation`` group); None = the defaults of :class:`EvaluationProtocol`.
        trunk: the family's shared trunk, held as ``self.trunk`` (None for a family without
            one).
        flip_test: at evaluation and predict, average the estimate with that of the
            horizontally mirrored input, joints swapped through the skeleton's flip pairs
            (:meth:`flip_averaged`). An evaluation switch, not saved with the weights: give it
            at ``validate``/``test``/``predict`` on any checkpoint.
        init_checkpoint: a checkpoint whose parts (:meth:`init_checkpoint_parts`) initialise
            this model's at the start of ``fit``, read with ``weights_only=True``; ignored when
            resuming (``ckpt_path``), whose own weights win.

    Hyperparameters: the family's constructor arguments (those of the class that calls this
    ``__init__``, and of its subclasses), saved here once, less :attr:`not_hparams`.

    Raises:
        ValueError: a skeleton without joints, or ``num_stages < 1``.
    """

    # Estimate entries, besides the stages, that ``predict_step`` returns where present (the
    # ``PredictionWriter`` writes every array it returns).
    prediction_keys: ClassVar[tuple[str, ...]] = ("scores",)
    # The high-resolution view the model reads beside ``image``: ``image_hr`` of side
    # ``image_hr_factor`` x ``input_size`` (1: none). The data module serves what the model asks
    # (``PoseDataModule.match_model``); the DeepPose cascade's later stages ask for one.
    image_hr_factor: int = 1
    # Constructor arguments that are objects, not hyperparameters: the skeleton and the
    # protocol are recorded as plain dicts under the checkpoint's "pose" key instead (see
    # ``on_save_checkpoint``), so checkpoints load with ``weights_only=True`` and LightningCLI's
    # re-parsing of a checkpoint's hyperparameters (``--ckpt_path``) never sees an object; the
    # trunk, heads and factories are modules or callables. ``flip_test`` is an evaluation
    # switch, not a property of the weights: kept out too, so that `validate --ckpt_path=...
    # --model.init_args.flip_test=true` is not overridden by the checkpoint's recorded value.
    # A family with more factory arguments extends it.
    not_hparams: ClassVar[tuple[str, ...]] = (
        "trunk",
        "head",
        "optimizer",
        "scheduler",
        "skeleton",
        "evaluation",
        "flip_test",
    )
    # Entries of ``losses()`` that are logged (``train/<name>``) but never part of the loss:
    # diagnostics such as the heat-map model's share of joints inside their windows.
    monitors: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        skeleton: Skeleton,
        num_stages: int = 1,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        evaluation: EvaluationProtocol | None = None,
        trunk: Trunk | None = None,
        flip_test: bool = False,
        init_checkpoint: str | None = None,
    ) -> None:
        super().__init__()
        # The calling family's constructor arguments (its frame and its subclasses'), not this
        # method's: they are what LightningCLI re-parses from a checkpoint.
        caller = inspect.currentframe().f_back
        self.save_hyperparameters(ignore=list(self.not_hparams), frame=caller)
        if skeleton.num_joints == 0:
            raise ValueError("model.skeleton must have at least one joint")
        if num_stages < 1:
            raise ValueError(f"model.num_stages must be >= 1, got {num_stages}")
        self.skeleton = skeleton
        self.joint_names = list(skeleton.joints)
        self.num_joints = skeleton.num_joints
        self.num_stages = num_stages
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.evaluation = evaluation or EvaluationProtocol()
        self.flip_test = bool(flip_test)
        self.flip_permutation = skeleton.flip_permutation()
        self.init_checkpoint = init_checkpoint
        self._frozen: list[str] = []  # get_submodule paths of the frozen parts
        self.trunk = trunk
        self.stage_metrics = nn.ModuleDict(
            {
                split: nn.ModuleList(
                    StageMetrics(skeleton, self.evaluation) for _ in range(num_stages)
                )
                for split in ("val", "test")
            }
        )
        self.eval_loss = nn.ModuleDict({split: MeanMetric() for split in ("val", "test")})
        # split -> stage -> PDJ at each curve threshold, set on every process at the end of
        # each evaluation epoch and written by ``callbacks.PDJCurveWriter``.
        self.pdj_curves: dict[str, dict[int, np.ndarray]] = {}
        # split -> this process's per-image sums and counts, one dict per batch (``index``
        # and ``StageMetrics.per_image``: the final stage's keys plain, an earlier stage's
        # prefixed, ``metrics.protocol.earlier_stage_prefix``); recorded only where a callback
        # sets it to a dict (``callbacks.PerImageScoresWriter``), apart from the logged metrics.
        self.per_image_scores: dict[str, list[dict[str, Tensor]]] | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record what the weights mean, in plain types: ``checkpoint["pose"]`` holds the
        skeleton (joint names, flip pairs, torso, head, limbs), the evaluation protocol and
        what trained the weights (``"compute"``, when a Trainer saves it: the Trainer's
        precision, accelerator, CPU and its native-bf16 feature;
        :func:`lightning_pose.runtime.precision.compute_record`)."""
        checkpoint["pose"] = {
            "skeleton": self.skeleton.to_dict(),
            "evaluation": self.evaluation.to_dict(),
        }
        if self._trainer is not None:  # None: saved by hand, outside a Trainer
            trainer = self._trainer
            checkpoint["pose"]["compute"] = compute_record(trainer.precision, trainer.accelerator)

    def configure_callbacks(self) -> list[pl.Callback]:
        """The callbacks every fit of every family needs, whatever the configuration: the
        generator state in checkpoints (:class:`RNGStateCheckpoint`), so that a resumed fit
        continues as the run it resumes."""
        return [RNGStateCheckpoint()]

    # --- weight loading and frozen parts ------------------------------------------------
    def init_checkpoint_parts(self) -> dict[str, tuple[str, ...]]:
        """What ``init_checkpoint`` initialises: ``get_submodule`` path of this model -> the
        checkpoint prefixes it is read from, the first one present wins. Default: the trunk
        alone (``{"trunk": ("trunk.",)}``), e.g. a trunk pre-trained by another family; a
        family overrides it (the cascade's earlier stages, the heat-map model's coarse
        model)."""
        return {"trunk": ("trunk.",)}

    def load_init_checkpoint(self, path: str) -> dict[str, Tensor]:
        """Load every part of :meth:`init_checkpoint_parts` from the checkpoint at ``path``
        (``weights_only=True``, one read), each strictly. Returns the checkpoint's state dict,
        for a family that reads more of it (the cascade's error statistics).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a checkpoint, a part missing under its prefix, or weights that do
                not fit the part (names the key ``model.init_checkpoint``).
        """
        state = read_state_dict(path, key="model.init_checkpoint")
        for name, prefixes in self.init_checkpoint_parts().items():
            try:
                load_partial_weights(self.get_submodule(name), state, list(prefixes))
            except ValueError as err:
                raise ValueError(f"{err} (in {path})") from err
        return state

    def on_fit_start(self) -> None:
        """Load ``init_checkpoint``, unless the fit resumes from ``ckpt_path``."""
        if self.init_checkpoint is not None and self.trainer.ckpt_path is None:
            self.load_init_checkpoint(self.init_checkpoint)

    def freeze(self, *names: str) -> None:
        """Freeze the named parts (``get_submodule`` paths): no gradient, left out of
        :meth:`trainable_parameters`, and kept in eval mode by :meth:`train`."""
        for name in names:
            self.get_submodule(name).requires_grad_(False)
            self._frozen.append(name)

    def train(self, mode: bool = True) -> PoseEstimator:
        """``nn.Module.train``, the frozen parts (:meth:`freeze`) kept in eval mode: their
        batch-norm statistics and dropout stay as trained."""
        super().train(mode)
        for name in self._frozen:
            self.get_submodule(name).eval()
        return self

    def on_before_backward(self, loss: Tensor) -> None:
        """Stop a diverging fit before its non-finite loss reaches the weights: the optimiser
        never steps on it, so ``last.ckpt`` keeps the last finite state.

        Raises:
            FloatingPointError: the training loss is NaN or infinite (names the step).
        """
        if not torch.isfinite(loss.detach()).all():
            raise FloatingPointError(
                f"non-finite training loss ({loss.detach().float().item()}) at step "
                f"{self.trainer.global_step} (epoch {self.current_epoch}, batch "
                f"{self.trainer.fit_loop.epoch_loop.batch_idx}): the fit diverged and was "
                "stopped; last.ckpt holds the last finite state. Lower the learning rate "
                "(model.init_args.optimizer) or raise the warm-up, then resume or restart"
            )

    # --- to implement -------------------------------------------------------------------
    def estimate_view(self, batch: Batch) -> Estimate:
        """The estimate after each stage (see :class:`Estimate`) from the batch's images as
        they are, without flip test.

        Shapes:
            batch["image"]: (B, 3, S, S) float in [0, 1] (and ``image_hr`` where used).
        """
        raise NotImplementedError

    def losses(self, batch: Batch) -> dict[str, Tensor]:
        """The family's training terms, each a scalar, unweighted and named: the training loss
        is their weighted sum (:meth:`loss_weights`). An entry named in :attr:`monitors` is a
        diagnostic, logged and never summed.

        Shapes:
            batch: a training batch (``image`` (B, 3, S, S), ``keypoints_norm`` (B, K, 2),
            ``labelled`` (B, K), ...) -> ``{name: () tensor}``.
        """
        raise NotImplementedError

    def loss_weights(self) -> dict[str, float]:
        """The weight of each term of :meth:`losses` in the training loss: every entry but the
        :attr:`monitors` needs one. A weight of 0 keeps the term computed and logged while it
        adds nothing (the heat-map model's coarse term in its fine phase)."""
        raise NotImplementedError

    def mirror_estimate(self, estimate: Estimate) -> Estimate:
        """The estimate of a mirrored input mapped back to the original frame, entry by entry:
        ``stages`` through :func:`mirror_keypoints`, per-joint ``scores`` permuted. A family
        whose estimate has other entries maps them too (or flip test refuses it).

        Raises:
            ValueError: an entry this method does not know how to mirror.
        """
        out: dict[str, object] = {}
        for key, value in estimate.items():
            if key == "stages":
                out[key] = [mirror_keypoints(s, self.flip_permutation) for s in value]
            elif key == "scores":
                out[key] = value[:, self.flip_permutation]  # (B, K)
            else:
                raise ValueError(
                    f"{type(self).__name__}: flip_test cannot mirror the estimate's {key!r}; "
                    "map it in mirror_estimate"
                )
        return out  # type: ignore[return-value]

    def inference_modules(self) -> list[str]:
        """Names (``get_submodule`` paths) of the networks that do the model's arithmetic at
        inference, each a function of one image tensor: what
        :class:`~lightning_pose.callbacks.CompiledInference` compiles. None here; each
        variant names its own."""
        return []

    # --- shared -------------------------------------------------------------------------
    def features(self, image: Tensor, pyramid: bool = False) -> Tensor | list[Tensor]:
        """The trunk's feature maps of ``image`` (:func:`trunk_features` of ``self.trunk``).

        Shapes:
            image (B, 3, S, S) float in [0, 1] -> (B, C, h, w), or with ``pyramid`` the
            trunk's pyramid maps, finest first.
        """
        return trunk_features(self.trunk, image, pyramid)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """The training loss: ``sum(loss_weights()[name] * term)`` over the terms of
        :meth:`losses` (in their order), logged as ``train/loss`` (the progress bar's), each
        term as ``train/loss_<name>`` (unweighted) and each monitor as ``train/<name>``.

        Raises:
            ValueError: a term without a weight, or no term at all.
        """
        losses = self.losses(batch)
        weights = self.loss_weights()
        terms = {name: value for name, value in losses.items() if name not in self.monitors}
        unweighted = sorted(set(terms) - set(weights))
        if unweighted or not terms:
            raise ValueError(
                f"{type(self).__name__}.losses returned the terms {sorted(terms)}; "
                f"loss_weights() gives weights for {sorted(weights)} (missing {unweighted})"
            )
        loss = sum(weights[name] * value for name, value in terms.items())
        batch_size = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        logged = {
            f"train/{name}" if name in self.monitors else f"train/loss_{name}": value.detach()
            for name, value in losses.items()
        }
        self.log_dict(logged, batch_size=batch_size)
        return loss

    def estimate(self, batch: Batch) -> Estimate:
        """The estimate after each stage (see :class:`Estimate`): :meth:`estimate_view`, or
        with ``flip_test`` outside training :meth:`flip_averaged`.

        Shapes:
            batch["image"]: (B, 3, S, S) float in [0, 1] (and ``image_hr`` where used).
        """
        if self.flip_test and not self.training:
            return self.flip_averaged(batch)
        return self.estimate_view(batch)

    def flip_averaged(self, batch: Batch) -> Estimate:
        """Flip test: the mean of the estimate and of the mirrored input's estimate mapped back
        (:meth:`mirror_estimate`), every stage and score: test-time horizontal flipping on the
        box-normalised joints, so that it applies to the regression families too. The
        heat-map family averages its heat-maps instead.

        Shapes:
            as :meth:`estimate`.
        """
        estimate = self.estimate_view(batch)
        mirrored = self.mirror_estimate(self.estimate_view(flip_batch(batch)))
        out: dict[str, object] = {}
        for key, value in estimate.items():
            if key == "stages":
                out[key] = [0.5 * (a + b) for a, b in zip(value, mirrored[key], strict=True)]
            else:
                out[key] = 0.5 * (value + mirrored[key])
        return out  # type: ignore[return-value]

    def forward(self, batch: Batch) -> Tensor:
        """The final estimate, box-normalised: (B, K, 2)."""
        return self.estimate(batch)["stages"][-1]

    def estimate_float32(self, batch: Batch) -> Estimate:
        """:meth:`estimate` with its floating tensors (stages, scores) in float32: under
        ``bf16-mixed`` (``trainer.precision``) the heads' outputs are bfloat16, whose 8-bit
        mantissa would round box-normalised coordinates to about 1/500 of the box before
        decoding to pixels, and which NumPy cannot hold (predictions files)."""
        estimate = self.estimate(batch)
        out = dict(estimate)
        out["stages"] = [stage.float() for stage in estimate["stages"]]
        for key, value in estimate.items():
            if isinstance(value, Tensor) and value.is_floating_point():
                out[key] = value.float()
        return out  # type: ignore[return-value]

    def _evaluate(self, batch: Batch, split: str) -> Estimate:
        """Update the split's metrics with one batch; returns the estimate (for a subclass that
        scores more of it). Inside ``fit`` the validation forward runs in fp32 whatever the
        training precision (:meth:`_evaluation_autocast`)."""
        with self._evaluation_autocast(batch["image"].device.type):
            estimate = self.estimate_float32(batch)
        stages = estimate["stages"]
        if len(stages) != self.num_stages:
            raise RuntimeError(
                f"{type(self).__name__}.estimate returned {len(stages)} stages, expected "
                f"num_stages={self.num_stages}"
            )
        scores = {"index": batch["index"]}
        for s, (metrics, keypoints_norm) in enumerate(
            zip(self.stage_metrics[split], stages, strict=True), start=1
        ):
            pred_px = decode(keypoints_norm, batch["box"])  # (B, K, 2) pixels
            metrics.update(pred_px, batch)
            if self.per_image_scores is not None:  # the final stage's plain, earlier prefixed
                prefix = "" if s == self.num_stages else earlier_stage_prefix(s)
                scores |= {prefix + k: v for k, v in metrics.per_image(pred_px, batch).items()}
        if self.per_image_scores is not None:
            self.per_image_scores.setdefault(split, []).append(scores)
        labelled = batch["labelled"]
        loss = coordinate_l2_loss(stages[-1], batch["keypoints_norm"], labelled)
        self.eval_loss[split].update(loss, weight=labelled.sum())
        return estimate

    def _evaluation_autocast(self, device_type: str) -> contextlib.AbstractContextManager:
        """fp32 for the validation that ``fit`` runs between training steps: the training
        precision (``bf16-mixed`` under ``trainer.precision: auto``) is a speed lever, and a
        bf16 forward moved the budget recipe's keypoints by up to 238 px against fp32, so the
        scores that pick the best checkpoint and fill ``val_metrics.md`` are fp32. Lightning
        keeps the weights fp32 under ``bf16-mixed``; switching autocast off makes the forward
        fp32 end to end. Outside ``fit`` (``validate``/``test``/``predict``) the Trainer's
        precision is the user's choice (fp32 unless asked otherwise) and is left alone."""
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == "fit":
            return torch.autocast(device_type=device_type, enabled=False)
        return contextlib.nullcontext()

    def _log_evaluation(self, split: str) -> None:
        """Compute (on every process: the metrics reduce across them), log, reset."""
        stage_metrics = self.stage_metrics[split]
        final = stage_metrics[-1].compute()  # per group too
        values = {f"{split}/{k}": v for k, v in (final | stage_metrics[-1].counts()).items()}
        if self.num_stages > 1:
            pooled_keys = {k for d in stage_metrics[-1].declarations for k in d.keys()}
            for s, metrics in enumerate(stage_metrics, start=1):
                if s < self.num_stages:
                    pooled = metrics.compute(groups=False)
                else:  # the final stage, computed above
                    pooled = {k: v for k, v in final.items() if k in pooled_keys}
                values |= {f"{split}/stage{s}/{k}": v for k, v in pooled.items()}
        values[f"{split}/loss"] = self.eval_loss[split].compute()
        self.pdj_curves[split] = {
            s: metrics.pdj_curve().cpu().numpy() for s, metrics in enumerate(stage_metrics, 1)
        }
        self.log_reduced(values)
        for metrics in stage_metrics:
            metrics.reset()
        self.eval_loss[split].reset()

    def log_reduced(self, values: dict[str, Tensor | float]) -> None:
        """Log evaluation values that torchmetrics already reduced over the processes, so they
        are equal on every one. ``sync_dist=True`` averages equal values, which leaves them
        unchanged, and spares the console Lightning's warning, once per key under DDP, that
        epoch-level values should be synchronised."""
        self.log_dict({key: float(value) for key, value in values.items()}, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        """Returns ``index (B,)``, ``keypoints_px (B, K, 2)`` original-image pixels, the boxes
        ``boxes_px (B, 4)`` they were estimated from and the entries of
        :attr:`prediction_keys` the estimate has (``scores (B, K)``); floats in float32 (also
        under ``bf16-mixed``: :meth:`estimate_float32`)."""
        estimate = self.estimate_float32(batch)
        out = {
            "index": batch["index"],
            "keypoints_px": decode(estimate["stages"][-1], batch["box"]),
            "boxes_px": batch["box"],
        }
        for key in self.prediction_keys:
            if key in estimate:
                out[key] = estimate[key]
        return out

    def trainable_parameters(self):
        """Parameters handed to the optimiser: those that require a gradient. A family
        freezes a part (earlier cascade stages, a frozen coarse model: :meth:`freeze`; a
        switched-off task) with ``requires_grad_(False)``, and it is left out here."""
        return [p for p in self.parameters() if p.requires_grad]

    def _run_length(self, factory) -> dict[str, int]:
        """``{"run_steps": trainer.max_steps}`` (-1 where unset) for a schedule that takes a
        ``run_steps`` parameter (``WarmupCosineLR``: its decay ends with the run), else ``{}``.
        ``factory`` is the schedule class, or LightningCLI's ``functools.partial`` of it, whose
        keywords hold every parameter the class declares.

        Not ``trainer.estimated_stepping_batches``: calling it here builds the training loader
        before a resumed fit restores the loader's state, which Lightning 2.6 then never loads
        (Lightning issue #20550), and the resumed epoch repeats its first batches; seen in
        ``tests/test_resume.py`` (step 3's loss 0.149 against the uninterrupted run's 0.188).
        """
        if isinstance(factory, functools.partial):
            declared = factory.keywords
        else:
            declared = inspect.signature(factory).parameters
        if "run_steps" not in declared:
            return {}
        return {"run_steps": int(self.trainer.max_steps)}  # -1: none, which the schedule refuses

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, **self._run_length(self.scheduler_factory))
        # Per optimiser step for schedules that say so (``WarmupCosineLR``), else per epoch.
        config = {"scheduler": scheduler, "interval": getattr(scheduler, "interval", "epoch")}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}
