"""Metric states summed over every process outside ``compute``: a metric's curve or its counts
are read from the same synced sums ``compute`` reads, so that under DDP every process logs the
numbers of the whole evaluation set."""

from __future__ import annotations

from contextlib import AbstractContextManager

from torch import Tensor
from torchmetrics import Metric

__all__ = ["synced", "synced_total"]


def synced(metric: Metric) -> AbstractContextManager:
    """Within it, ``metric``'s states are summed over every process the way ``compute`` sums
    them (unchanged where a caller's ``sync_context`` already did). A collective under DDP."""
    already = metric._is_synced
    return metric.sync_context(
        dist_sync_fn=metric.dist_sync_fn,
        process_group=metric.process_group,
        should_sync=metric._to_sync and not already,
        should_unsync=metric._should_unsync and not already,
    )


def synced_total(metric: Metric, index: list[int] | None = None) -> Tensor:
    """``metric.counts.sum()`` (over ``index``; None: all) over every process (its states
    synced the way ``compute`` does). A collective under DDP.

    Shapes:
        ``metric.counts (K,)``; returns ``()`` float64.
    """
    with synced(metric):
        counts = metric.counts if index is None else metric.counts[index]
        return counts.sum().clone()
