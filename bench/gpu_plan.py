"""What bench/gpu_convergence.py runs and how long each fit may take: the jobs (a fit per family,
every trial of the sweeps, in the sweep runner's trial folders), their lanes and cores, and the
arguments that size a fit to its share of the deadline from the probe's rates. Pure functions
of the probe's numbers (tests/bench/test_gpu_convergence.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lightning_pose.cli.budget import WARMUP_STEPS, max_time
from lightning_pose.cli.sweep import trial_command
from lightning_pose.cli.sweep_config import load_sweep, trials

REPO = Path(__file__).resolve().parents[1]

FAMILIES = {
    "deeppose": "conf/model/deeppose.yaml",
    "tompson": "conf/model/tompson.yaml",
    "multitask": "conf/model/multitask.yaml",
    "heatmap_budget": "conf/model/heatmap_budget.yaml",
}
SWEEPS = ("sweeps/cascade_depth.yaml", "sweeps/pooling.yaml")
# The probe times a cascade's stage 1 (a later stage needs the data module when its fit starts,
# to estimate the stage-1 errors: DeepPose section 3.2); later stages, slower, are held to the
# same trainer.max_time.
PROBE_ARGS = {"conf/model/deeppose_cascade.yaml": ["--model.init_args.num_stages=1"]}
# Schedules whose length is trainer.max_steps (or their total_steps): a fit's budget sets both.
COSINE_SCHEDULES = ("WarmupCosineLR", "PlannedCosineLR")
TAIL_S = 5.0  # after max_time: the stop's validation, last.ckpt, teardown


@dataclass
class Job:
    """One fit (a family) or sweep trial (one or more fits), run as ``python -m ...``."""

    name: str  # families/deeppose, cascade_depth/trial_002
    sweep: str | None  # the sweep's name; None for a family fit
    model_config: str  # conf/model/X.yaml: the probe's key
    command: list[str]  # [python, -m, module, args...], without the budget's arguments
    folder: Path
    fits: int = 1
    values: dict = field(default_factory=dict)  # swept parameters
    row: dict = field(default_factory=dict)


def model_config_of(command: list[str]) -> str:
    """The ``-c conf/model/X.yaml`` of a command."""
    return next(c for c in command if c.startswith("conf/model/"))


def without_wandb(config: dict) -> dict:
    """``config`` (a parsed YAML config) with its W&B logger left out of ``trainer.logger``."""
    loggers = config["trainer"]["logger"]
    config["trainer"]["logger"] = [x for x in loggers if "Wandb" not in x["class_path"]]
    return config


def csv_only(trial_yaml: str) -> str:
    """The sweep runner's trial config without its W&B logger."""
    return yaml.safe_dump(without_wandb(yaml.safe_load(trial_yaml)), sort_keys=False)


DATA_CONFIG = "conf/lspet.yaml"


def data_config_without_wandb(work: Path) -> Path:
    """``conf/lspet.yaml`` without its W&B logger, written to ``work/lspet.yaml`` (its relative
    ``config`` and ``evaluation`` paths made absolute). The device has no ``wandb``, and
    without it jsonargparse cannot check ``WandbLogger``'s arguments: a config that names it
    fails to parse there, even when a later ``-c`` replaces the logger list."""
    config = without_wandb(yaml.safe_load((REPO / DATA_CONFIG).read_text()))
    config["evaluation"] = str((REPO / DATA_CONFIG).parent / config["evaluation"])
    config["config"] = str((REPO / DATA_CONFIG).parent / config["config"])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "lspet.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load_seeded_sweep(path: str, seeds: list[int] | None = None) -> dict:
    """A sweep file, with every trial repeated for each of ``seeds`` (a ``seed_everything``
    parameter, LightningCLI's own key: the sweep runner pools each setting's seeds,
    ``lightning_pose.reports.tables.seed_section``); as written without ``seeds``."""
    config = load_sweep(REPO / path)
    if seeds:
        config["parameters"]["seed_everything"] = {"values": list(seeds)}
    return config


