"""Tables and figures of finished runs, read from their folders: a run's metric declarations
(``metric_declarations.json``) and per-image scores (``per_image_<split>.csv``), comparison
tables of runs with bootstrap intervals over images, and a sweep's results table
(``results.csv``, ``results.md``, ``results.png``).

The numbers come from the runs' files; the statistics from :mod:`lightning_pose.metrics.intervals`
(bootstrap intervals of arrays); which keys exist, in which order, unit and direction, from the
metrics' declarations (:class:`~lightning_pose.metrics.declaration.MetricDeclaration`), never from
a key's spelling. Nothing here trains or evaluates a model.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from lightning_pose.callbacks.evaluation_files import PER_IMAGE_FILE as PER_IMAGE_TEMPLATE
from lightning_pose.callbacks.metrics_table import format_value
from lightning_pose.metrics.declaration import (
    DECLARATIONS_FILE,
    MetricDeclaration,
    find_declaration,
)
from lightning_pose.metrics.intervals import (
    CONFIDENCE,
    RESAMPLES,
    Interval,
    paired_difference_interval,
    ratio_interval,
)
from lightning_pose.plots.curves import read_pdj_curves, save_figure, sweep_comparison_figure
from lightning_pose.runtime.files import write_bytes_atomic

# Row entries of a sweep's results table that are not a metric.
NOT_METRICS = ("trial", "status", "seconds", "results")
# The swept parameter that repeats a setting with another seed (LightningCLI's own key).
SEED_PARAMETER = "seed_everything"
PER_IMAGE_FILE = PER_IMAGE_TEMPLATE.format(split="val")  # a validation's per-image scores


# --- a run's folder --------------------------------------------------------------------------


def read_declarations(folder: str | Path) -> tuple[list[MetricDeclaration], int]:
    """The metric declarations and the number of stages a run's ``MetricsTableWriter``
    recorded in ``folder/metric_declarations.json``; ``([], 1)`` where it wrote none."""
    path = Path(folder) / DECLARATIONS_FILE
    if not path.is_file():
        return [], 1
    record = json.loads(path.read_text())
    return [MetricDeclaration.from_dict(d) for d in record["declarations"]], int(record["stages"])


def latest_results(trial_dir: Path) -> Path | None:
    """The folder of the trial's last validation: the newest ``val_metrics.json`` under it
    (one per fit; a cascade trial fits its stages one after another)."""
    found = [p for p in trial_dir.rglob("val_metrics.json") if "wandb" not in p.parts]
    return max(found, key=lambda p: p.stat().st_mtime_ns).parent if found else None


def trial_metrics(row: dict) -> dict[str, float]:
    """A trial's last ``val_metrics.json`` (every key it logged), {} for a trial without."""
    path = Path(row["results"]) / "val_metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# --- per-image scores and comparisons of runs ------------------------------------------------


