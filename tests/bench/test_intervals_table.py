"""bench/intervals_table.py: the table from two per-image files, and a malformed run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.metrics.intervals import paired_difference_interval
from tests.bench.test_budget_throughput import load
from tests.metrics.test_intervals import write_scores

intervals_table = load("intervals_table")


def test_two_runs_give_values_and_the_paired_difference(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    counts = np.full(50, 10)
    hits = rng.binomial(10, 0.4, size=(2, 50))
    for name, h in zip("ab", hits, strict=True):
        write_scores(tmp_path / f"{name}.csv", np.arange(50), h / 10, counts)
    table = intervals_table.main(
        [f"a={tmp_path / 'a.csv'}", f"b={tmp_path / 'b.csv'}", "--baseline", "a",
         "--keys", "pdj@0.2", "--resamples", "499"]
    )  # fmt: skip
    assert capsys.readouterr().out == table
    difference = paired_difference_interval(hits[1], counts, hits[0], counts, resamples=499)
    verdict = "**effect**" if difference.excludes_zero else "noise"
    assert f"| b | {difference.percent_difference()} {verdict} |" in table


def test_a_run_without_a_label_is_refused() -> None:
    with pytest.raises(SystemExit):
        intervals_table.main(["just/a/path.csv"])