def make_jobs(
    work: Path,
    families: list[str],
    sweeps: list[str],
    count: int | None,
    seeds: list[int] | None = None,
) -> list[Job]:
    """The family fits and the sweeps' trials (the first ``count`` of each sweep, or all; each
    setting once per seed of ``seeds``), each reading :func:`data_config_without_wandb` in
    place of ``conf/lspet.yaml``."""
    data_config = str(data_config_without_wandb(work))
    jobs = []
    for family in families:
        folder = work / "families" / family
        command = ["python", "-m", "lightning_pose", "fit", "-c", DATA_CONFIG]
        command += ["-c", FAMILIES[family], "-c", str(folder / "trial.yaml")]
        jobs.append(Job(f"families/{family}", None, FAMILIES[family], command, folder))
    for path in sweeps:
        config = load_seeded_sweep(path, seeds)
        name = config.get("name") or Path(path).stem
        for i, values in enumerate(trials(config, count), start=1):
            folder = work / name / f"trial_{i:03d}"
            command = trial_command(config, values, folder / "trial.yaml", [])
            command = command[command.index("-m") - 1 :]  # from the interpreter on
            cascade = "fit-cascade" in command  # python -m lightning_pose fit-cascade ...
            fits = int(values["depth"]) if cascade else 1
            job = Job(f"{name}/{folder.name}", name, model_config_of(command), command, folder)
            job.fits, job.values = fits, values
            jobs.append(job)
    for job in jobs:
        job.command = [data_config if c == DATA_CONFIG else c for c in job.command]
    return jobs


def assign_lanes(jobs: list[Job], lanes: int) -> list[list[Job]]:
    """Jobs to lanes, most fits first, each to the lane with the fewest fits (LPT); family fits
    before sweep trials of the same size, so that a short budget still has every family."""
    out: list[list[Job]] = [[] for _ in range(lanes)]
    for job in sorted(jobs, key=lambda j: (-j.fits, j.sweep is not None)):
        min(out, key=lambda lane: sum(j.fits for j in lane)).append(job)
    return out


