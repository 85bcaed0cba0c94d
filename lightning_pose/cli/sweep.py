"""Run a W&B sweep file's trials on this machine, one after another, without a W&B server.

    python -m lightning_pose sweep sweeps/cascade_depth.yaml [--output DIR] [--count N]
        [--dry-run] [-- --trainer.max_time=00:00:15:00 ...]
    python -m lightning_pose sweep FILE --output DIR --trial I [...]   # trial I only

The file is the one ``wandb sweep`` takes (W&B's sweep configuration; checked against its
documented keys, :func:`check_sweep`). ``grid`` runs every combination of the parameters'
values, ``random`` draws ``--count`` (or the file's ``run_cap``) combinations; ``bayes`` and
``custom`` need W&B's sweep controller (``wandb sweep`` + ``wandb agent``). Each trial runs the
file's ``command`` as a W&B agent would (:func:`agent_command`, with W&B's own formatting of
the parameters), in a subprocess, with:

* the interpreter running this runner for ``python``;
* ``-c <trial dir>/trial.yaml`` before the swept parameters: the trial's loggers (CSV, and W&B
  grouped by sweep, named by trial) and ``trainer.default_root_dir``, all under its own folder;
* the arguments after ``--`` at the end (a CPU budget, ``--trainer.fast_dev_run=2``, ...);
* ``WANDB_MODE=offline`` (``disabled`` if already set so); ``wandb sync <dir>/trial_*/wandb``
  uploads the runs later.

A trial that fails is recorded as failed and the sweep goes on. After each trial the folder
gets ``results.csv`` and ``results.md`` (one row per trial: status, swept values, the sweep's
metric, every declared metric's pooled values and each stage's values of the sweep metric's
metric, from the trial's last ``val_metrics.json``; which keys, in which order and unit, from
the ``metric_declarations.json`` beside it) and ``results.png`` (the metric per trial and each
trial's final-stage PDJ curve). With every trial's ``per_image_val.csv``, ``results.md`` also
gives the sweep metric's 95 % bootstrap interval per trial and each trial's paired difference to
the first; a sweep with a ``seed_everything`` parameter (several seeds of each setting) gets a
table per setting, its seeds pooled (:func:`seed_section`).

``--trial I`` runs only the plan's trial ``I`` (1-based) into ``DIR/trial_00I``, e.g. one
trial per SLURM array task (``slurm/sweep_agent.sbatch`` with a sweep file:
``--trial $SLURM_ARRAY_TASK_ID``), every task with the same ``--output``, ``--count`` and
``--seed`` (the same plan). Each writes its row (``trial_00I/row.json``); the task that finds
every trial's row there writes the results table (:func:`run_one_trial`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from lightning_pose.callbacks.evaluation_files import PER_IMAGE_FILE as PER_IMAGE_TEMPLATE
from lightning_pose.callbacks.metrics_table import format_value
from lightning_pose.cli.sweep_config import SweepError, agent_command, load_sweep, trials
from lightning_pose.metrics.declaration import (
    MetricDeclaration,
    find_declaration,
    read_declarations,
)
from lightning_pose.metrics.intervals import (
    PerImageScores,
    comparison_table,
    pool_seeds,
    read_per_image,
)
from lightning_pose.plots.curves import read_pdj_curves, save_figure, sweep_comparison_figure
from lightning_pose.runs.files import write_bytes_atomic

# Row entries that are not a metric.
NOT_METRICS = ("trial", "status", "seconds", "results")
# The swept parameter that repeats a setting with another seed (LightningCLI's own key).
SEED_PARAMETER = "seed_everything"


PER_IMAGE_FILE = PER_IMAGE_TEMPLATE.format(split="val")  # a validation's per-image scores


def trial_config(trial_dir: Path, sweep_name: str, project: str) -> str:
    """The YAML that puts everything a trial writes under ``trial_dir``: the root dir, a CSV
    logger (``trial_dir/version_N``, one per fit) and a W&B logger (grouped by sweep)."""
    root = str(trial_dir.resolve())
    config = {
        "trainer": {
            "default_root_dir": root,
            "logger": [
                {
                    "class_path": "lightning_pose.runs.resume.CSVLogger",
                    "init_args": {"save_dir": root, "name": ""},
                },
                {
                    "class_path": "pytorch_lightning.loggers.WandbLogger",
                    "init_args": {
                        "save_dir": root,
                        "project": project,
                        "group": sweep_name,
                        "name": f"{sweep_name}/{trial_dir.name}",
                        "offline": False,  # the mode: WANDB_MODE, set by the runner
                    },
                },
            ],
        }
    }
    return yaml.safe_dump(config, sort_keys=False)


def trial_command(
    config: dict, values: dict[str, Any], trial_yaml: Path, extra: list[str]
) -> list[str]:
    """The agent's command with this interpreter for ``python``, the trial config before the
    parameters and ``extra`` at the end.

    Raises:
        SweepError: a None value (LightningCLI would read the agent's ``--key=None`` as the
            string "None"; write ``"null"``).
    """
    for name, value in values.items():
        if value is None:
            raise SweepError(
                f"parameters.{name}: a null value reaches LightningCLI as 'None'; write \"null\""
            )
    command = agent_command(config, values, ["-c", str(trial_yaml)])
    return [sys.executable if c == "python" else c for c in command] + list(extra)


def latest_results(trial_dir: Path) -> Path | None:
    """The folder of the trial's last validation: the newest ``val_metrics.json`` under it
    (one per fit; a cascade trial fits its stages one after another)."""
    found = [p for p in trial_dir.rglob("val_metrics.json") if "wandb" not in p.parts]
    return max(found, key=lambda p: p.stat().st_mtime_ns).parent if found else None


def run_trial(
    trial_dir: Path, command: list[str], metric: str | None, env: dict[str, str]
) -> dict[str, Any]:
    """Run one trial (stdout and stderr to ``trial_dir/log.txt``); returns its table row
    without the parameter values: status, seconds, results folder and its metrics."""
    (trial_dir / "command.txt").write_text(shlex.join(command) + "\n")
    start = time.monotonic()
    with open(trial_dir / "log.txt", "wb") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    row: dict[str, Any] = {"seconds": round(time.monotonic() - start, 1)}
    results = latest_results(trial_dir)
    metrics = trial_metrics({"results": results}) if results else {}
    declarations, stages = read_declarations(results) if results else ([], 1)
    keys = ([metric] if metric else []) + result_keys(declarations, stages, metric)
    row |= {k: metrics[k] for k in keys if k in metrics}
    if code != 0:
        row["status"] = f"failed: exit {code} (see log.txt)"
    elif results is None:
        row["status"] = "failed: no val_metrics.json"
    elif metric is not None and metric not in metrics:
        row["status"] = f"failed: {metric} not logged"
    else:
        row["status"] = "ok"
    row["results"] = str(results or trial_dir)
    return row


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
    first (:func:`lightning_pose.metrics.intervals.comparison_table`), from the trials'
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
    of its seeds pooled (:func:`~lightning_pose.metrics.intervals.pool_seeds`) with a 95 %
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


def trial_metrics(row: dict) -> dict[str, float]:
    """A trial's last ``val_metrics.json`` (every key it logged), {} for a trial without."""
    path = Path(row["results"]) / "val_metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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