@dataclass(frozen=True)
class PerImageScores:
    """One evaluation's per-image scores, as ``PerImageScoresWriter`` writes them
    (``per_image_<split>.csv``).

    Attributes:
        path: the file read.
        index: ``(N,)`` the samples' dataset indices, ascending.
        values: key (``"pdj@0.2"``) -> ``(N,)`` each sample's own value (NaN: counted nothing).
        counts: key -> ``(N,)`` what each sample counted for that key (``count/<metric>``).
        units: key -> its metric's declared unit, ``"fraction"`` or ``"px"``.
    """

    path: Path
    index: np.ndarray
    values: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    units: dict[str, str]

    def sums(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(sums, counts)`` of ``key`` per sample: what
        :func:`~lightning_pose.metrics.intervals.ratio_interval` takes
        (``sums = value x count``, 0 where the sample counted nothing).

        Raises:
            KeyError: the file has no column ``key`` (the message lists those it has).
        """
        if key not in self.values:
            raise KeyError(
                f"{self.path}: no per-image column {key!r}; it has {sorted(self.values)}"
            )
        counts = self.counts[key]
        return np.where(counts > 0, np.nan_to_num(self.values[key]) * counts, 0.0), counts


def read_per_image(path: str | Path) -> PerImageScores:
    """Read a ``per_image_<split>.csv``: ``index``, one column per metric key, and
    ``count/<metric>`` columns. Which metric a key belongs to, and its unit, come from the
    declarations the run recorded beside it (``metric_declarations.json``,
    :func:`read_declarations`); a key's count column is
    ``count/<metric>``, ``count/<metric>/<group>`` for a joint group's key
    ``<metric>@<t>/<group>``.

    Raises:
        ValueError: no declarations beside the file, the file has no ``index`` column, a key
            no declaration makes or without its count column, or a value that is not a number
            (the file and the column are named).
    """
    path = Path(path)
    declarations, _ = read_declarations(path.parent)
    if not declarations:
        raise ValueError(f"{path}: no {DECLARATIONS_FILE} beside it (MetricsTableWriter's)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) if rows else []
    if "index" not in header:
        raise ValueError(f"{path}: not a per-image scores file (no 'index' column): {header}")

    def column(name: str) -> np.ndarray:
        try:
            return np.array([float(r[name]) if r[name] != "" else np.nan for r in rows])
        except ValueError as error:
            raise ValueError(f"{path}: column {name!r}: {error}") from None

    values, counts, units = {}, {}, {}
    for key in header:
        if key == "index" or key.startswith("count/"):
            continue
        declaration = find_declaration(key, declarations, [""])
        if declaration is None:
            raise ValueError(f"{path}: column {key!r} is no declared metric's")
        group = key.removeprefix(key.split("/", 1)[0]).removeprefix("/")  # pdj@0.2/limb_joints
        count = f"count/{declaration.name}" + (f"/{group}" if group else "")
        if count not in header:
            raise ValueError(f"{path}: column {key!r} has no count column {count!r}")
        values[key], counts[key] = column(key), column(count)
        units[key] = declaration.unit
    return PerImageScores(path, column("index").astype(np.int64), values, counts, units)


def pool_seeds(runs: list[PerImageScores]) -> PerImageScores:
    """One setting trained with several seeds, scored on the same samples, as one run: each
    sample's sums and counts added over the seeds, so a key's value is the seeds' pooled
    ratio and :func:`comparison_table` resamples the samples with every seed's scores of a
    sample kept together. The interval then covers the images and the seeds' mean; the spread
    between seeds is not in it (report it beside).

    Raises:
        ValueError: no runs, or runs scored on different samples.
    """
    if not runs:
        raise ValueError("pool_seeds: no runs to pool")
    first = runs[0]
    for run in runs[1:]:
        if not np.array_equal(run.index, first.index):
            raise ValueError(
                f"pool_seeds: {first.path} and {run.path} were evaluated on different samples"
            )
    keys = [k for k in first.values if all(k in r.values for r in runs[1:])]
    values, counts = {}, {}
    for key in keys:
        sums = np.sum([r.sums(key)[0] for r in runs], axis=0)  # (N,)
        counts[key] = np.sum([r.counts[key] for r in runs], axis=0)  # (N,)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[key] = np.where(counts[key] > 0, sums / counts[key], np.nan)
    units = {k: first.units[k] for k in keys}
    return PerImageScores(first.path, first.index, values, counts, units)


def comparison_table(
    runs: dict[str, PerImageScores],
    keys: list[str],
    baseline: str | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> str:
    """Markdown: each run's value of each key with its bootstrap interval over images, then
    (with a ``baseline``) each other run's paired difference to it, called an effect only
    where its interval excludes 0.

    Args:
        runs: label -> scores, all evaluated on the same samples.
        keys: per-image keys to report, e.g. ``["pdj@0.2", "pckh@0.5"]``; fractions are shown
            in %, pixels (a mean error) as they are, as the metric declares.
        baseline: the label the others are compared with; None: no difference table.
        confidence, resamples: as
            :func:`~lightning_pose.metrics.intervals.ratio_interval`.

    Raises:
        ValueError: the runs were evaluated on different samples, or ``baseline`` is not a
            label of ``runs``.
        KeyError: a run has no column for a key.
    """
    labels = list(runs)
    first = runs[labels[0]]
    for label in labels[1:]:
        if not np.array_equal(runs[label].index, first.index):
            raise ValueError(
                f"runs {labels[0]!r} ({first.path}) and {label!r} ({runs[label].path}) were "
                "evaluated on different samples: a paired comparison needs the same ones"
            )
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not one of the runs {labels}")
    level = f"{100 * confidence:g} %"

    units = first.units

    def cell(interval: Interval, key: str, difference: bool = False) -> str:
        if units[key] != "fraction":
            e, lo, hi = interval.estimate, interval.low, interval.high
            sign = "+" if difference else ""
            return f"{e:{sign}.2f} [{lo:{sign}.2f}, {hi:{sign}.2f}]"
        return interval.percent_difference() if difference else interval.percent()

    lines = [
        f"Values with their {level} bootstrap interval over the {len(first.index)} evaluated "
        f"samples ({resamples} resamples); fractions in %, pixel errors in px.",
        "",
        "| run | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label in labels:
        cells = []
        for key in keys:
            sums, counts = runs[label].sums(key)
            fraction = units[key] == "fraction"
            cells.append(
                cell(ratio_interval(sums, counts, confidence, resamples, fraction=fraction), key)
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if baseline is None or len(labels) < 2:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Paired differences to {baseline} (same samples resampled jointly; {level} interval; "
        "**effect** where it excludes 0, else noise):",
        "",
        "| run − " + baseline + " | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label in labels:
        if label == baseline:
            continue
        cells = []
        for key in keys:
            fraction = units[key] == "fraction"
            interval = paired_difference_interval(
                *runs[label].sums(key),
                *runs[baseline].sums(key),
                confidence,
                resamples,
                fraction=fraction,
            )
            verdict = "**effect**" if interval.excludes_zero else "noise"
            cells.append(f"{cell(interval, key, difference=True)} {verdict}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- a sweep's results table ------------------------------------------------------------------


def result_keys(
    declarations: list[MetricDeclaration], stages: int, metric: str | None
) -> list[str]:
    """The table's metric columns: every declared metric's pooled ``val/`` keys (declaration
    order), then, with several stages, each stage's keys of the sweep metric's declaration (the
    first declaration where the sweep metric is none's)."""
    keys = [f"val/{key}" for d in declarations for key in d.keys()]
    primary = (find_declaration(metric, declarations, ["val/"]) if metric else None) or (
        declarations[0] if declarations else None
    )
    if stages > 1 and primary is not None:
        keys += [f"val/stage{s}/{k}" for s in range(1, stages + 1) for k in primary.keys()]
    return keys


def declared_units(declarations: list[MetricDeclaration], stages: int) -> dict[str, str]:
    """Each declared ``val/`` key, pooled and per stage, and its unit."""
    prefixes = ["val/", *(f"val/stage{s}/" for s in range(1, stages + 1))]
    return {p + key: d.unit for d in declarations for key in d.keys() for p in prefixes}


def result_columns(rows: list[dict], parameters: list[str], metric: str | None) -> list[str]:
    """Table columns: trial, status, the swept parameters, the sweep's metric, then the other
    metrics in the order the rows hold them (:func:`result_keys`)."""
    fixed = {*NOT_METRICS, *parameters, metric}
    found = list(dict.fromkeys(k for row in rows for k in row if k not in fixed))
    metric_columns = [metric] if metric else []
    return ["trial", "status", *parameters, *metric_columns, *found]


def format_cell(key: str, value: Any, units: dict[str, str]) -> str:
    """A fraction in percent and pixels as they are (the key's declared unit); anything else
    as it is."""
    if isinstance(value, float) and key in units:
        return format_value(value, units[key])
    return "" if value is None else str(value)


def trial_scores(rows: list[dict]) -> dict[str, PerImageScores] | str:
    """Each trial's ``per_image_val.csv`` (``PerImageScoresWriter``, in the dataset configs'
    callbacks), read once for :func:`interval_section` and :func:`seed_section`; or the
    sentence saying why they cannot be read."""
    files = {r["trial"]: Path(r["results"]) / PER_IMAGE_FILE for r in rows}
    missing = [trial for trial, path in files.items() if not path.is_file()]
    if missing:
        writer = "lightning_pose.callbacks.PerImageScoresWriter"
        return f"no {PER_IMAGE_FILE} for {', '.join(missing)} (add {writer})"
    try:
        return {trial: read_per_image(path) for trial, path in files.items()}
    except ValueError as error:
        return str(error)


def interval_section(scores: dict[str, PerImageScores] | str, metric: str) -> list[str]:
    """``results.md``'s noise statement: the sweep metric of each trial with its 95 %
    bootstrap interval over the validation images, and each trial's paired difference to the
    first (:func:`comparison_table`), from the trials'
    :func:`trial_scores`; one line saying why where they cannot be compared."""
    if isinstance(scores, str):
        return ["", f"No intervals: {scores}."]
    try:
        table = comparison_table(scores, [metric.removeprefix("val/")], next(iter(scores)))
    except (KeyError, ValueError) as error:
        return ["", f"No intervals for {metric}: {error}"]
    return ["", table.rstrip("\n")]


def short_names(parameters: Sequence[str]) -> dict[str, str]:
    """Each parameter's last dotted part (model.init_args.trunk.init_args.pooling: pooling),
    or the full names where two would read the same."""
    short = {c: c.rsplit(".", 1)[-1] for c in parameters}
    return short if len(set(short.values())) == len(short) else {c: c for c in parameters}


def seed_section(
    rows: list[dict],
    metric: str,
    parameters: Sequence[str],
    scores: dict[str, PerImageScores] | str,
    unit: str = "fraction",
) -> list[str]:
    """With a ``seed_everything`` parameter and 2+ seeds of a setting: each setting of the
    other parameters, its seeds' values of the sweep metric and their range, then the metric
    of its seeds pooled (:func:`pool_seeds`) with a 95 %
    bootstrap interval over the images and the paired difference to the first setting. The
    image intervals leave out the spread between seeds, which the range shows. [] without
    seeds; one line saying why where the per-image scores (``scores``, :func:`trial_scores`)
    cannot be read. ``unit``: the metric's declared unit (``"fraction"``, shown in %, or
    ``"px"``)."""
    if SEED_PARAMETER not in parameters:
        return []
    others = [p for p in parameters if p != SEED_PARAMETER]
    short = short_names(others)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        label = ", ".join(f"{short[p]}={row.get(p)}" for p in others) or "all"
        groups.setdefault(label, []).append(row)
    if max(len(g) for g in groups.values()) < 2:
        return []
    lines = ["", f"Over seeds ({SEED_PARAMETER}), {metric} of each seed and their range:", ""]
    lines += ["| setting | seeds | each seed | range |", "|---|---:|---|---|"]
    for label, group in groups.items():
        each = [format_value(r[metric], unit) for r in group]
        values = sorted(r[metric] for r in group)
        spread = f"{format_value(values[0], unit)}–{format_value(values[-1], unit)}"
        lines.append(f"| {label} | {len(group)} | {', '.join(each)} | {spread} |")
    if isinstance(scores, str):
        return lines + ["", f"No pooled intervals: {scores}."]
    key = metric.removeprefix("val/")
    try:
        pooled = {
            label: pool_seeds([scores[r["trial"]] for r in group])
            for label, group in groups.items()
        }
        table = comparison_table(pooled, [key], baseline=next(iter(pooled)))
    except (KeyError, ValueError) as error:
        return lines + ["", f"No pooled intervals for {metric}: {error}"]
    return lines + ["", "Each setting's seeds pooled:", "", table.rstrip("\n")]


def write_results(out: Path, rows: list[dict], parameters: list[str], config: dict) -> None:
    """``results.csv`` (raw values), ``results.md`` (fractions in %, pixels as they are, as
    the trials' metric declarations say) and ``results.png``
    (:func:`lightning_pose.plots.curves.sweep_comparison_figure`)."""
    metric = (config.get("metric") or {}).get("name")
    columns = result_columns(rows, parameters, metric) + ["seconds", "results"]
    declared = [read_declarations(Path(r["results"])) for r in rows if r.get("results")]
    declarations, stages = next((d for d in declared if d[0]), ([], 1))
    units = declared_units(declarations, stages)
    table = io.StringIO()
    writer = csv.DictWriter(table, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(out / "results.csv", table.getvalue().encode())
    short = short_names(parameters)
    text = ["| " + " | ".join(short.get(c, c) for c in columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        text.append("| " + " | ".join(format_cell(c, row.get(c), units) for c in columns) + " |")
    ok = [r for r in rows if r["status"] == "ok" and metric in r]
    if metric and ok:
        scores = trial_scores(ok)
        text += interval_section(scores, metric)
        text += seed_section(ok, metric, parameters, scores, units.get(metric, "fraction"))
    if ok:
        sign = 1 if (config.get("metric") or {}).get("goal", "minimize") == "maximize" else -1
        best = max(ok, key=lambda r: sign * r[metric])
        goal = config["metric"].get("goal", "minimize")
        text.append(f"\nbest ({goal} {metric}): {best['trial']}")
        declaration = find_declaration(metric, declarations, ["val/"])
        if declaration is not None and declaration.higher_is_better != (goal == "maximize"):
            better = "higher" if declaration.higher_is_better else "lower"
            text.append(
                f"\nwarning: the sweep's metric.goal is {goal}, but {declaration.title} "
                f"({metric}) declares {better} is better."
            )
    write_bytes_atomic(out / "results.md", ("\n".join(text) + "\n").encode())
    if metric:
        save_figure(results_figure(rows, metric, parameters), out / "results.png")


def trial_pdj_curves(rows: list[dict]) -> dict[str, tuple[np.ndarray, dict[int, np.ndarray]]]:
    """Each successful trial's PDJ curves (``val_pdj_curve.csv`` of its last validation):
    trial -> (thresholds (T,), stage -> PDJ (T,))."""
    curves = {}
    for row in rows:
        path = Path(row["results"]) / "val_pdj_curve.csv"
        if row["status"] == "ok" and path.is_file():
            curves[row["trial"]] = read_pdj_curves(path)
    return curves


def results_figure(rows: list[dict], metric: str, parameters: Sequence[str] = ()) -> Figure:
    """The sweep's metric per trial and each trial's final-stage PDJ curve
    (:func:`lightning_pose.plots.curves.sweep_comparison_figure`); trials are labelled with their
    values of ``parameters``."""
    labels = {
        r["trial"]: " ".join([r["trial"], *(str(r.get(p)) for p in parameters)]) for r in rows
    }
    values = [r.get(metric) if r["status"] == "ok" else None for r in rows]
    finals = {
        labels[t]: (x, stages[max(stages)]) for t, (x, stages) in trial_pdj_curves(rows).items()
    }
    return sweep_comparison_figure(list(labels.values()), values, metric, finals)


def latest_sweep_dir(folder: Path) -> Path:
    """The newest runner folder (one holding ``results.csv``) under ``folder``.

    Raises:
        FileNotFoundError: there is none.
    """
    found = [p.parent for p in folder.glob("*/results.csv")]
    if not found:
        raise FileNotFoundError(f"no sweep results under {folder} (python -m lightning_pose sweep)")
    return max(found, key=lambda p: (p / "results.csv").stat().st_mtime_ns)


def read_results(out: Path) -> tuple[dict, list[dict]]:
    """A runner's folder: the sweep file it ran (``sweep.yaml``) and the rows of
    ``results.csv`` (numbers as floats, empty cells left out).

    Raises:
        FileNotFoundError: ``out`` holds no ``results.csv`` or ``sweep.yaml``.
    """
    for name in ("results.csv", "sweep.yaml"):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name}: not a sweep runner's results folder")
    config = yaml.safe_load((out / "sweep.yaml").read_text())
    rows = []
    with open(out / "results.csv", newline="") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, text in raw.items():
                if text == "":
                    continue
                if key.startswith("val/") or key == "seconds":
                    row[key] = float(text)
                elif key in config["parameters"]:
                    row[key] = yaml.safe_load(text)
                else:
                    row[key] = text
            rows.append(row)
    return config, rows
