"""Run a test function on several gloo processes, with a timeout: a hang fails the test."""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

requires_gloo = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="no gloo"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(
    rank: int, worker: Callable[[int], None], world_size: int, port: int, group_timeout_s: int
):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=group_timeout_s),
    )
    try:
        worker(rank)
    finally:
        dist.destroy_process_group()


# Room for a busy small machine (the suite shares 2 cores with other work): start-up, the
# fork server's torch import, joining the group and the work itself get TIMEOUT_S in all; a
# collective that waits for a process that died or hangs fails after GROUP_TIMEOUT_S. A real
# hang still fails the test, only later.
TIMEOUT_S = 300
GROUP_TIMEOUT_S = 120


def run_on_gloo(
    worker: Callable[[int], None],
    world_size: int = 2,
    timeout_s: int = TIMEOUT_S,
    group_timeout_s: int = GROUP_TIMEOUT_S,
) -> None:
    """Call ``worker(rank)`` in ``world_size`` processes joined in a gloo group.

    The processes start from a fork server that imports the worker's module once (torch and
    torchmetrics are slow to import on a small CPU). A worker's exception is re-raised here;
    past ``timeout_s`` (start-up, import and work together) the processes are killed and the
    test fails; a collective or the group's rendezvous times out after ``group_timeout_s``.
    """
    multiprocessing.get_context("forkserver").set_forkserver_preload([worker.__module__])
    context = mp.start_processes(
        _entry,
        args=(worker, world_size, _free_port(), group_timeout_s),
        nprocs=world_size,
        join=False,
        start_method="forkserver",
    )
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1):  # re-raises a worker's exception
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"gloo workers did not finish within {timeout_s} s")


def update_on_shards(
    metric, pred_px: torch.Tensor, batch: dict[str, torch.Tensor], shards: list[tuple[int, int]]
):
    """Update a metric (``update(pred_px, batch)``) with the ``[start, stop)`` slices of
    ``pred_px`` and of every tensor of ``batch``."""
    for start, stop in shards:
        metric.update(pred_px[start:stop], {k: v[start:stop] for k, v in batch.items()})


def assert_rank_results(
    out: dict[str, torch.Tensor], expected: dict[str, float], rank: int, atol: float, rtol: float
) -> None:
    """A synced metric's results equal the reference's on every key, on process ``rank``."""
    assert sorted(out) == sorted(expected), f"rank {rank}: keys {sorted(out)}"
    for key, value in expected.items():
        torch.testing.assert_close(
            out[key],
            torch.tensor(value, dtype=torch.float64),
            atol=atol,
            rtol=rtol,
            msg=lambda m, key=key: f"rank {rank} {key}: {m}",
        )
