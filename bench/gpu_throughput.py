"""Training throughput on the device, both data paths: samples/s of the model alone and of the
whole fit loop, and the accelerator's utilisation over each measurement.

Run by ``bench/gpu_convergence.py`` before its fits (``--throughput-batches``, in a forked
child with every core but the driver's); writes ``$OUT/throughput.md`` and ``.json``. For each
model config and batch size (the learning rate by ``--lr-scaling``, ``gpu_plan.batch_args``),
at the run's precision with channels-last, after ``warmup`` untimed steps, ``seconds`` of
optimiser steps each (``bench/throughput.py``'s :func:`measure`):

* **fit loop, data.augment_on=cpu**: the real ``Trainer.fit`` over the training split with the
  loader workers decoding nothing (cached crops) and augmenting with albumentations;
* **fit loop, data.augment_on=device**: the same with the crop cache and the batched warp on the
  device (``lightning_pose.data.device_augment``);
* **model alone**: the same Trainer on one synthetic batch of the real shapes, repeated.

Utilisation: ``nvidia-smi``'s ``utilization.gpu`` (the share of time a kernel ran), sampled every
200 ms while the steps are timed, and the peak memory torch allocated; ``None`` on the CPU.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from gpu_plan import batch_args, common_args
from throughput import StepTimer, build, measure, synthetic_loader

from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]

PATHS = ("cpu", "device")


class Utilisation:
    """``with Utilisation(on_gpu) as u: ...``: ``u.mean_percent`` of ``nvidia-smi``'s samples
    (None without a GPU or without ``nvidia-smi``) and ``u.peak_gib`` torch allocated."""

    def __init__(self, on_gpu: bool) -> None:
        self.on_gpu, self.process = on_gpu, None
        self.mean_percent: float | None = None
        self.peak_gib: float | None = None

    def __enter__(self) -> Utilisation:
        if self.on_gpu:
            import torch

            torch.cuda.reset_peak_memory_stats()
            index = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
            command = ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                       "--format=csv,noheader,nounits", "-lms", "200"]  # fmt: skip
            try:
                self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            except OSError:
                self.process = None
        return self

    def __exit__(self, *exc) -> None:
        if not self.on_gpu:
            return
        import torch

        self.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        if self.process is not None:
            self.process.terminate()
            out, _ = self.process.communicate(timeout=10)
            values = [float(v) for v in out.split() if v.replace(".", "", 1).isdigit()]
            self.mean_percent = sum(values) / len(values) if values else None


def timed(model, source, opts, on_gpu: bool) -> tuple[StepTimer, Utilisation]:
    """One measurement of ``model`` on ``source`` (a data module or a loader)."""
    timer = StepTimer(opts.throughput_warmup, opts.throughput_s)
    with Utilisation(on_gpu) as busy:
        measure(model, source, opts.throughput_warmup, opts.throughput_s, True, opts.precision,
                timer=timer, accelerator=opts.accelerator)  # fmt: skip
    return timer, busy


def measure_paths(configs: list[str], batches: list[int | None], opts, out: Path) -> list[dict]:
    """The rows (one per config, batch and measurement), written to ``out`` (JSON) as they
    come. ``opts``: ``bench/gpu_convergence.py``'s (accelerator, precision, data, workers)."""
    import torch

    on_gpu = opts.accelerator == "gpu"
    sys.argv = sys.argv[:1]  # LightningCLI is given its arguments
    rows: list[dict] = []
    for config in configs:
        for batch in batches:
            model_rate = None
            for where in PATHS:
                overrides = common_args(opts, opts.workers) + [f"--data.augment_on={where}"]
                overrides += batch_args(config, batch, opts.lr_scaling)
                start = time.perf_counter()
                model, dm = build(Path(config).stem, opts.data_root, overrides, opts.data_config)
                dm.trainer = None
                dm.setup("fit")  # the crop cache(s)
                setup_s = time.perf_counter() - start
                timer, busy = timed(model, dm, opts, on_gpu)
                row = {
                    "config": config, "batch": dm.batch_size, "input": dm.input_size,
                    "workers": dm.num_workers, "measured": f"fit loop, augment on {where}",
                    "samples_s": timer.images_per_s, "seconds": timer.elapsed,
                    "utilisation_percent": busy.mean_percent, "peak_gib": busy.peak_gib,
                    "setup_s": setup_s,
                }  # fmt: skip
                rows.append(row)
                print(f"throughput: {row}", flush=True)
                if model_rate is None:  # the model alone: the same for both paths
                    loader = synthetic_loader(dm, opts.throughput_warmup)
                    timer, busy = timed(model, loader, opts, on_gpu)
                    model_rate = timer.images_per_s
                    rows.append(row | {"measured": "model alone", "samples_s": model_rate,
                                       "seconds": timer.elapsed, "setup_s": None,
                                       "utilisation_percent": busy.mean_percent,
                                       "peak_gib": busy.peak_gib})  # fmt: skip
                row["of_model"] = row["samples_s"] / model_rate
                write_bytes_atomic(out, json.dumps(rows, indent=1).encode())
                del model, dm
                if on_gpu:
                    torch.cuda.empty_cache()
    for row in rows:
        row.setdefault("of_model", None)
    write_bytes_atomic(out, json.dumps(rows, indent=1).encode())
    return rows


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| model config | input px | batch | workers | measured | samples/s | "
             "of model alone | GPU utilisation % | peak GiB | set-up s |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def cell(value, spec: str) -> str:
        return "" if value is None else format(value, spec)

    for r in rows:
        lines.append(
            f"| {r['config']} | {r['input']} | {r['batch']} | {r['workers']} | {r['measured']} | "
            f"{r['samples_s']:.0f} | {cell(r['of_model'], '.2f')} | "
            f"{cell(r['utilisation_percent'], '.0f')} | {cell(r['peak_gib'], '.1f')} | "
            f"{cell(r['setup_s'], '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def header(opts, gpu: str, commit: str, argv: list[str]) -> str:
    return (
        f"# Training throughput on the device, both data paths\n\nCommit {commit}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {gpu}, {opts.precision}, "
        f"channels-last; {opts.throughput_s:g} s of steps after {opts.throughput_warmup} untimed "
        f"ones each.\n\nCommand: `bench/gpu_convergence.sh {shlex.join(argv)}`"
    )
