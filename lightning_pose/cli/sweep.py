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
table per setting, its seeds pooled (:func:`lightning_pose.reports.tables.seed_section`, which
writes these tables).

``--trial I`` runs only the plan's trial ``I`` (1-based) into ``DIR/trial_00I``, e.g. one
trial per SLURM array task (``slurm/sweep_agent.sbatch`` with a sweep file:
``--trial $SLURM_ARRAY_TASK_ID``), every task with the same ``--output``, ``--count`` and
``--seed`` (the same plan). Each writes its row (``trial_00I/row.json``); the task that finds
every trial's row there writes the results table (:func:`run_one_trial`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lightning_pose.cli.sweep_config import SweepError, agent_command, load_sweep, trials
from lightning_pose.reports.tables import (
    latest_results,
    read_declarations,
    result_keys,
    trial_metrics,
    write_results,
)
from lightning_pose.runtime.files import write_bytes_atomic


def trial_config(trial_dir: Path, sweep_name: str, project: str) -> str:
    """The YAML that puts everything a trial writes under ``trial_dir``: the root dir, a CSV
    logger (``trial_dir/version_N``, one per fit) and a W&B logger (grouped by sweep)."""
    root = str(trial_dir.resolve())
    config = {
        "trainer": {
            "default_root_dir": root,
            "logger": [
                {
                    "class_path": "lightning_pose.runtime.resume.CSVLogger",
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
    (:func:`~lightning_pose.reports.tables.write_results`; a trial that never wrote one, e.g. a
    task killed by SLURM, leaves the table unwritten until it is run again).
    Returns this trial's row.

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