def lane_cores(cores: list[int], lanes: int) -> list[list[int]]:
    """Each lane's cores: the first core is left to this process; with fewer cores than lanes,
    lanes share them."""
    spare = cores[1:] or cores
    per = max(1, len(spare) // lanes)
    return [
        spare[i * per : (i + 1) * per] if len(spare) >= lanes else [spare[i % len(spare)]]
        for i in range(lanes)
    ]


def epochs_for(
    seconds: float, rates: dict, lanes: int, n_train: int, n_val: int, scale: float = 1.0
) -> int:
    """Epochs of ``n_train`` training images (each followed by ``n_val`` validation images)
    that ``seconds`` buy: at the lane rate that finished fits of the config achieved
    (``achieved_samples_s``, set by :func:`record_achieved`: validation included) where there is
    one, else at min(loader, model / lanes) samples/s, the probe's guess, times ``scale``
    (``--rate-scale``); at least 1.

    The guess is low: on the H200 (docs/results/HISTORY.md, "GPU convergence") five lanes ran at
    264-593 samples/s each against a guess of 160-222, and every fit ended at 35-60 % of its
    ``max_time``: the lanes are host-bound, so they do not split the GPU's rate as
    model / lanes assumes. ``scale`` corrects the guess by such a measured ratio; a fit that the
    correction over-sizes is stopped at its ``max_time`` before its schedule ends."""
    if rates.get("achieved_samples_s"):  # training images a second of fit, validation included
        return max(1, int(rates["achieved_samples_s"] * seconds / n_train))
    rate = min(rates["loader_samples_s"], rates["model_samples_s"] / lanes) * scale
    return max(1, int(rate * seconds / (n_train + n_val)))


def record_achieved(rates: dict, samples: int, wall_s: float, fits: int) -> float | None:
    """Update ``rates["achieved_samples_s"]`` (one model config's, in the probe) with a job
    that ran to its end: ``samples`` training images over ``wall_s`` less each fit's start-up
    and tail (the probe's ``startup_s`` and :data:`TAIL_S`); the mean over the jobs so far.
    Returns this job's rate (None when too short to measure)."""
    seconds = wall_s - fits * (rates["startup_s"] + TAIL_S)
    if samples <= 0 or seconds < 1.0:
        return None
    rate = samples / seconds
    seen = rates.setdefault("achieved", [])
    seen.append(rate)
    rates["achieved_samples_s"] = sum(seen) / len(seen)
    return rate


def budget_args(job: Job, probe: dict, opts: argparse.Namespace, fit_s: float) -> list[str]:
    """The command-line arguments that size one fit of ``job`` to ``fit_s`` seconds of wall."""
    rates = probe["configs"][job.model_config]
    run_s = max(1.0, fit_s - rates["startup_s"] - TAIL_S)
    epochs = epochs_for(run_s, rates, opts.lanes, probe["n_train"], probe["n_val"], opts.rate_scale)
    if opts.max_epochs:
        epochs = min(epochs, opts.max_epochs)
    args = [
        f"--trainer.max_time={max_time(run_s / 60)}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.val_check_interval=1.0",
        "--trainer.check_val_every_n_epoch=1",
    ]
    scheduler = yaml.safe_load((REPO / job.model_config).read_text())["model"]["init_args"]
    if str((scheduler.get("scheduler") or {}).get("class_path", "")).endswith(COSINE_SCHEDULES):
        steps = epochs * max(1, probe["n_train"] // rates["batch"])
        args += [
            f"--trainer.max_steps={steps}",
            f"--model.init_args.scheduler.init_args.total_steps={steps}",
            f"--model.init_args.scheduler.init_args.warmup_steps={min(WARMUP_STEPS, steps // 10)}",
        ]
    else:
        args.append("--trainer.max_steps=-1")
    job.row.update({"planned epochs": epochs * job.fits, "max_time s": round(run_s)})
    return args


def batch_args(model_config: str, batch_size: int | None, rule: str = "sqrt") -> list[str]:
    """``--data.batch_size`` and the optimiser's learning rate scaled with it from the config's
    (batch: ``data.batch_size`` of the model config, else of ``conf/lspet.yaml``): ``sqrt``, the
    square-root rule for Adam-type optimisers (Malladi et al., NeurIPS 2022; every config here
    uses AdamW), ``linear`` (Goyal et al. 2017, for SGD) or ``none``. [] without a batch size.

    On the H200 at batch 32 the model ran at 800-1,240 samples/s, launch- and host-bound
    (docs/results/HISTORY.md, "GPU convergence"): a larger batch is the first lever.
    """
    if not batch_size:
        return []
    model = yaml.safe_load((REPO / model_config).read_text())
    base = (model.get("data") or {}).get("batch_size")
    base = base or yaml.safe_load((REPO / DATA_CONFIG).read_text())["data"]["batch_size"]
    optimizer = model["model"]["init_args"].get("optimizer") or {}
    lr = (optimizer.get("init_args") or {}).get("lr")
    args = [f"--data.batch_size={batch_size}"]
    if lr is None or rule == "none":
        return args
    ratio = batch_size / base
    scale = ratio if rule == "linear" else ratio**0.5
    return args + [f"--model.init_args.optimizer.init_args.lr={lr * scale:.6g}"]


def common_args(opts: argparse.Namespace, workers: int) -> list[str]:
    """Every fit's arguments: data (where it is augmented: ``opts.augment_on``), device,
    precision, channels-last, the wall clock."""
    args = [
        f"--data.root={opts.data_root}",
        "--data.cache_images=true",
        f"--data.augment_on={getattr(opts, 'augment_on', 'cpu')}",
        f"--data.num_workers={workers}",
        f"--trainer.accelerator={opts.accelerator}",
        "--trainer.devices=1",
        f"--trainer.precision={opts.precision}",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=lightning_pose.callbacks.ChannelsLast",
        "--trainer.callbacks+=lightning_pose.callbacks.WallClock",
    ]
    return args + opts.smoke_args
