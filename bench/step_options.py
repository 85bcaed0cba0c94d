"""Training-step speed of the EfficientNet-Lite0 heat-map model under each CPU option.

    python bench/step_options.py [--threads 2] [--batch 32] [--steps 4] [--only NAME ...]

One synthetic batch (uniform images, random joints), AdamW steps of ``HeatmapPose.losses``;
images per second after 2 untimed steps, for: input size (256, 192, 160, 128), channels-last
memory format, frozen stem + blocks 0-1 (``frozen_blocks=2``), the coarse model alone versus
joint training with the position refinement, bfloat16 autocast and ``torch.compile``. These are
the measurements behind ``conf/model/heatmap_budget.yaml``'s choices (docs/results/HISTORY.md,
"What each CPU option buys"). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from functools import partial

import torch
from torch.utils.benchmark import Timer

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.models import (
    EfficientNetLite0Trunk,
    HeatmapHead,
    HeatmapPose,
    PositionRefinement,
)

# name: (input px, channels_last, frozen_blocks, phase, autocast bf16, compile)
OPTIONS = {
    "256": (256, False, -1, "coarse", False, False),
    "256 channels-last": (256, True, -1, "coarse", False, False),
    "192": (192, False, -1, "coarse", False, False),
    "192 channels-last": (192, True, -1, "coarse", False, False),
    "192 joint refinement": (192, False, -1, "joint", False, False),
    "192 channels-last frozen 2": (192, True, 2, "coarse", False, False),
    "192 channels-last bf16 autocast": (192, True, -1, "coarse", True, False),
    "192 channels-last torch.compile": (192, True, -1, "coarse", False, True),
    "160 channels-last": (160, True, -1, "coarse", False, False),
    "160 channels-last frozen 2": (160, True, 2, "coarse", False, False),
    "128 channels-last": (128, True, -1, "coarse", False, False),
    "128 channels-last frozen 2": (128, True, 2, "coarse", False, False),
}


def images_per_s(option: tuple, batch: int, steps: int) -> tuple[float, float]:
    """(images/s, seconds of the first step) of one option."""
    size, channels_last, frozen, phase, bf16, compile_ = option
    model = HeatmapPose(
        EfficientNetLite0Trunk(pretrained=True, frozen_blocks=frozen, pyramid_only=True),
        LSP_SKELETON,
        head=partial(HeatmapHead, output_stride=4, levels=4, width=64),
        refinement=partial(PositionRefinement, fine_size=17, width=32, depth=2),
        training_phase=phase,
    ).train()
    images = torch.rand(batch, 3, size, size)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if compile_:
        model.coarse = torch.compile(model.coarse)
    batch_dict = {
        "image": images,
        "keypoints_norm": (torch.rand(batch, LSP_SKELETON.num_joints, 2) - 0.5) * 0.8,
        "labelled": torch.ones(batch, LSP_SKELETON.num_joints, dtype=torch.bool),
    }
    optimizer = torch.optim.AdamW(model.trainable_parameters(), 1e-3)

    def step() -> None:
        context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with context:
            losses = model.losses(batch_dict)
        loss = losses["coarse"] + 0.1 * losses.get("fine", 0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()  # one call, not a loop: the first step's set-up (allocations, torch.compile)
    first = time.perf_counter() - start
    step()
    timer = Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return batch / timer.timeit(steps).mean, first


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--only", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    print(f"| option (batch {opts.batch}, {opts.threads} threads) | img/s | first step s |")
    print("|---|---:|---:|")
    for name in opts.only:
        rate, first = images_per_s(OPTIONS[name], opts.batch, opts.steps)
        print(f"| {name} | {rate:.1f} | {first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
