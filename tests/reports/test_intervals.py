"""``lightning-pose report intervals``: the table from two per-image files, seeds pooled, and a
run without a label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_pose.metrics.intervals import paired_difference_interval
from lightning_pose.reports import intervals
from lightning_pose.reports.tables import comparison_table, pool_seeds, read_per_image
from tests.reports.test_tables import write_scores


def test_two_runs_give_values_and_the_paired_difference(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    counts = np.full(50, 10)
    hits = rng.binomial(10, 0.4, size=(2, 50))
    for name, h in zip("ab", hits, strict=True):
        write_scores(tmp_path / f"{name}.csv", np.arange(50), h / 10, counts)
    table = intervals.main(
        [f"a={tmp_path / 'a.csv'}", f"b={tmp_path / 'b.csv'}", "--baseline", "a",
         "--keys", "pdj@0.2", "--resamples", "499"]
    )  # fmt: skip
    assert capsys.readouterr().out == table
    difference = paired_difference_interval(hits[1], counts, hits[0], counts, resamples=499)
    verdict = "**effect**" if difference.excludes_zero else "noise"
    assert f"| b | {difference.percent_difference()} {verdict} |" in table


def test_a_label_with_several_files_pools_them_as_seeds(tmp_path: Path) -> None:
    """a=s0,s1 is the two seeds pooled: the same table as pool_seeds gives."""
    rng = np.random.default_rng(2)
    counts = np.full(40, 10)
    paths = []
    for seed in range(3):
        path = tmp_path / f"s{seed}" / "per_image_val.csv"
        path.parent.mkdir()
        write_scores(path, np.arange(40), rng.binomial(10, 0.3 + 0.1 * seed, 40) / 10, counts)
        paths.append(path)
    args = ["--keys", "pdj@0.2", "--resamples", "299"]
    table = intervals.main([f"a={paths[0]},{paths[1]}", f"b={paths[2]}", *args])
    pooled = pool_seeds([read_per_image(p) for p in paths[:2]])
    expected = comparison_table({"a": pooled, "b": read_per_image(paths[2])}, ["pdj@0.2"],
                                resamples=299)  # fmt: skip
    assert table == expected
    single = intervals.main([f"a={paths[0]}", *args])
    row = [line for line in table.splitlines() if line.startswith("| a |")]
    assert row and row != [line for line in single.splitlines() if line.startswith("| a |")]


def test_a_run_without_a_label_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        intervals.main(["just/a/path.csv"])
    assert exit_info.value.code == 2  # argparse's usage error
    assert "expected LABEL=path/to/per_image_<split>.csv" in capsys.readouterr().err
