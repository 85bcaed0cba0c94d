"""Shared LightningModule plumbing: stages, evaluation, prediction and optimisers.

Every variant (DeepPose stage 1, the cascade, heatmap+refine, multi-task) subclasses
:class:`PoseEstimator`, implements :meth:`PoseEstimator.estimate` (its estimate after each
stage) and ``training_step``. Validation, test and predict are shared: every stage is scored
(``val/stage{s}/...`` when there are several), the final stage under the plain names
(``val/pdj@0.2``, ``val/pdj@0.2/wrist``, ``val/pckh@0.5``, ``val/pcp@0.5``) with what they
counted (``val/count/images``, ``val/count/pdj`` joints, ...), all in original-image pixels,
with the thresholds of one :class:`EvaluationProtocol`; ``val/loss`` is the labelled-joint L2
of the final estimate in the box-normalised frame (DeepPose §3, Eq. 3), comparable across
variants.
"""

from __future__ import annotations

import functools
import inspect
from typing import ClassVar, NotRequired, TypedDict

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lightning_pose.codecs.box import decode
from lightning_pose.losses import coordinate_l2_loss
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics
from lightning_pose.precision import compute_record
from lightning_pose.skeleton import Skeleton

Batch = dict[str, Tensor]
# Constructor arguments that are objects, not hyperparameters: the skeleton and the protocol
# are recorded as plain dicts under the checkpoint's "pose" key instead (see
# ``on_save_checkpoint``), so checkpoints load with ``weights_only=True`` and LightningCLI's
# re-parsing of a checkpoint's hyperparameters (``--ckpt_path``) never sees an object.
NOT_HPARAMS = ("trunk", "head", "optimizer", "scheduler", "skeleton", "evaluation")


class Estimate(TypedDict):
    """A model's output for a batch.

    Shapes:
        stages: S tensors (B, K, 2), box-normalised, stage 1 ... S; the last is the output.
        scores: (B, K) per-joint confidence, where the model has one (heatmap maxima).
    """

    stages: list[Tensor]
    scores: NotRequired[Tensor]


