"""How much of a training step the frozen layers cost: the bound on what frozen-trunk feature
caching (a lever of docs/RESULTS.md, "Levers") could buy before building it.

    python bench/frozen_share.py [--variant heatmap_budget] [--precision bf16-mixed]
        [--seconds 20] [--repeats 3] [--threads 2] [--data-root ../shared/data]
        [--output docs/results/frozen_share.md] [-- CLI overrides]

Feature caching computes the frozen layers' outputs (``trunk.frozen_blocks``: the stem and the
first blocks of EfficientNet-Lite0) once for K augmented views of every training image and
trains the rest on them, so each later step skips the frozen forward pass (frozen layers have
no backward). Its speed-up is at most ``1 / (1 - share)`` where ``share`` is the frozen
forward's part of a training step (Amdahl's law), before counting the loss of augmentation
diversity (K fixed views instead of a fresh one every epoch).

Measured here, for the configured model in a real Trainer on a synthetic batch of the real
shapes (``bench/throughput.py``'s model-only step, channels-last):

* FLOPs: the frozen layers' forward against the whole step (forward, loss, backward), counted
  with ``torch.utils.flop_counter.FlopCounterMode`` (``bench/flops.py``'s counting);
* time: images/s of the whole step, and of the frozen forward alone (no gradient, the same
  precision), alternating ``--repeats`` times; ``share = step rate / frozen rate``.

Prints a markdown table and writes it, with the command, commit and CPU, to ``--output``
(atomically).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import torch
from flops import StepFlops, conv_backward_flop
from throughput import (
    build,
    measure,
    provenance,
    split_overrides,
    synthetic_loader,
)
from torch.utils.flop_counter import FlopCounterMode

from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]


def frozen_forward(trunk: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The frozen layers of an ``EfficientNetLite0Trunk`` (stem, then blocks
    ``0 .. frozen_blocks - 1``) on a batch: what a feature cache would store.

    Shapes:
        image (B, 3, S, S) in [0, 1] -> (B, C, S / s, S / s) (C = 24, s = 4 for two blocks).

    Raises:
        ValueError: a trunk with nothing frozen.
    """
    frozen = trunk.frozen_modules()
    if not frozen:
        raise ValueError(f"{type(trunk).__name__} has no frozen layers (frozen_blocks = -1)")
    x = trunk.normalise(image)
    for module in frozen:  # conv_stem, bn1 (BN + ReLU6), blocks[0], ...
        x = module(x)
    return x


def frozen_rate(trunk, image: torch.Tensor, precision: str, seconds: float) -> float:
    """Images per second of :func:`frozen_forward` alone, no gradient, after one untimed pass."""
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    with torch.no_grad(), autocast:
        frozen_forward(trunk, image)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            frozen_forward(trunk, image)
            n += image.shape[0]
    return n / (time.perf_counter() - start)


def run(opts: argparse.Namespace, overrides: list[str]) -> dict:
    model, dm = build(opts.variant, opts.data_root, overrides)
    dm.trainer = None
    dm.setup("fit")
    loader = synthetic_loader(dm, 2)
    image = next(iter(loader))["image"].contiguous(memory_format=torch.channels_last)
    trunk = model.trunk
    mode = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop}
    )
    with torch.no_grad(), mode:
        frozen_forward(trunk.eval(), image)
    frozen_flops = mode.get_total_flops()
    counter = StepFlops(step=1)
    step_rates, frozen_rates = [], []
    for _ in range(opts.repeats):
        callbacks = (counter,) if counter.flops is None else ()
        step_rates.append(measure(model, loader, 2, opts.seconds, True, opts.precision, callbacks))
        trunk.to(memory_format=torch.channels_last)
        frozen_rates.append(frozen_rate(trunk.eval(), image, opts.precision, opts.seconds))
    step, frozen = sum(step_rates) / len(step_rates), sum(frozen_rates) / len(frozen_rates)
    return {
        "variant": opts.variant,
        "input": dm.input_size,
        "batch": dm.batch_size,
        "precision": opts.precision,
        "frozen_blocks": trunk.frozen_blocks,
        "frozen_gflop": frozen_flops / 1e9,
        "step_gflop": counter.flops / 1e9,
        "step_rates": step_rates,
        "frozen_rates": frozen_rates,
        "flop_share": frozen_flops / counter.flops,
        "time_share": step / frozen,
    }


def table(row: dict) -> str:
    runs = " / ".join(f"{r:.1f}" for r in row["step_rates"])
    frozen = " / ".join(f"{r:.0f}" for r in row["frozen_rates"])
    bound = 1 / (1 - row["time_share"])
    return "\n".join(
        [
            "| variant | input px | batch | precision | frozen blocks | frozen forward GFLOP "
            "| step GFLOP | FLOP share | step img/s (runs) | frozen forward img/s (runs) "
            "| time share | caching speed-up bound |",
            "|---|---:|---:|---|---:|---:|---:|---:|---|---|---:|---:|",
            f"| {row['variant']} | {row['input']} | {row['batch']} | {row['precision']} "
            f"| {row['frozen_blocks']} | {row['frozen_gflop']:.2f} | {row['step_gflop']:.1f} "
            f"| {100 * row['flop_share']:.1f} % | {runs} | {frozen} "
            f"| {100 * row['time_share']:.1f} % | {bound:.2f}x |",
        ]
    )


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, overrides = split_overrides(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="heatmap_budget")
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output", type=Path, default=None)
    return parser.parse_args(own), overrides


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    opts, overrides = parse(argv)
    torch.set_num_threads(opts.threads)
    os.environ.setdefault("WANDB_MODE", "disabled")
    row = run(opts, overrides)
    text = table(row)
    print(text)
    if opts.output is not None:
        header = provenance("frozen_share.py", argv, opts.threads, True)
        write_bytes_atomic(opts.output, f"{header}\n\n{text}\n".encode())
    return row


if __name__ == "__main__":
    main()
