"""Train a config on LSPet for a wall-clock budget, evaluate it, append a row to a results file.

    python bench/reproduce/budget.py NAME --budget-min 60 --steps 3100 [--cores 0,1] [--threads 2]
        [--channels-last] [--results docs/results/budget_results.md]
        -- -c conf/model/X.yaml [overrides]

1. ``fit`` on LSPet's training split (``conf/lspet.yaml`` + the given configs), pinned to
   ``--cores`` (taskset) with ``--threads`` torch threads, validating on the 900 validation
   images as the config says (each validation logs ``time/fit_s``: the accuracy-against-time
   curve), stopped at ``--steps`` optimiser steps or ``trainer.max_time`` = the budget, whichever
   comes first. ``WarmupCosineLR`` takes its length from ``--steps`` (``trainer.max_steps``), so the
   learning rate reaches its floor at the end of the budget: take ``--steps``
   from ``bench/throughput.py``'s pipeline rate x the budget / batch size, less the validations.
2. ``validate`` the final state (``last.ckpt``) on the 900 validation images (not in the
   budget).
3. Append a row to ``--results`` (markdown) and write the curve to
   ``docs/results/budget_curves/NAME.csv`` (per validation: ``time/fit_s``, ``time/train_images``,
   ``val/pdj@0.2/limb_joints``, ``val/pdj@0.2``, and the ``cores`` the fit was pinned to):
   ``bench/reproduce/budget_plot.py`` draws every curve there.

The wall time of the whole ``fit`` process (start-up, crop cache, training, validations) is
what the budget counts and what the row reports. ``--run-dir`` evaluates a finished fit run
instead of training (step 1 skipped; its wall time is read from ``fit_wall_s`` there).
The run folder is ``runs/budget/NAME``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lightning_pose.reports import provenance
from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[2]  # bench/reproduce/budget.py

CURVE_KEYS = ("time/fit_s", "time/train_images", "val/pdj@0.2/limb_joints", "val/pdj@0.2")
HEADER = (
    "| name | commit | cores x threads | budget min | fit wall s | steps | train images | "
    "val images | limb joints counted | PCK@0.2 limb joints % | PDJ@0.2 all joints % | "
    "joints counted | configs and overrides |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def budget_clock(minutes: float) -> str:
    """``trainer.max_time`` for ``minutes``: ``DD:HH:MM:SS``."""
    seconds = int(round(minutes * 60))
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def resolve_configs(args: list[str]) -> list[str]:
    """``-c FILE`` relative to the repository -> absolute (the fit runs in the run folder)."""
    out, i = [], 0
    while i < len(args):
        if args[i] in ("-c", "--config") and i + 1 < len(args):
            out += ["-c", str((REPO / args[i + 1]).resolve())]
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def fit_command(opts: argparse.Namespace, user: list[str]) -> list[str]:
    """The ``fit`` command line (without taskset)."""
    cmd = [
        sys.executable,
        "-m",
        "lightning_pose",
        "fit",
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *user,
        f"--data.root={opts.data_root}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.callbacks+=lightning_pose.callbacks.WallClock",
        f"--trainer.max_time={budget_clock(opts.budget_min)}",
    ]
    if opts.channels_last:
        cmd.append("--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast")
    if opts.steps is not None:
        cmd.append(f"--trainer.max_steps={opts.steps}")
    return cmd


def environment(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.setdefault("WANDB_MODE", "offline")
    return env


def newest_run(folder: Path, fit: bool = False) -> Path:
    """The newest ``runs/lspet/version_*`` under ``folder``; with ``fit``, the newest that has
    a ``checkpoints/last.ckpt`` (validations write run folders too)."""
    runs = sorted(folder.glob("runs/lspet/version_*"), key=lambda p: p.stat().st_mtime)
    if fit:
        runs = [run for run in runs if (run / "checkpoints" / "last.ckpt").is_file()]
    if not runs:
        raise FileNotFoundError(f"no runs/lspet/version_*{' with a last.ckpt' * fit} in {folder}")
    return runs[-1]


def curve(metrics_csv: Path) -> list[dict[str, float]]:
    """The validations of a fit: one row per validation with every key of ``CURVE_KEYS``."""
    rows = []
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            if all(row.get(k) for k in CURVE_KEYS):
                rows.append({k: float(row[k]) for k in CURVE_KEYS})
    return rows


def run(cmd: list[str], cwd: Path, log: Path, cores: str, threads: int) -> float:
    """Run ``cmd`` pinned to ``cores``; returns its wall time in seconds.

    Raises:
        RuntimeError: a non-zero exit, naming the log file.
    """
    start = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.call(
            ["taskset", "-c", cores, *cmd], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            env=environment(threads),
        )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"{cmd[3]} failed with exit code {code}; see {log}")
    return time.monotonic() - start


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    user: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, user = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--budget-min", type=float, required=True, help="wall-clock minutes")
    parser.add_argument("--steps", type=int, help="optimiser steps (also the cosine length)")
    parser.add_argument("--cores", default="0,1", help="taskset CPU list")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--results", default=str(REPO / "docs" / "results" / "budget_results.md"))
    parser.add_argument("--run-dir", help="evaluate this finished fit folder instead")
    return parser.parse_args(argv), resolve_configs(user)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    opts, user = parse(argv)
    folder = Path(opts.run_dir).resolve() if opts.run_dir else REPO / "runs" / "budget" / opts.name
    folder.mkdir(parents=True, exist_ok=True)
    if opts.run_dir:
        fit_s = float((folder / "fit_wall_s").read_text())
    else:
        cmd = fit_command(opts, user)
        (folder / "command.txt").write_text(" ".join(cmd) + "\n")
        fit_s = run(cmd, folder, folder / "fit.log", opts.cores, opts.threads)
        (folder / "fit_wall_s").write_text(f"{fit_s:.1f}\n")
    fit_run = newest_run(folder, fit=True)
    last = fit_run / "checkpoints" / "last.ckpt"
    points = curve(fit_run / "metrics.csv")
    validate = [
        sys.executable, "-m", "lightning_pose", "validate", "-c", str(REPO / "conf" / "lspet.yaml"),
        *user, f"--data.root={opts.data_root}", "--trainer.accelerator=cpu",
        "--trainer.devices=1", f"--ckpt_path={last}",
    ]  # fmt: skip
    run(validate, folder, folder / "validate.log", opts.cores, opts.threads)
    metrics = json.loads((newest_run(folder) / "val_metrics.json").read_text())
    import torch  # after the subprocesses: not needed to launch them

    steps = int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])
    commit = provenance.commit()
    batch = (
        next((int(a.split("=")[1]) for a in user if a.startswith("--data.batch_size=")), None)
        or int(points[-1]["time/train_images"] / max(1, steps))
        if points
        else 0
    )
    limb_count = metrics.get("val/count/pdj/limb_joints")
    row = {
        "name": opts.name,
        "commit": commit,
        "cores": f"{len(opts.cores.split(','))} x {opts.threads}",
        "budget_min": opts.budget_min,
        "fit_s": fit_s,
        "steps": steps,
        "train_images": steps * batch,
        "val_images": int(metrics["val/count/images"]),
        "limb_count": limb_count,
        "pck_limb": 100 * metrics["val/pdj@0.2/limb_joints"],
        "pdj_all": 100 * metrics["val/pdj@0.2"],
        "joints": int(metrics["val/count/pdj"]),
        "args": " ".join(a.replace(str(REPO) + "/", "") for a in user),
    }
    line = (
        f"| {row['name']} | {commit} | {row['cores']} | {row['budget_min']:g} | "
        f"{row['fit_s']:.0f} | {steps} | {row['train_images']} | {row['val_images']} | "
        f"{'' if limb_count is None else int(limb_count)} | {row['pck_limb']:.1f} | "
        f"{row['pdj_all']:.1f} | {row['joints']} | `{row['args']}` |\n"
    )
    results = Path(opts.results)
    text = results.read_text() if results.exists() else HEADER
    write_bytes_atomic(results, (text + line).encode())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*CURVE_KEYS, "cores"])
    writer.writeheader()
    writer.writerows({**point, "cores": len(opts.cores.split(","))} for point in points)
    write_bytes_atomic(
        REPO / "docs" / "results" / "budget_curves" / f"{opts.name}.csv", buffer.getvalue().encode()
    )
    print(HEADER + line, end="")
    return row


if __name__ == "__main__":
    main()
