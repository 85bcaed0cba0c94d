"""Writes the evaluation metrics as a per-joint-group table (Markdown and JSON)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from lightning_pose.files import run_dir, write_bytes_atomic
from lightning_pose.skeleton import joint_groups


def metrics_table(
    metrics: dict[str, float], prefix: str, groups: list[str], columns: list[str]
) -> str:
    """Markdown table: one row per joint group and a pooled ``mean`` row, one column per
    metric key (e.g. ``pdj@0.2``); a cell without a value (no joint counted) shows ``-``.

    Values are percentages.
    """

    def cell(key: str) -> str:
        value = metrics.get(f"{prefix}/{key}")
        return "-" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"

    lines = [
        "| joint group | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for group in groups:
        lines.append(f"| {group} | " + " | ".join(cell(f"{c}/{group}") for c in columns) + " |")
    lines.append("| **mean** | " + " | ".join(cell(c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


class MetricsTableWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<dir>/<stage>_metrics.md`` and ``.json`` with the table of :func:`metrics_table`; during
    ``fit`` also ``val_metrics_best.md``/``.json`` whenever ``monitor`` improves, which is the
    table of the best checkpoint (ModelCheckpoint on the same key).

    Args:
        output_dir: folder for the tables; None = the trainer's log dir.
        monitor: key that defines "best" (higher is better).
    """

    def __init__(self, output_dir: str | None = None, monitor: str = "val/pdj@0.2") -> None:
        self.output_dir = output_dir
        self.monitor = monitor
        self.best: float | None = None

    def _dir(self, trainer: pl.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer)

    @rank_zero_only
    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{stage}/")
        }
        columns = sorted(
            {k.split("/")[1] for k in metrics if "@" in k.split("/")[1]},
            key=lambda c: (c.split("@")[0] != "pdj", c.split("@")[0], float(c.split("@")[1])),
        )
        groups = list(joint_groups(pl_module.joint_names))
        table = metrics_table(metrics, stage, groups, columns)
        header = f"epoch {trainer.current_epoch}, step {trainer.global_step}\n\n"
        record = {"epoch": trainer.current_epoch, "step": trainer.global_step, **metrics}
        out = self._dir(trainer)
        names = [f"{stage}_metrics"]
        value = metrics.get(self.monitor)
        if stage == "val" and trainer.state.fn == "fit" and value is not None:
            if math.isfinite(value) and (self.best is None or value > self.best):
                self.best = value
                names.append("val_metrics_best")
        for name in names:
            write_bytes_atomic(out / f"{name}.md", (header + table).encode())
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
