"""bench/reproduce/scaling_curve.py: the log-linear trend over end-of-schedule points, the
samples it predicts for a target, and the report and figure it writes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.bench import load

sc = load("reproduce/scaling_curve")

HEADER = "run,samples,pck_limb,end_of_schedule,machine,batch,commit,source\n"


def test_points_on_a_line_give_its_slope_and_the_samples_for_a_target() -> None:
    # PCK = 10 + 5 log10(n): 25, 30, 35 at 1e3, 1e4, 1e5; the on-the-way point is not fitted
    points = [sc.Point("a", 10**k, 10 + 5 * k, True) for k in (3, 4, 5)]
    points.append(sc.Point("a", 10**6, 0.0, False))
    trend = sc.fit_trend(points)
    assert trend.n == 3
    assert trend.slope == pytest.approx(5.0, abs=1e-9)
    assert trend.intercept == pytest.approx(10.0, abs=1e-9)
    assert trend.samples_for(50.0) == pytest.approx(1e8, rel=1e-9)
    assert trend.slope_low == pytest.approx(5.0, abs=1e-9)  # no scatter: no interval


def test_the_range_for_a_target_widens_with_the_slopes_interval() -> None:
    ys = {3: 25.0, 4: 31.0, 5: 34.0, 6: 41.0}
    trend = sc.fit_trend([sc.Point("a", 10**k, y, True) for k, y in ys.items()])
    assert trend.slope_low < trend.slope < trend.slope_high
    low = trend.samples_for(60.0, trend.slope_high)
    high = trend.samples_for(60.0, trend.slope_low)
    assert low < trend.samples_for(60.0) < high
    assert sc.Trend(0, -1, -2, 0, (0, 0), 3, 1).samples_for(60.0) == math.inf


def test_a_trend_needs_three_end_points() -> None:
    with pytest.raises(ValueError, match="3 end-of-schedule points"):
        sc.fit_trend([sc.Point("a", 10, 1, True), sc.Point("a", 100, 2, True)])


def test_a_bad_row_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text(HEADER + "r,1000,20.0,yes,cpu,32,abc,s\nr,2000,21.0,maybe,cpu,32,abc,s\n")
    with pytest.raises(ValueError, match=r"points.csv, line 3: .*maybe"):
        sc.read_points(path)


def test_main_writes_the_report_and_figure_with_the_long_runs_validations(tmp_path: Path) -> None:
    points = tmp_path / "points.csv"
    rows = [f"r,{10**k},{10 + 5 * k},yes,cpu,32,abc,s\n" for k in (3, 4, 5)]
    points.write_text(HEADER + "".join(rows))
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(
        "epoch,step,train/loss,val/pdj@0.2/limb_joints\n0,10,0.5,\n3,1011,,0.297\n7,2024,,0.321\n"
    )
    table, figure = tmp_path / "out" / "curve.md", tmp_path / "out" / "curve.png"
    argv = ["--points", str(points), "--long-run", str(metrics), "--long-run-name", "long",
            "--target", "50", "--table", str(table), "--output", str(figure)]  # fmt: skip
    assert sc.main(argv) == 0
    text = table.read_text()
    assert "**5.0 points per tenfold samples**" in text
    assert (
        "| 50 | 100 million | 100 million – 100 million |" in text
        and "extrapolated past 100,000" in text
    )
    assert "| long |  | 32,352 | 29.7 | no (on the way) |" in text  # step 1011 x batch 32
    assert "| long |  | 64,768 | 32.1 | no (on the way) |" in text
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
