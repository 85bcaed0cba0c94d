"""FLOPs of one training step per model variant, and how near the CPU's peak each step runs.

    python bench/flops.py [--variants heatmap_budget deeppose ...] [--precisions 32-true
        bf16-mixed] [--seconds 20] [--warmup 3] [--repeats 1] [--threads 2] [--channels-last]
        [--ghz 2.6] [--fp32-flop-per-cycle 32] [--bf16-flop-per-cycle 64]
        [--output docs/results/flops.md]
        [-- CLI overrides]

For each variant (``conf/lspet.yaml`` + ``conf/model/VARIANT.yaml``) and each precision, the
model-only step of ``bench/throughput.py``: the configured model in a real CPU Trainer on a
synthetic batch of the real shapes (no data loading), images per second over ``--seconds``
after ``--warmup`` untimed steps. One of the untimed steps (the second) runs inside
``torch.utils.flop_counter.FlopCounterMode``: the FLOPs of the whole step (forward, loss,
backward), counted from the shapes of every convolution and matrix multiplication (and their
backward; 1 multiply-add = 2 FLOPs; the backward of grouped convolutions by
:func:`conv_backward_flop`, since torch's formula overcounts it). Element-wise work (batch
norm, activations, the loss's sums, the optimiser's update) is not counted: it is a small share
of the arithmetic but not of the time (memory-bound). The counts do not depend on the precision.

* achieved GFLOP/s = FLOPs per step x steps per second;
* peak = cores x FLOP per cycle per core x clock: ``--threads`` cores, the clock ``--ghz``
  (default: /proc/cpuinfo's ``cpu MHz``), ``--fp32-flop-per-cycle`` (default 32: two 256-bit
  FMA pipes, 2 x 8 lanes x 2 FLOPs, as on AMD Zen 3 and Zen 4, whose AVX-512 runs on them
  twice) and ``--bf16-flop-per-cycle`` (default 64: ``vdpbf16ps`` does two bf16
  multiply-adds per fp32 lane; for a CPU with native bf16 only; without it bf16 is emulated
  and its peak is the fp32 one). Say which numbers were used when quoting the percentage.
* depthwise share: the share of the forward convolutions' FLOPs in depthwise convolutions
  (``groups == in_channels``), from forward hooks during the counted step; these have little
  arithmetic per byte, so their time share is far above their FLOP share.

Prints a markdown table and writes it, with the command, commit, CPU and torch version, to
``--output`` (atomically).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from throughput import (
    VARIANTS,
    StepTimer,
    build,
    measure,
    provenance,
    split_overrides,
    synthetic_loader,
)
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from lightning_pose.reports.provenance import native_bf16
from lightning_pose.runtime.files import write_bytes_atomic
from lightning_pose.runtime.precision import native_bf16_flag

REPO = Path(__file__).resolve().parents[1]


def conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    """FLOPs of ``aten.convolution_backward``: each gradient asked for (``output_mask``: the
    input's, the weight's) costs as many multiply-adds as the forward convolution.

    torch 2.14's own formula counts the weight gradient as a convolution of the transposed
    input and output gradient without the groups, so for a grouped convolution it counts
    ``groups`` times too many (a depthwise 3x3 convolution of 1,152 channels: 1,152 times);
    the forward count (``w_shape`` is ``(C_out, C_in / groups, kh, kw)``) has them right.
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))  # fmt: skip


class StepFlops(pl.Callback):
    """Count the FLOPs of training step ``step`` (forward, loss and backward; between
    ``on_train_batch_start`` and ``on_train_batch_end``) with ``FlopCounterMode``, and the
    forward FLOPs of its depthwise convolutions.

    Attributes:
        flops: FLOPs of the step (None until counted).
        by_op: FLOPs per aten operator, e.g. ``{"aten.convolution": ...}``.
        depthwise_forward: forward FLOPs of depthwise ``nn.Conv2d`` layers in the step.
    """

    def __init__(self, step: int = 1) -> None:
        self.step = step
        self.flops: int | None = None
        self.by_op: dict[str, int] = {}
        self.depthwise_forward = 0
        self._mode: FlopCounterMode | None = None
        self._hooks: list = []

    def _count_depthwise(self, conv: torch.nn.Conv2d, inputs, output: torch.Tensor) -> None:
        # a depthwise output element costs kh x kw multiply-adds
        kh, kw = conv.kernel_size
        self.depthwise_forward += 2 * output.numel() * kh * kw

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step or self.flops is not None:
            return
        for module in pl_module.modules():
            if isinstance(module, torch.nn.Conv2d) and module.groups == module.in_channels > 1:
                self._hooks.append(module.register_forward_hook(self._count_depthwise))
        self._mode = FlopCounterMode(
            display=False,
            custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop},
        )
        self._mode.__enter__()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._mode is None:
            return
        self._mode.__exit__(None, None, None)
        for hook in self._hooks:
            hook.remove()
        self.flops = self._mode.get_total_flops()
        counts = self._mode.get_flop_counts().get("Global", {})
        self.by_op = {str(op): int(n) for op, n in counts.items()}
        self._mode, self._hooks = None, []

    @property
    def depthwise_share(self) -> float:
        """Depthwise convolutions' share of the forward convolution FLOPs."""
        forward = self.by_op.get("aten.convolution", 0)
        return self.depthwise_forward / forward if forward else 0.0


