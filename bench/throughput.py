"""Training throughput: the real ``fit`` loop against the model alone, per variant.

For each model config, in one process and side by side (A B A B: these machines are shared
and noisy), images per second of optimiser steps through

* **pipeline**: the real ``fit`` loop on LSPet's training split: the configured data module
  (decode or cached crop, augmentation, collate, the configured loader workers) and step;
* **model**: the same Trainer and model on synthetic tensors of the same shapes and dtypes,
  already in memory (one random batch, repeated): the step alone.

The ratio pipeline / model is the pipeline efficiency (the performance study's bar: >= 0.9). Each
measurement times ``--seconds`` of steps after ``--warmup`` steps (so worker start-up and the
first allocations are not counted). Validation and checkpoints are off; the callbacks are
:class:`~lightning_pose.callbacks.ChannelsLast` with ``--channels-last``, else none.
``--flush-denormal`` flushes denormal floats to zero (FTZ/DAZ) in every torch thread before
any tensor work (:func:`flush_denormals`); it cannot be undone in the thread pool, so compare
it with a separate run without it. Measured on 2026-11-22: no gain (``docs/RESULTS.md``), so
the package does not set it.

    python bench/throughput.py [--variants deeppose heatmap_budget ...] [--seconds 30]
        [--threads 2] [--channels-last] [--flush-denormal] [--output docs/results/throughput.md]
        [-- CLI overrides]

Prints a markdown table and writes it, with the command, commit, CPU and torch version, to
``--output`` (atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_pose.callbacks import ChannelsLast
from lightning_pose.cli import main as cli_main
from lightning_pose.reports.provenance import commit, cpu_model
from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]

VARIANTS = ("deeppose", "deeppose_alexnet", "heatmap_effnet", "tompson", "multitask")


def denormals_flushed() -> bool:
    """Whether a parallel multiply of float32 denormals gives zeros in every intra-op thread's
    share of the tensor, not only in some. The denormals are written as bits (an integer fill
    viewed as float32: about 1.4e-39), since converting a float constant would already flush
    it in the calling thread."""
    tiny = torch.full((1 << 21,), 1 << 20, dtype=torch.int32).view(torch.float32)
    return bool(((tiny * 1.5) == 0).all())


def flush_denormals() -> bool:
    """Flush denormals to zero in every torch thread; whether that worked.

    ``torch.set_flush_denormal`` sets the MXCSR bits of the calling thread only; threads
    started later inherit them (POSIX), threads already running keep theirs. So it must run
    before torch's intra-op (OpenMP) pool starts, i.e. before the first parallel tensor
    operation; called later it flushes in the main thread alone and this returns False.
    """
    return torch.set_flush_denormal(True) and denormals_flushed()


class StepTimer(pl.Callback):
    """Time the steps after ``warmup`` and stop ``seconds`` (or ``steps`` steps) later: images
    per second, and per
    second of this process's CPU time (all its threads: on a shared machine, the rate per
    CPU-second it actually got).

    Hand-timed from Lightning's hooks, not ``torch.utils.benchmark.Timer``: what is timed is
    ``Trainer.fit``'s own loop (the loader and its workers running ahead, the hooks, the
    optimiser step), which runs the steps itself; a ``Timer`` times a statement it calls."""

    def __init__(self, warmup: int, seconds: float, steps: int | None = None) -> None:
        self.warmup, self.seconds, self.steps = warmup, seconds, steps
        self.timed_steps = 0
        self.start: float | None = None
        self.cpu_start = 0.0
        self.images = 0
        self.elapsed = 0.0
        self.cpu_elapsed = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is None:
            return
        self.images += int(batch["image"].shape[0])
        self.timed_steps += 1
        self.elapsed = time.perf_counter() - self.start
        self.cpu_elapsed = time.process_time() - self.cpu_start
        if (self.timed_steps >= self.steps) if self.steps else (self.elapsed >= self.seconds):
            trainer.should_stop = True

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed if self.elapsed > 0 else float("nan")

    @property
    def images_per_cpu_s(self) -> float:
        return self.images / self.cpu_elapsed if self.cpu_elapsed > 0 else float("nan")


class RepeatedBatch(Dataset):
    """``length`` copies of one batch (a batch per item; the loader's batch_size is None)."""

    def __init__(self, batch: dict[str, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.batch


def synthetic_batch(real: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random tensors with the shapes and dtypes of a real batch: images uniform in [0, 1],
    box-normalised keypoints uniform in [-0.4, 0.4], every joint labelled and visible; the
    other entries (boxes, normalisers, indices) copied."""
    out = dict(real)
    for key in ("image", "image_hr"):
        if key in real:
            out[key] = torch.rand_like(real[key])
    out["keypoints_norm"] = (torch.rand_like(real["keypoints_norm"]) - 0.5) * 0.8
    out["labelled"] = torch.ones_like(real["labelled"])
    out["visible"] = torch.ones_like(real["visible"])
    return out


def build(variant: str, data_root: str, overrides: list[str], data_config: Path | None = None):
    """The configured model and data module of ``conf/lspet.yaml`` (or ``data_config``) +
    ``conf/model/VARIANT``."""
    args = [
        "-c",
        str(data_config or REPO / "conf" / "lspet.yaml"),
        "-c",
        str(REPO / "conf" / "model" / f"{variant}.yaml"),
        f"--data.root={data_root}",
        "--trainer.logger=false",
        *overrides,
    ]
    cli = cli_main(args, run=False)
    cli.model.scheduler_factory = None  # a plateau schedule needs validation; not timed anyway
    return cli.model, cli.datamodule


def measure(
    model,
    loader_or_dm,
    warmup: int,
    seconds: float,
    channels_last: bool,
    precision: str = "32-true",
    callbacks: tuple[pl.Callback, ...] = (),
    timer: StepTimer | None = None,
    accelerator: str = "cpu",
) -> float:
    """Images per second of ``seconds`` of optimiser steps after ``warmup`` untimed ones, in a
    fresh one-device Trainer on ``accelerator`` (``"cpu"``; ``"gpu"``: bench/gpu_convergence.py)
    at ``precision`` (Lightning's, e.g. ``"bf16-mixed"``) with ``callbacks`` added; ``timer``:
    a :class:`StepTimer` to time with (read its CPU time after)."""
    timer = timer or StepTimer(warmup, seconds)
    callbacks = [timer, *callbacks] + ([ChannelsLast()] if channels_last else [])
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=-1,
        max_steps=10**9,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    if isinstance(loader_or_dm, pl.LightningDataModule):
        trainer.fit(model, datamodule=loader_or_dm)
    else:
        trainer.fit(model, train_dataloaders=loader_or_dm)
    return timer.images_per_s


def synthetic_loader(dm: pl.LightningDataModule, warmup: int) -> DataLoader:
    """One real training batch of ``dm`` (set up for fit) as random tensors of its shapes
    (:func:`synthetic_batch`), repeated: the model-only measurement's loader. With
    ``data.augment_on: device`` the batch is first augmented (on the CPU) to get its images."""
    real = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    batches = max(warmup + 10, 10_000)
    return DataLoader(RepeatedBatch(synthetic_batch(real), batches), batch_size=None, num_workers=0)


def run_variant(variant: str, opts: argparse.Namespace, overrides: list[str]) -> list[dict]:
    """One row per data path of ``--augment-on``; the paths' fit loops and the model alone
    measured in turn, ``--repeats`` times, on one model (it trains on through them)."""
    built = {}
    for where in opts.augment_on:
        model, dm = build(variant, opts.data_root, [*overrides, f"--data.augment_on={where}"])
        start = time.perf_counter()
        dm.trainer = None
        dm.setup("fit")  # annotations, splits and the crop cache (data.cache_images, device)
        built[where] = (model, dm, time.perf_counter() - start)
    model, first, _ = built[opts.augment_on[0]]
    synthetic = synthetic_loader(first, opts.warmup)

    def timed(source) -> float:
        timer = StepTimer(opts.warmup, opts.seconds, opts.steps)
        return measure(model, source, opts.warmup, opts.seconds, opts.channels_last, timer=timer)

    pipeline: dict[str, list[float]] = {where: [] for where in opts.augment_on}
    steps_only = []
    for _ in range(opts.repeats):
        for where in opts.augment_on:
            pipeline[where].append(timed(built[where][1]))
        steps_only.append(timed(synthetic))
    m = sum(steps_only) / len(steps_only)
    return [
        {
            "variant": variant,
            "augment_on": where,
            "input": dm.input_size,
            "batch": dm.batch_size,
            "workers": dm.num_workers,
            "cache": dm.cache_images or where == "device",
            "setup_s": setup_s,
            "pipeline": pipeline[where],
            "model": steps_only,
            "ratio": sum(pipeline[where]) / len(pipeline[where]) / m,
        }
        for where, (_, dm, setup_s) in built.items()
    ]


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | augment on | input px | batch | workers | cached crops | pipeline img/s | "
        "model-only img/s | ratio | setup s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pipeline = " / ".join(f"{v:.1f}" for v in r["pipeline"])
        model = " / ".join(f"{v:.1f}" for v in r["model"])
        lines.append(
            f"| {r['variant']} | {r.get('augment_on', 'cpu')} | {r['input']} | {r['batch']} | "
            f"{r['workers']} | "
            f"{'yes' if r['cache'] else 'no'} | {pipeline} | {model} | {r['ratio']:.2f} | "
            f"{r['setup_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores visible, torch {torch.__version__}"


def provenance(script: str, argv: list[str], threads: int, channels_last: bool) -> str:
    """A report's first lines, without the final full stop: the command
    (``python bench/SCRIPT ARGV``), the commit, the UTC time, the machine, the threads."""
    return (
        f"Command: `python bench/{script} {' '.join(argv)}`  \n"
        f"Commit {commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{machine()}, {threads} torch threads{', channels-last' if channels_last else ''}"
    )


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``[options] -- [CLI overrides]`` -> (options, overrides)."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    argv, overrides = split_overrides(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS) + ["heatmap_budget"])
    parser.add_argument("--seconds", type=float, default=30.0, help="timed seconds per run")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (not --seconds)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per run")
    parser.add_argument(
        "--augment-on", nargs="+", choices=["cpu", "device"], default=["cpu"],
        help="data paths to measure (data.augment_on), each in turn",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs per variant")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--flush-denormal", action="store_true")
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(REPO / "docs" / "results" / "throughput.md"))
    return parser.parse_args(argv), overrides


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    opts, overrides = parse(argv)
    torch.set_num_threads(opts.threads)
    if opts.flush_denormal and not flush_denormals():
        raise SystemExit("--flush-denormal: denormals not flushed in every thread (set too late?)")
    os.environ.setdefault("WANDB_MODE", "disabled")
    rows = []
    for variant in opts.variants:
        new = run_variant(variant, opts, overrides)
        rows += new
        print("\n".join(table(new).splitlines()[2:]), flush=True)
    what = (
        f"{opts.steps} optimiser steps" if opts.steps else f"{opts.seconds:g} s of optimiser steps"
    )
    report = (
        "# Training throughput: real fit loop vs model only\n\n"
        + provenance("throughput.py", argv, opts.threads, opts.channels_last)
        + f"{', denormals flushed to zero' if opts.flush_denormal else ''}.  \n"
        f"Each cell: images/s over {what} after {opts.warmup} "
        f"untimed steps, {opts.repeats} alternating runs (pipeline, model, pipeline, model, "
        "...); ratio = mean pipeline / mean model. Setup: building the splits (and the crop "
        "cache where `data.cache_images`), not in the rates.\n\n" + table(rows)
    )
    print("\n" + report)
    write_bytes_atomic(Path(opts.output), report.encode())
    return rows


if __name__ == "__main__":
    main()
