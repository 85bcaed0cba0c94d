"""PCK under two gloo processes with uneven shards: compute() must see every sample once."""

from __future__ import annotations

import torch

from lightning_pose.metrics import PDJ
from tests.gloo import assert_rank_results, requires_gloo, run_on_gloo, update_on_shards

from .test_functional import (
    ATOL,
    RTOL,
    as_numpy,
    concat,
    numpy_curve,
    numpy_pck,
    pose_batch,
    random_batch,
)

NAMES = [f"j{k}" for k in range(5)]
THRESHOLDS = [0.05, 0.1, 0.2, 0.5]
GROUPS = {"a": [0, 4], "b": [1, 2], "c": [3]}
# Rank 0 sees 5 samples in 2 updates, rank 1 sees 3 samples in 3 updates (one of them empty).
SHARDS = {0: [(0, 3), (3, 5)], 1: [(5, 6), (6, 6), (6, 8)]}


def _all_samples() -> dict[str, torch.Tensor]:
    return random_batch(torch.Generator().manual_seed(5), 8, len(NAMES))


def _worker(rank: int) -> None:
    """One process of the gloo group: its shard, then the summed metric."""
    data = _all_samples()
    metric = PDJ(NAMES, thresholds=THRESHOLDS, groups=GROUPS)
    update_on_shards(metric, *pose_batch(data), SHARDS[rank])

    everything = as_numpy(data)
    expected = numpy_pck(*everything, THRESHOLDS, NAMES, GROUPS, "pdj")
    out = metric.compute()
    assert_rank_results(out, expected, rank, ATOL, RTOL)
    _, fraction = metric.curve()
    torch.testing.assert_close(
        fraction, torch.from_numpy(numpy_curve(*everything, THRESHOLDS)), atol=ATOL, rtol=RTOL
    )

    # after syncing, each rank keeps accumulating from its own (local) sums
    local = concat([{k: v[a:b] for k, v in data.items()} for a, b in SHARDS[rank]])
    local_counts = (local["labelled"] & (local["normaliser_px"] > 0)[:, None]).sum(0)
    torch.testing.assert_close(metric.counts, local_counts.double(), atol=0, rtol=0)


@requires_gloo
def test_pdj_two_gloo_processes_uneven_shards() -> None:
    run_on_gloo(_worker)
