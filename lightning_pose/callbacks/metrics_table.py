"""Writes the evaluation metrics as tables (Markdown and JSON): per joint group (PDJ, PCKh),
per limb group (PCP) and, for models with several stages, per stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytorch_lightning as pl

from lightning_pose.files import run_dir, write_bytes_atomic


def metrics_table(
    metrics: dict[str, float],
    prefix: str,
    groups: list[str],
    columns: list[str],
    label: str = "joint group",
) -> str:
    """Markdown table: one row per group and a pooled ``mean`` row, one column per metric key
    (e.g. ``pdj@0.2``); a cell without a value (nothing counted) shows ``-``.

    Values are percentages.
    """

    def cell(key: str) -> str:
        value = metrics.get(f"{prefix}/{key}")
        return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"

    lines = [f"| {label} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for group in groups:
        lines.append(f"| {group} | " + " | ".join(cell(f"{c}/{group}") for c in columns) + " |")
    lines.append("| **mean** | " + " | ".join(cell(c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def stage_table(metrics: dict[str, float], prefix: str, stages: int, columns: list[str]) -> str:
    """Markdown table: one row per stage (``<prefix>/stage{s}/<column>``), values in %."""

    def cell(key: str) -> str:
        value = metrics.get(key)
        return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"

    lines = ["| stage | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for s in range(1, stages + 1):
        cells = [cell(f"{prefix}/stage{s}/{c}") for c in columns]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _columns(metrics: dict[str, float], prefix: str, names: tuple[str, ...]) -> list[str]:
    """Pooled metric keys ``name@t`` present under ``prefix/``, ordered by name then t."""
    found = {
        k.split("/")[1]
        for k in metrics
        if len(k.split("/")) >= 2 and k.split("/")[1].split("@")[0] in names
    }
    return sorted(found, key=lambda c: (names.index(c.split("@")[0]), float(c.split("@")[1])))


def evaluation_report(
    metrics: dict[str, float], prefix: str, joint_groups: list[str], limb_groups: list[str]
) -> str:
    """The Markdown report of one evaluation: joint table, limb table, stage table."""
    parts = [
        metrics_table(metrics, prefix, joint_groups, _columns(metrics, prefix, ("pdj", "pckh")))
    ]
    pcp = _columns(metrics, prefix, ("pcp",))
    if pcp:
        parts.append(metrics_table(metrics, prefix, limb_groups, pcp, label="limb group"))
    stages = sorted(
        {int(k.split("/")[1][5:]) for k in metrics if k.split("/")[1].startswith("stage")}
    )
    if stages:
        stage_keys = {k.split("/", 2)[2] for k in metrics if k.split("/")[1].startswith("stage")}
        columns = sorted(
            stage_keys,
            key=lambda c: (("pdj", "pckh", "pcp").index(c.split("@")[0]), float(c.split("@")[1])),
        )
        parts.append(stage_table(metrics, prefix, max(stages), columns))
    counted = {
        k.split("/")[-1]: metrics.get(f"{prefix}/count/{k}")
        for k in ("images", "pdj", "pckh", "pcp")
    }
    if all(v is not None for v in counted.values()):
        parts.append(
            f"Counted: {counted['images']:.0f} images; PDJ {counted['pdj']:.0f} labelled joints "
            f"(images with both torso joints labelled), PCKh {counted['pckh']:.0f} joints "
            f"(head segment labelled), PCP {counted['pcp']:.0f} limbs (both ends labelled)"
            + (
                f"; limb_joints: {limb:.0f} of the PDJ joints.\n"
                if (limb := metrics.get(f"{prefix}/count/pdj/limb_joints")) is not None
                else ".\n"
            )
        )
    return "\n".join(parts)


class MetricsTableWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<dir>/<stage>_metrics.md`` and ``.json`` with :func:`evaluation_report`; during ``fit``
    also ``val_metrics_best.md``/``.json`` whenever ``monitor`` improves, which is the table of
    the best checkpoint (ModelCheckpoint on the same key). Rank zero writes; the folder is
    found on every process first (``trainer.log_dir`` is a collective under DDP).

    Args:
        output_dir: folder for the tables; None = the trainer's log dir.
        monitor: key that defines "best" (higher is better).
    """

    def __init__(self, output_dir: str | None = None, monitor: str = "val/pdj@0.2") -> None:
        self.output_dir = output_dir
        self.monitor = monitor
        self.best: float | None = None
        self._evaluated: tuple[int, int] | None = None  # (epoch, step) of a loaded checkpoint

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        """``validate``/``test`` of a checkpoint: the tables name its epoch and step (the
        trainer's own counters start at 0 outside ``fit``)."""
        if trainer.state.fn != "fit":
            self._evaluated = (int(checkpoint["epoch"]), int(checkpoint["global_step"]))

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        out = self._dir(trainer)  # on every process: may be a collective
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{stage}/")
        }
        names = [f"{stage}_metrics"]
        value = metrics.get(self.monitor)
        if stage == "val" and trainer.state.fn == "fit" and value is not None:
            if math.isfinite(value) and (self.best is None or value > self.best):
                self.best = value  # every process keeps the same best
                names.append("val_metrics_best")
        if not trainer.is_global_zero:
            return
        skeleton = pl_module.skeleton
        report = evaluation_report(
            metrics, stage, list(skeleton.groups()), list(skeleton.limb_groups())
        )
        epoch, step = trainer.current_epoch, trainer.global_step
        header = f"epoch {epoch}, step {step}\n\n"
        if trainer.state.fn != "fit" and self._evaluated is not None:
            epoch, step = self._evaluated
            header = f"checkpoint {trainer.ckpt_path}: epoch {epoch}, step {step}\n\n"
        record = {"epoch": epoch, "step": step, **metrics}
        for name in names:
            write_bytes_atomic(out / f"{name}.md", (header + report).encode())
            write_bytes_atomic(out / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())

    def state_dict(self) -> dict[str, float | None]:
        return {"best": self.best}  # saved in checkpoints: a resumed run keeps its best

    def load_state_dict(self, state_dict: dict[str, float | None]) -> None:
        self.best = state_dict["best"]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")