def trial_env() -> dict[str, str]:
    """A trial's environment: this one with ``WANDB_MODE=offline`` (``disabled`` if already
    set so) and without a W&B agent's run variables."""
    env = dict(os.environ)
    env["WANDB_MODE"] = "disabled" if env.get("WANDB_MODE") == "disabled" else "offline"
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        env.pop(key, None)  # never attach to a W&B agent's run
    return env


ROW_FILE = "row.json"  # in a trial folder run with --trial: its row of the results table


def run_one_trial(
    path: Path, out: Path, extra: list[str], index: int, count: int | None = None, seed: int = 0
) -> dict:
    """Run the plan's trial ``index`` (1-based) into ``out/trial_NNN`` and write its row
    (``row.json``); where every planned trial has its row, write the results table from them
    (:func:`write_results`; a trial that never wrote one, e.g. a task killed by SLURM, leaves
    the table unwritten until it is run again). Returns this trial's row.

    Raises:
        SweepError: ``index`` is not a trial of the plan.
    """
    config = load_sweep(path)
    planned = trials(config, count, seed)
    if not 1 <= index <= len(planned):
        raise SweepError(
            f"--trial {index}: {path} plans {len(planned)} trials (1 to {len(planned)})"
        )
    sweep_name = config.get("name") or path.stem
    values = planned[index - 1]
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "sweep.yaml", path.read_bytes())
    trial_dir = out / f"trial_{index:03d}"
    trial_dir.mkdir(exist_ok=True)
    command = trial_command(config, values, trial_dir / "trial.yaml", extra)
    print(f"[{index}/{len(planned)}] {shlex.join(command)}", flush=True)
    (trial_dir / "trial.yaml").write_text(
        trial_config(trial_dir, sweep_name, config.get("project") or "lightning_pose")
    )
    row = {"trial": trial_dir.name, **values}
    row |= run_trial(trial_dir, command, (config.get("metric") or {}).get("name"), trial_env())
    print(f"[{index}/{len(planned)}] {row['status']} in {row['seconds']} s", flush=True)
    write_bytes_atomic(trial_dir / ROW_FILE, json.dumps(row).encode())
    files = [out / f"trial_{i:03d}" / ROW_FILE for i in range(1, len(planned) + 1)]
    if all(f.is_file() for f in files):  # the last trial to finish writes the table
        rows = [json.loads(f.read_text()) for f in files]
        write_results(out, rows, list(config["parameters"]), config)
        print(f"all {len(planned)} trials done: {out / 'results.md'}", flush=True)
    return row