def clock_ghz() -> float:
    """The clock in GHz from /proc/cpuinfo's first ``cpu MHz`` line.

    Raises:
        ValueError: no such line (give ``--ghz``).
    """
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        mhz = next(float(line.split(":")[1]) for line in lines if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError) as error:
        raise ValueError("no 'cpu MHz' in /proc/cpuinfo: give --ghz") from error
    return mhz / 1000


def peak_gflops(opts: argparse.Namespace, precision: str) -> float:
    """cores x FLOP per cycle x GHz for ``precision``; bf16 counts its own rate only where the
    CPU computes bf16 natively (:func:`lightning_pose.runtime.precision.native_bf16_flag`)."""
    bf16 = precision.startswith("bf16") and native_bf16_flag() is not None
    per_cycle = opts.bf16_flop_per_cycle if bf16 else opts.fp32_flop_per_cycle
    return opts.threads * per_cycle * opts.ghz


def run_variant(variant: str, opts: argparse.Namespace, overrides: list[str]) -> list[dict]:
    """One row per precision: FLOPs per step, images/s (mean of ``--repeats`` runs, the
    precisions alternating: A B A B), images per CPU-second, GFLOP/s, share of the peak."""
    model, dm = build(variant, opts.data_root, overrides)
    dm.trainer = None
    dm.setup("fit")
    loader = synthetic_loader(dm, opts.warmup)
    rates: dict[str, list[tuple[float, float]]] = {p: [] for p in opts.precisions}
    counters: dict[str, StepFlops] = {}
    for _ in range(opts.repeats):
        for precision in opts.precisions:
            counter = counters.setdefault(precision, StepFlops(step=1))  # counts once
            timer = StepTimer(opts.warmup, opts.seconds)
            args = (opts.warmup, opts.seconds, opts.channels_last, precision, (counter,), timer)
            rates[precision].append((measure(model, loader, *args), timer.images_per_cpu_s))
    rows = []
    for precision in opts.precisions:
        counter = counters[precision]
        if counter.flops is None:
            raise RuntimeError(f"{variant}: step 1 was not counted (--warmup must be >= 2)")
        wall = [r for r, _ in rates[precision]]
        rate = sum(wall) / len(wall)
        rows.append(
            {
                "variant": variant,
                "input": dm.input_size,
                "batch": dm.batch_size,
                "precision": precision,
                "gflop_step": counter.flops / 1e9,
                "runs": wall,
                "images_per_s": rate,
                "images_per_cpu_s": sum(c for _, c in rates[precision]) / len(wall),
                "gflops": counter.flops / 1e9 * rate / dm.batch_size,
                "peak": peak_gflops(opts, precision),
                "depthwise": counter.depthwise_share,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | input px | batch | precision | GFLOP / step | img/s (runs) | img per CPU s "
        "| GFLOP/s | peak GFLOP/s | % of peak | depthwise share of forward conv FLOPs |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        runs = " / ".join(f"{v:.1f}" for v in r["runs"])
        lines.append(
            f"| {r['variant']} | {r['input']} | {r['batch']} | {r['precision']} | "
            f"{r['gflop_step']:.1f} | {r['images_per_s']:.1f} ({runs}) | "
            f"{r['images_per_cpu_s']:.2f} | {r['gflops']:.1f} | "
            f"{r['peak']:.0f} | {100 * r['gflops'] / r['peak']:.1f} | "
            f"{100 * r['depthwise']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    argv, overrides = split_overrides(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["heatmap_budget", *VARIANTS])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (>= 2)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per precision, alternating")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--ghz", type=float, default=None, help="default: /proc/cpuinfo")
    parser.add_argument("--fp32-flop-per-cycle", type=float, default=32.0)
    parser.add_argument("--bf16-flop-per-cycle", type=float, default=64.0)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(REPO / "docs" / "results" / "flops.md"))
    opts = parser.parse_args(argv)
    if opts.warmup < 2:
        parser.error(f"--warmup must be >= 2 (step 1 is counted, not timed), got {opts.warmup}")
    if opts.ghz is None:
        opts.ghz = clock_ghz()
    return opts, overrides


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    opts, overrides = parse(argv)
    torch.set_num_threads(opts.threads)
    os.environ.setdefault("WANDB_MODE", "disabled")
    rows = []
    for variant in opts.variants:
        rows += run_variant(variant, opts, overrides)
        print("\n".join(table(rows).splitlines()[-len(opts.precisions) :]), flush=True)
    report = (
        "# FLOPs of a training step against the CPU's peak\n\n"
        + provenance("flops.py", argv, opts.threads, opts.channels_last)
        + f"; native bf16: {native_bf16()}.  \n"
        f"Peak = {opts.threads} cores x {opts.fp32_flop_per_cycle:g} (fp32) or "
        f"{opts.bf16_flop_per_cycle:g} (bf16, native only) FLOP/cycle x {opts.ghz:.3f} GHz. "
        f"img/s: model-only steps (synthetic batch) over {opts.seconds:g} s after "
        f"{opts.warmup} untimed steps, mean of {opts.repeats} alternating runs (each in "
        "brackets); img per CPU s: per second of this process's CPU time; GFLOP / step: "
        "FlopCounterMode over step 1 (forward, loss, backward; convolutions and matrix "
        "products).\n\n" + table(rows)
    )
    print("\n" + report)
    write_bytes_atomic(Path(opts.output), report.encode())
    return rows


if __name__ == "__main__":
    main()
