"""Files a model's evaluation and fit produce, written by rank zero: the PDJ curve per stage
(DeepPose Fig. 5), each image's scores (for resampling images) and a cascade's error
statistics (DeepPose §3.2, Eq. 7)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist

from lightning_pose.metrics.declaration import MetricDeclaration
from lightning_pose.metrics.protocol import earlier_stage_prefix
from lightning_pose.plots.curves import save_pdj_curves
from lightning_pose.runtime.files import run_dir, write_bytes_atomic

PER_IMAGE_FILE = "per_image_{split}.csv"  # PerImageScoresWriter's, in the run folder
# ... and an earlier stage's of a multi-stage model (coarse heat-maps, cascade stage s)
PER_IMAGE_STAGE_FILE = "per_image_{split}_stage{stage}.csv"


class PDJCurveWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<log dir>/<split>_pdj_curve.csv`` and ``.png``: PDJ versus the normalised distance
    threshold, one column/line per stage, from the model's ``pdj_curves`` (set by
    ``PoseEstimator`` on every process after its metrics are reduced)."""

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        out = run_dir(trainer)  # on every process: may be a collective
        curves = getattr(pl_module, "pdj_curves", {}).get(split)
        if not trainer.is_global_zero or not curves:
            return
        thresholds = np.array(pl_module.evaluation.curve_thresholds)
        save_pdj_curves(out / f"{split}_pdj_curve", thresholds, curves)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")


class ErrorStatisticsWriter(pl.Callback):
    """At the start of training, writes ``<log dir>/error_statistics.json`` when the model
    estimated error statistics in this fit (``DeepPoseCascade.error_statistics_record``:
    per-joint mean and covariance of the previous stage's errors, in torso diameters); a
    no-op for other models."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out = run_dir(trainer)  # on every process: may be a collective
        record = getattr(pl_module, "error_statistics_record", None)
        if trainer.is_global_zero and record is not None:
            text = json.dumps(record, indent=1).encode()
            write_bytes_atomic(out / "error_statistics.json", text)


class PerImageScoresWriter(pl.Callback):
    """After each validation (not the sanity check) and each test, writes
    ``<log dir>/per_image_<split>.csv``: one row per evaluated sample (``index``, its dataset
    index, ascending) and, for every declared metric that is a sum over images (all but OKS
    AP), its pooled keys as the sample's own value (``pdj@0.2``: the fraction of its counted
    joints detected; ``mean_error_px``: its mean error in pixels; empty where it counted
    nothing) and ``count/<name>``, what it counted. The sample's sum is ``value * count``
    (hits: round it; values are written with 17 significant digits) and the split's pooled
    value is ``sum(value * count) / sum(count)``, so a bootstrap resamples rows and recomputes
    that (:mod:`lightning_pose.metrics.intervals`).

    A model of several stages (the refined heat-map models, the DeepPose cascade) also gets
    ``per_image_<split>_stage<s>.csv`` for each earlier stage s, with the same rows, so that a
    stage is compared with the next on the same images (paired,
    :func:`lightning_pose.reports.tables.comparison_table`).

    The model records each stage's per-image sums while this callback is attached
    (``PoseEstimator.per_image_scores``), apart from the logged metrics' fixed-size states.
    Under DDP every process's rows are gathered (a collective, on every process) before rank
    zero writes.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.per_image_scores = {}

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module) -> None:
        pl_module.per_image_scores["val"] = []

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module) -> None:
        pl_module.per_image_scores["test"] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, "test")

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str) -> None:
        out = run_dir(trainer)  # on every process: may be a collective
        records = pl_module.per_image_scores.get(split, [])
        local = (
            {key: torch.cat([r[key] for r in records]).cpu().numpy() for key in records[0]}
            if records
            else {}
        )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[dict[str, np.ndarray]] = [{} for _ in range(dist.get_world_size())]
            dist.all_gather_object(gathered, local)
            shards = [g for g in gathered if g]
            local = {k: np.concatenate([g[k] for g in shards]) for k in shards[0]} if shards else {}
        if not trainer.is_global_zero or not local:
            return
        declarations = pl_module.evaluation.declarations(pl_module.skeleton)
        final = dict(local)
        for stage in range(1, pl_module.num_stages):  # the earlier stages
            prefix = earlier_stage_prefix(stage)
            columns = {"index": local["index"]}
            columns |= {k.removeprefix(prefix): final.pop(k) for k in local if k.startswith(prefix)}
            text = per_image_table(columns, declarations)
            name = PER_IMAGE_STAGE_FILE.format(split=split, stage=stage)
            write_bytes_atomic(out / name, text.encode())
        text = per_image_table(final, declarations)
        write_bytes_atomic(out / PER_IMAGE_FILE.format(split=split), text.encode())


def per_image_table(scores: dict[str, np.ndarray], declarations: list[MetricDeclaration]) -> str:
    """The CSV of :class:`PerImageScoresWriter` from per-image sums and counts.

    Shapes:
        scores: ``index (N,)`` and, per metric with per-image sums, each pooled key's sums
        ``(N,)`` and ``count/<name> (N,)`` (``StageMetrics.per_image`` over the batches);
        for a joint group a metric reports per image, ``<key>/<group>`` and
        ``count/<name>/<group>``.
    """
    columns: list[tuple[str, str]] = []  # (column, its count's column)
    for declaration in declarations:
        count = f"count/{declaration.name}"
        if count in scores:
            columns += [(key, count) for key in declaration.keys() if key in scores]
            columns.append((count, ""))
            groups = sorted(
                c.removeprefix(count + "/") for c in scores if c.startswith(count + "/")
            )
            for group in groups:  # per-image scores of a joint group (pdj@0.2/limb_joints)
                group_count = f"{count}/{group}"
                columns += [(f"{key}/{group}", group_count) for key in declaration.keys()]
                columns.append((group_count, ""))
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["index", *(c for c, _ in columns)])
    for i in np.argsort(scores["index"], kind="stable"):
        row = [str(int(scores["index"][i]))]
        for column, count in columns:
            value = scores[column][i]
            if count:  # a sum: the sample's value is sum / count, none where nothing counted
                n = scores[count][i]
                row.append(f"{value / n:.17g}" if n > 0 else "")  # round-trips: sum = value * count
            else:
                row.append(f"{value:.17g}")
        writer.writerow(row)
    return table.getvalue()