def run_sweep(
    path: Path,
    out: Path,
    extra: list[str],
    count: int | None = None,
    seed: int = 0,
    dry_run: bool = False,
) -> list[dict]:
    """Run the sweep file's trials one after another into ``out/trial_NNN``; returns the rows
    of the results table (written after every trial)."""
    config = load_sweep(path)
    planned = trials(config, count, seed)
    sweep_name = config.get("name") or path.stem
    project = config.get("project") or "lightning_pose"
    env = trial_env()
    parameters = list(config["parameters"])
    rows: list[dict] = []
    out.mkdir(parents=True, exist_ok=True)
    if not dry_run:
        (out / "sweep.yaml").write_text(path.read_text())
    for i, values in enumerate(planned, start=1):
        trial_dir = out / f"trial_{i:03d}"
        command = trial_command(config, values, trial_dir / "trial.yaml", extra)
        print(f"[{i}/{len(planned)}] {shlex.join(command)}", flush=True)
        if dry_run:
            continue
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "trial.yaml").write_text(trial_config(trial_dir, sweep_name, project))
        row = {"trial": trial_dir.name, **values}
        row |= run_trial(trial_dir, command, (config.get("metric") or {}).get("name"), env)
        print(f"[{i}/{len(planned)}] {row['status']} in {row['seconds']} s", flush=True)
        rows.append(row)
        write_results(out, rows, parameters, config)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m lightning_pose sweep FILE [options] [-- extra trial args]``: 0 when every
    trial succeeded, 1 when one failed, 2 when the file cannot be run offline."""
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m lightning_pose sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sweep_file", type=Path, help="a W&B sweep YAML file")
    parser.add_argument(
        "--output", type=Path, help="results folder (default runs/sweeps/<stem>-<date-time>)"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="trials (random; grid: the first N)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random search's seed")
    parser.add_argument("--dry-run", action="store_true", help="print the trial commands only")
    parser.add_argument(
        "--trial",
        type=int,
        default=None,
        help="run only this trial (1-based) into OUTPUT/trial_NNN, e.g. one per SLURM array "
        "task; the task that completes the set writes the results (needs --output)",
    )
    args = parser.parse_args(argv)
    if args.trial is not None:
        if args.output is None or args.dry_run:
            parser.error("--trial needs --output (the same folder for every trial), no --dry-run")
        try:
            row = run_one_trial(
                args.sweep_file, args.output, extra, args.trial, args.count, args.seed
            )
        except SweepError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0 if row["status"] == "ok" else 1
    out = (
        args.output
        or Path("runs/sweeps") / f"{args.sweep_file.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    try:
        rows = run_sweep(args.sweep_file, out, extra, args.count, args.seed, args.dry_run)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.dry_run:
        print(f"results: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1
