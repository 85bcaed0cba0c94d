"""What a W&B run shows besides the scalars: the resolved config, a panel of validation images
with the predicted and the true skeleton, the per-stage PDJ curves (DeepPose Fig. 5), and each
declared metric's run summary (its best value: the maximum where higher is better, else the
minimum; :class:`~lightning_pose.metrics.declaration.MetricDeclaration`).

Every hook here is a no-op without a ``WandbLogger``; under ``WANDB_MODE=disabled`` the logger's
run discards what it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import WandbLogger
from torch.utils.data import default_collate

from lightning_pose.codecs.grid import norm_to_grid
from lightning_pose.metrics.declaration import MetricDeclaration
from lightning_pose.plots.pose import draw_comparison
from lightning_pose.runtime.files import write_bytes_atomic
from lightning_pose.runtime.resume import WANDB_RUN_ID_FILE


def wandb_loggers(trainer: pl.Trainer) -> list[WandbLogger]:
    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


class WandbSaveConfigCallback(SaveConfigCallback):
    """LightningCLI's config callback (``config.yaml`` in the log dir) that also logs the
    resolved config, once and from rank zero, to each ``WandbLogger`` as the run's config, and
    keeps the W&B run's id in the run folder (``<run>/wandb_run_id``), so that
    ``fit --ckpt_path last`` continues that W&B run (:mod:`lightning_pose.runtime.resume`)."""

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        loggers = wandb_loggers(trainer)
        if loggers:
            config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
            for logger in loggers:
                logger.log_hyperparams(config)
            # the run folder: the first other logger's (never trainer.log_dir here: it is a
            # collective and this runs on rank zero only)
            folders = [lg.log_dir for lg in trainer.loggers if lg not in loggers and lg.log_dir]
            if folders and stage == "fit":
                run_id = str(loggers[0].version)
                write_bytes_atomic(Path(folders[0]) / WANDB_RUN_ID_FILE, f"{run_id}\n".encode())


def comparison_images(
    pl_module: pl.LightningModule, batch: dict[str, torch.Tensor]
) -> list[np.ndarray]:
    """The network's input crops with the true pose (labelled joints) and the model's final
    estimate drawn (:func:`lightning_pose.plots.pose.draw_comparison`).

    Shapes:
        batch: a collated batch, ``image (B, 3, S, S)``, ``keypoints_norm (B, K, 2)`` (the
        labels, un-augmented for validation samples), ``labelled (B, K)``.
        returns B x (S, S, 3) uint8.
    """
    was_training = pl_module.training
    pl_module.eval()
    with torch.no_grad():
        batch = {k: v.to(pl_module.device) for k, v in batch.items()}
        predicted_norm = pl_module.estimate(batch)["stages"][-1].cpu()  # (B, K, 2)
    pl_module.train(was_training)
    size = batch["image"].shape[-1]
    images = (batch["image"].cpu().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    predicted_px = norm_to_grid(predicted_norm, size).numpy()  # (B, K, 2) crop pixels
    true_px = norm_to_grid(batch["keypoints_norm"].cpu(), size).numpy()
    labelled = batch["labelled"].cpu().numpy()
    skeleton = pl_module.skeleton
    return [
        draw_comparison(image, p, t, m, skeleton)
        for image, p, t, m in zip(images, predicted_px, true_px, labelled, strict=True)
    ]


def summary_modes(declarations: list[MetricDeclaration], stages: int) -> dict[str, str]:
    """W&B ``define_metric`` summaries of the declared ``val/`` keys, pooled and per stage (with
    several stages): ``"max"`` where higher is better, ``"min"`` where lower is."""
    prefixes = ["val/", *(f"val/stage{s}/" for s in range(1, stages + 1) if stages > 1)]
    return {
        prefix + key: "max" if d.higher_is_better else "min"
        for d in declarations
        for prefix in prefixes
        for key in d.keys()
    }


class WandbValidationPanels(pl.Callback):
    """After each validation of ``fit`` (not the sanity check), logs to each ``WandbLogger``:

    * ``val/skeletons``: ``num_images`` validation images, the same ones every time (evenly
      spaced through the validation set), each with the true skeleton (green, labelled joints)
      and the predicted one (red);
    * ``val/pdj_curve``: PDJ versus the normalised distance, one line per stage (the model's
      ``pdj_curves``, set on every process when its metrics are reduced);

    and at the start of ``fit``, each declared metric's summary (:func:`summary_modes`), so the
    run table shows its best value rather than its last.

    Rank zero only, after the values it needs are found; no collective is called.

    Args:
        num_images: size of the image panel (0 = no panel).
    """

    def __init__(self, num_images: int = 8) -> None:
        if num_images < 0:
            raise ValueError(f"WandbValidationPanels.num_images must be >= 0, got {num_images}")
        self.num_images = num_images
        self._batch: dict[str, torch.Tensor] | None = None

    def fixed_batch(self, trainer: pl.Trainer) -> dict[str, torch.Tensor] | None:
        """The panel's samples, collated on the CPU (read once, on first use)."""
        if self._batch is None and self.num_images > 0:
            loader = trainer.val_dataloaders
            loader = loader[0] if isinstance(loader, list | tuple) else loader
            dataset = getattr(loader, "dataset", None)
            if dataset is None or len(dataset) == 0:
                return None
            picks = np.unique(np.linspace(0, len(dataset) - 1, self.num_images).round())
            self._batch = default_collate([dataset[int(i)] for i in picks])
        return self._batch

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = wandb_loggers(trainer)
        if not trainer.is_global_zero or not loggers:
            return
        declarations = pl_module.evaluation.declarations(pl_module.skeleton)
        modes = summary_modes(declarations, getattr(pl_module, "num_stages", 1))
        for logger in loggers:
            for key, mode in modes.items():
                # the step axis Lightning's WandbLogger gives every metric ("*")
                logger.experiment.define_metric(
                    key, summary=mode, step_metric="trainer/global_step"
                )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loggers = wandb_loggers(trainer)
        if trainer.sanity_checking or not trainer.is_global_zero or not loggers:
            return
        import wandb

        logged = {}
        batch = self.fixed_batch(trainer)
        if batch is not None:
            names = [f"index {int(i)}" for i in batch["index"]]
            logged["val/skeletons"] = [
                wandb.Image(image, caption=f"{name}: green true, red predicted")
                for image, name in zip(comparison_images(pl_module, batch), names, strict=True)
            ]
        curves = getattr(pl_module, "pdj_curves", {}).get("val")
        if curves:
            thresholds = [float(t) for t in pl_module.evaluation.curve_thresholds]
            stages = sorted(curves)
            logged["val/pdj_curve"] = wandb.plot.line_series(
                xs=thresholds,
                ys=[[float(v) for v in curves[s]] for s in stages],
                keys=[f"stage {s}" for s in stages],
                title="val PDJ vs normalised distance",
                xname="fraction of torso diameter",
            )
        for logger in loggers:
            logger.log_metrics(logged, step=trainer.global_step)
