"""Writes the evaluation metrics as tables (Markdown and JSON): per joint group, per limb group
and, for models with several stages, per stage. Which columns there are, in which order, in
which unit and which direction is better come from the metrics' declarations
(:class:`~lightning_pose.metrics.declaration.MetricDeclaration`), never from the result keys."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl

from lightning_pose.metrics.declaration import (
    DECLARATIONS_FILE,
    MetricDeclaration,
    find_declaration,
)
from lightning_pose.runtime.files import run_dir, write_bytes_atomic


def format_value(value: float | None, unit: str = "fraction") -> str:
    """A table cell: a fraction in percent, pixels as they are, one decimal; ``-`` for a value
    that is absent or not finite (nothing counted)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}" if unit == "fraction" else f"{value:.1f}"


def metrics_table(
    metrics: dict[str, float],
    prefix: str,
    groups: list[str],
    columns: list[str],
    label: str = "joint group",
    units: dict[str, str] | None = None,
) -> str:
    """Markdown table: one row per group and a pooled ``mean`` row, one column per metric key
    (e.g. ``pdj@0.2``); a cell without a value (nothing counted) shows ``-``.

    Values are percentages, except for the columns ``units`` gives as ``"px"`` (pixels).
    """
    units = units or {}

    def cell(column: str, key: str) -> str:
        return format_value(metrics.get(f"{prefix}/{key}"), units.get(column, "fraction"))

    lines = [f"| {label} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for group in groups:
        cells = [cell(c, f"{c}/{group}") for c in columns]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | " + " | ".join(cell(c, c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def stage_table(
    metrics: dict[str, float],
    prefix: str,
    stages: int,
    columns: list[str],
    units: dict[str, str] | None = None,
) -> str:
    """Markdown table: one row per stage (``<prefix>/stage{s}/<column>``), values in % (or
    pixels, for the columns ``units`` gives as ``"px"``)."""
    units = units or {}
    lines = ["| stage | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for s in range(1, stages + 1):
        cells = [
            format_value(metrics.get(f"{prefix}/stage{s}/{c}"), units.get(c, "fraction"))
            for c in columns
        ]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _columns(
    metrics: dict[str, float], prefixes: list[str], declarations: list[MetricDeclaration]
) -> list[str]:
    """The declared pooled keys logged under one of ``prefixes``, in declaration order."""
    return [
        key
        for declaration in declarations
        for key in declaration.keys()
        if any(f"{prefix}/{key}" in metrics for prefix in prefixes)
    ]


def _units(declarations: list[MetricDeclaration]) -> dict[str, str]:
    return {key: d.unit for d in declarations for key in d.keys()}


def evaluation_report(
    metrics: dict[str, float],
    prefix: str,
    declarations: list[MetricDeclaration],
    joint_groups: list[str],
    limb_groups: list[str],
    stages: int = 1,
) -> str:
    """The Markdown report of one evaluation: the joint table (metrics declared per joint
    group), the limb table (per limb group), the stage table (with ``stages`` > 1: every
    declared metric's pooled keys per stage) and what was counted (``count/<name>`` of the
    declarations with a ``counts`` phrase).

    Args:
        metrics: logged values, ``f"{prefix}/{key}"``.
        prefix: the split, ``"val"`` or ``"test"``.
        declarations: the metrics' declarations, in report order
            (``EvaluationProtocol.declarations(skeleton)``).
        joint_groups, limb_groups: the rows of the joint and the limb table.
        stages: the model's number of stages.
    """
    units = _units(declarations)
    parts = []
    for kind, rows, label in (
        ("joint", joint_groups, "joint group"),
        ("limb", limb_groups, "limb group"),
    ):
        declared = [d for d in declarations if d.groups == kind]
        columns = _columns(metrics, [prefix], declared)
        if columns or kind == "joint":
            parts.append(metrics_table(metrics, prefix, rows, columns, label, units))
    if stages > 1:
        stage_prefixes = [f"{prefix}/stage{s}" for s in range(1, stages + 1)]
        columns = _columns(metrics, stage_prefixes, declarations)
        parts.append(stage_table(metrics, prefix, stages, columns, units))
    parts += _counted(metrics, prefix, declarations)
    return "\n".join(parts)


def _counted(
    metrics: dict[str, float], prefix: str, declarations: list[MetricDeclaration]
) -> list[str]:
    """The "Counted:" line: images (and instances where they differ: several people in an
    image), then each declared metric's count with its ``counts``
    phrase and its finer counts (``count/pdj/limb_joints``); [] without an image count."""
    images = metrics.get(f"{prefix}/count/images")
    listed = [
        (d, metrics[f"{prefix}/count/{d.name}"])
        for d in declarations
        if d.counts is not None and f"{prefix}/count/{d.name}" in metrics
    ]
    if images is None or not listed:
        return []
    finer = []
    for declaration, _ in listed:
        stem = f"{prefix}/count/{declaration.name}/"
        noun = "limbs" if declaration.groups == "limb" else "joints"
        finer += [
            f"; {key[len(stem) :]}: {value:.0f} of the {declaration.title} {noun}"
            for key, value in metrics.items()
            if key.startswith(stem)
        ]
    counts = ", ".join(f"{d.title} {n:.0f} {d.counts}" for d, n in listed)
    instances = metrics.get(f"{prefix}/count/instances", images)
    people = f" ({instances:.0f} instances)" if instances != images else ""
    return [f"Counted: {images:.0f} images{people}; {counts}" + "".join(finer) + ".\n"]


class MetricsTableWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<dir>/<stage>_metrics.md`` (headed by the epoch, step and the precision it was evaluated
    in, ``trainer.precision``) and ``.json`` with :func:`evaluation_report`, and
    ``metric_declarations.json`` (the model's metric declarations and its number of stages,
    which the sweep runner reads); during ``fit`` also ``val_metrics_best.md``/``.json``
    whenever ``monitor`` improves, which is the table of the best checkpoint (ModelCheckpoint
    on the same key). Rank zero writes; the folder is found on every process first
    (``trainer.log_dir`` is a collective under DDP).

    Args:
        output_dir: folder for the tables; None = the trainer's log dir.
        monitor: key that defines "best".
        mode: ``"max"`` or ``"min"``: whether a higher or a lower ``monitor`` is better; None =
            the direction its metric declares (``pdj@0.2``: higher; ``mean_error_px``: lower).

    Raises:
        ValueError: ``mode`` is None and ``monitor`` is no declared metric's key (write, e.g.,
            ``mode: min`` for ``val/loss``), at the first validation of a fit.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        monitor: str = "val/pdj@0.2",
        mode: Literal["max", "min"] | None = None,
    ) -> None:
        if mode not in (None, "max", "min"):
            raise ValueError(f"MetricsTableWriter.mode must be 'max', 'min' or null, got {mode!r}")
        self.output_dir = output_dir
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self._evaluated: tuple[int, int] | None = None  # (epoch, step) of a loaded checkpoint

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        """``validate``/``test`` of a checkpoint: the tables name its epoch and step (the
        trainer's own counters start at 0 outside ``fit``)."""
        if trainer.state.fn != "fit":
            self._evaluated = (int(checkpoint["epoch"]), int(checkpoint["global_step"]))

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer)

    def higher_is_better(self, declarations: list[MetricDeclaration], stages: int) -> bool:
        """The direction of ``monitor``: ``mode`` where given, else its declaration's."""
        if self.mode is not None:
            return self.mode == "max"
        prefixes = [
            f"{split}/{stage}"
            for split in ("val", "test")
            for stage in ["", *(f"stage{s}/" for s in range(1, stages + 1))]
        ]
        declaration = find_declaration(self.monitor, declarations, prefixes)
        if declaration is None:
            raise ValueError(
                f"MetricsTableWriter.monitor {self.monitor!r} is no declared metric's key "
                f"({[d.name for d in declarations]}): set MetricsTableWriter.mode to 'max' or "
                "'min'"
            )
        return declaration.higher_is_better

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        out = self._dir(trainer)  # on every process: may be a collective
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{stage}/")
        }
        skeleton = pl_module.skeleton
        # all, also those that do not apply to the skeleton: their count is logged as 0
        declarations = pl_module.evaluation.declarations()
        stages = getattr(pl_module, "num_stages", 1)
        names = [f"{stage}_metrics"]
        value = metrics.get(self.monitor)
        if stage == "val" and trainer.state.fn == "fit" and value is not None:
            higher = self.higher_is_better(declarations, stages)
            better = self.best is None or (value > self.best if higher else value < self.best)
            if math.isfinite(value) and better:
                self.best = value  # every process keeps the same best
                names.append("val_metrics_best")
        if not trainer.is_global_zero:
            return
        report = evaluation_report(
            metrics,
            stage,
            declarations,
            list(skeleton.groups()),
            list(skeleton.limb_groups()),
            stages,
        )
        epoch, step = trainer.current_epoch, trainer.global_step
        header = f"epoch {epoch}, step {step}"
        if trainer.state.fn != "fit" and self._evaluated is not None:
            epoch, step = self._evaluated
            header = f"checkpoint {trainer.ckpt_path}: epoch {epoch}, step {step}"
        evaluated = trainer.precision
        if trainer.state.fn == "fit" and trainer.precision != "32-true":
            # PoseEstimator validates in fp32 inside fit, whatever the training precision
            evaluated = f"32-true (training in {trainer.precision})"
        header += f"; evaluated in precision {evaluated}\n\n"
        record = {"epoch": epoch, "step": step, **metrics}
        for name in names:
            write_bytes_atomic(out / f"{name}.md", (header + report).encode())
            write_bytes_atomic(out / f"{name}.json", (json.dumps(record, indent=2) + "\n").encode())
        declared = {"stages": stages, "declarations": [d.to_dict() for d in declarations]}
        write_bytes_atomic(
            out / DECLARATIONS_FILE, (json.dumps(declared, indent=2) + "\n").encode()
        )

    def state_dict(self) -> dict[str, float | None]:
        return {"best": self.best}  # saved in checkpoints: a resumed run keeps its best

    def load_state_dict(self, state_dict: dict[str, float | None]) -> None:
        self.best = state_dict["best"]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")