class PoseEstimator(pl.LightningModule):
    """Base class: stages, evaluation in original-image pixels (PDJ, PCKh, PCP), predict.

    Args:
        skeleton: the dataset's joints, flip pairs, torso, head segment and limbs (linked
            from ``data.skeleton``).
        num_stages: S, the number of estimates :meth:`estimate` returns.
        optimizer: optimiser factory, called with :meth:`trainable_parameters`.
        scheduler: LR scheduler factory, called with the optimiser; None = constant LR.
            ``ReduceLROnPlateau`` monitors ``val/loss``.
        evaluation: thresholds of the reported metrics (linked from the top-level
            ``evaluation`` group); None = the defaults of :class:`EvaluationProtocol`.

    Raises:
        ValueError: a skeleton without joints, or ``num_stages < 1``.
    """

    # Estimate entries, besides the stages, that ``predict_step`` returns where present (the
    # ``PredictionWriter`` writes every array it returns).
    prediction_keys: ClassVar[tuple[str, ...]] = ("scores",)

    def __init__(
        self,
        skeleton: Skeleton,
        num_stages: int = 1,
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        evaluation: EvaluationProtocol | None = None,
    ) -> None:
        super().__init__()
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
        # split -> this process's per-image sums and counts of the final stage, one dict per
        # batch (``StageMetrics.per_image`` and ``index``); recorded only where a callback sets
        # it to a dict (``callbacks.PerImageScoresWriter``), apart from the logged metrics.
        self.per_image_scores: dict[str, list[dict[str, Tensor]]] | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record what the weights mean, in plain types: ``checkpoint["pose"]`` holds the
        skeleton (joint names, flip pairs, torso, head, limbs), the evaluation protocol and
        what trained the weights (``"compute"``, when a Trainer saves it: the Trainer's
        precision, accelerator, CPU and its native-bf16 feature;
        :func:`lightning_pose.precision.compute_record`)."""
        checkpoint["pose"] = {
            "skeleton": self.skeleton.to_dict(),
            "evaluation": self.evaluation.to_dict(),
        }
        if self._trainer is not None:  # None: saved by hand, outside a Trainer
            trainer = self._trainer
            checkpoint["pose"]["compute"] = compute_record(trainer.precision, trainer.accelerator)
        # torch's generator (dropout, the cascade's sampled displacements): a resumed fit
        # restores it before its first step, so it continues as the run it resumes.
        checkpoint["rng"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("rng")

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        """On the first step of a resumed fit: restore the generator state of its checkpoint
        (after the sanity check and the loaders' set-up, which may draw from it)."""
        rng = getattr(self, "_rng_to_restore", None)
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            self._rng_to_restore = None

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
    def estimate(self, batch: Batch) -> Estimate:
        """The estimate after each stage (see :class:`Estimate`).

        Shapes:
            batch["image"]: (B, 3, S, S) float in [0, 1] (and ``image_hr`` where used).
        """
        raise NotImplementedError

    def inference_modules(self) -> list[str]:
        """Names (``get_submodule`` paths) of the networks that do the model's arithmetic at
        inference, each a function of one image tensor: what
        :class:`~lightning_pose.callbacks.CompiledInference` compiles. None here; each
        variant names its own."""
        return []

    # --- shared -------------------------------------------------------------------------
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
        scores more of it)."""
        estimate = self.estimate_float32(batch)
        stages = estimate["stages"]
        if len(stages) != self.num_stages:
            raise RuntimeError(
                f"{type(self).__name__}.estimate returned {len(stages)} stages, expected "
                f"num_stages={self.num_stages}"
            )
        for metrics, keypoints_norm in zip(self.stage_metrics[split], stages, strict=True):
            pred_px = decode(keypoints_norm, batch["box"])  # (B, K, 2) pixels
            metrics.update(pred_px, batch)
        if self.per_image_scores is not None:  # pred_px, metrics: the final stage's
            scores = {"index": batch["index"]} | metrics.per_image(pred_px, batch)
            self.per_image_scores.setdefault(split, []).append(scores)
        labelled = batch["labelled"]
        loss = coordinate_l2_loss(stages[-1], batch["keypoints_norm"], labelled)
        self.eval_loss[split].update(loss, weight=labelled.sum())
        return estimate

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
        """Parameters handed to the optimiser: those that require a gradient. A variant
        freezes a part (earlier cascade stages, a frozen coarse model, a switched-off task)
        with ``requires_grad_(False)``, and it is left out here."""
        return [p for p in self.parameters() if p.requires_grad]

    def _run_length(self, factory) -> dict[str, int]:
        """``{"total_steps": trainer.max_steps}`` for a schedule configured with
        ``total_steps`` left unset (``WarmupCosineLR``'s default: its decay ends with the run),
        else ``{}``.

        Not ``trainer.estimated_stepping_batches``: calling it here builds the training loader
        before a resumed fit restores the loader's state, which Lightning 2.6 then never loads
        (Lightning issue #20550), and the resumed epoch repeats its first batches; seen in
        ``tests/test_resume.py`` (step 3's loss 0.149 against the uninterrupted run's 0.188).

        Raises:
            ValueError: the run has no ``trainer.max_steps``.
        """
        if isinstance(factory, functools.partial):
            unset = factory.keywords.get("total_steps", 0) is None  # LightningCLI's partial
        else:
            parameter = inspect.signature(factory).parameters.get("total_steps")
            unset = parameter is not None and parameter.default is None
        if not unset:
            return {}
        if self.trainer.max_steps < 1:
            raise ValueError(
                "model.scheduler (WarmupCosineLR) takes its length from trainer.max_steps, "
                "which is not set: set --trainer.max_steps (or the scheduler's total_steps)"
            )
        steps = int(self.trainer.max_steps)
        if self.trainer.fast_dev_run:  # a smoke run's few steps: any length past warm-up will do
            keywords = factory.keywords if isinstance(factory, functools.partial) else {}
            steps = max(steps, int(keywords.get("warmup_steps") or 0) + 1)
        return {"total_steps": steps}

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
