"""bench/same_behaviour.py: the table from two runs' files (equal and differing runs)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bench.test_budget_throughput import load

same_behaviour = load("same_behaviour")


def write_run(run: Path, losses: list[float], pdj: float) -> None:
    (run / "version_0").mkdir(parents=True)
    rows = ["epoch,step,train/loss"] + [f"0,{s},{v}" for s, v in enumerate(losses)]
    (run / "version_0" / "metrics.csv").write_text("\n".join(rows) + "\n")
    record = {"val/loss": 0.05, "val/pdj@0.2": pdj, "val/pckh@0.5": 0.1, "val/pcp@0.5": 0.0}
    (run / "version_0" / "val_metrics.json").write_text(json.dumps(record))


def test_equal_runs_differ_by_zero_and_a_changed_one_by_its_largest_step(tmp_path: Path) -> None:
    write_run(tmp_path / "old" / "deeppose", [0.4, 0.2], 0.25)
    write_run(tmp_path / "new" / "deeppose", [0.4, 0.2], 0.25)
    write_run(tmp_path / "old" / "tompson", [0.4, 0.2, 0.1], 0.25)
    write_run(tmp_path / "new" / "tompson", [0.4, 0.21, 0.1], 0.5)
    lines = same_behaviour.table(tmp_path).splitlines()
    assert lines[2] == (
        "| deeppose | 2 | 0.0e+00 | 0.05000 / 0.05000 | 0.25000 / 0.25000 | 0.10000 / 0.10000 "
        "| 0.00000 / 0.00000 |"
    )
    assert lines[3].startswith("| tompson | 3 | 5.0e-02 | 0.05000 / 0.05000 | 0.25000 / 0.50000 |")
