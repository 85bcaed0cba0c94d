"""bench/throughput.py: the pieces that decide what is timed (the synthetic batch, the step
timer, flushing denormals), without training anything for long."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from tests.bench import BENCH, load

throughput = load("throughput")


def test_synthetic_batch_has_the_real_shapes_and_dtypes() -> None:
    real = {
        "image": torch.zeros(4, 3, 16, 16),
        "keypoints_norm": torch.zeros(4, 14, 2),
        "labelled": torch.zeros(4, 14, dtype=torch.bool),
        "visible": torch.zeros(4, 14, dtype=torch.bool),
        "box": torch.ones(4, 4),
    }
    fake = throughput.synthetic_batch(real)
    assert {k: (v.shape, v.dtype) for k, v in fake.items()} == {
        k: (v.shape, v.dtype) for k, v in real.items()
    }
    assert fake["image"].std() > 0.1 and fake["labelled"].all()
    assert fake["keypoints_norm"].abs().max() <= 0.4


def test_step_timer_counts_images_after_warmup_and_stops() -> None:
    class Trainer:
        global_step, should_stop = 0, False

    trainer, timer = Trainer(), throughput.StepTimer(warmup=2, seconds=0.0)
    batch = {"image": torch.zeros(8, 3, 4, 4)}
    for step in range(4):
        trainer.global_step = step
        timer.on_train_batch_start(trainer, None, batch, step)
        timer.on_train_batch_end(trainer, None, None, batch, step)
        if trainer.should_stop:
            break
    assert step == 2 and timer.images == 8 and timer.images_per_s > 0


def test_flush_denormals_reaches_every_thread_only_before_the_pool_starts() -> None:
    """bench/throughput.py --flush-denormal: set first, every thread flushes; set after the
    intra-op pool has started, only the main thread does, and the function says so."""
    child = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(BENCH / 'throughput.py')!r})\n"
        "t = importlib.util.module_from_spec(spec); spec.loader.exec_module(t)\n"
        "if sys.argv[1] == 'late':\n"
        "    torch.ones(1 << 21) * 2  # starts the intra-op pool\n"
        "print(t.flush_denormals(), t.denormals_flushed())\n"
    )
    env = os.environ | {"OMP_NUM_THREADS": "2"}
    for when, expected in (("first", "True True"), ("late", "False False")):
        done = subprocess.run(
            [sys.executable, "-c", child, when], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split()[-2:] == expected.split(), when
