"""Accuracy against training samples (docs/RESULTS.md): every run of the best recipe
(``conf/model/heatmap_budget.yaml``) on one log-scale curve, a trend fitted to the runs that
reached the end of their schedule, and the samples the trend predicts for target accuracies.

    python bench/reproduce/scaling_curve.py [--points docs/results/scaling_points.csv]
        [--long-run RUN/metrics.csv [--long-run-batch 32] [--long-run-name NAME]]
        [--target 50 --target 59.3] [--output docs/figures/scaling_curve.png]
        [--table docs/results/scaling_curve.md]

y: PCK@0.2 over the limb joints of LSPet's 900 validation images (``val/pdj@0.2/limb_joints``,
%); x: training samples seen (optimiser steps x batch). ``--points``: one row per measured
point, ``end_of_schedule`` "yes" for a run's final validation (its learning-rate schedule run
to its end or nearly), "no" for a validation on the way (the learning rate still high, so
below what a run of that length would reach). ``--long-run``: a run's CSVLogger file; each
validation becomes a point on the way (add its final validation to ``--points``).

Trend: PCK = a + b log10(samples), least squares over the end-of-schedule points
(``scipy.stats.linregress``). The samples for a target T are 10^((T - a) / b); their range
takes the slope's 95 % t-interval and pivots the line at the points' centroid (so it counts the
slope's uncertainty, not the scatter of a new run). A straight line on a log axis cannot
saturate: past the measured range it is an extrapolation, and the table says so.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from scipy import stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lightning_pose.reports.provenance import commit  # noqa: E402
from lightning_pose.runtime.files import write_bytes_atomic  # noqa: E402

REPO = Path(__file__).resolve().parents[2]  # bench/reproduce/scaling_curve.py

METRIC = "val/pdj@0.2/limb_joints"


@dataclass
class Point:
    run: str
    samples: int
    pck: float  # %
    end: bool  # the run's final validation
    machine: str = ""


@dataclass
class Trend:
    intercept: float
    slope: float  # points of PCK per decade of samples
    slope_low: float
    slope_high: float
    centroid: tuple[float, float]  # (mean log10 samples, mean PCK)
    n: int
    r2: float

    def at(self, samples: float) -> float:
        return self.intercept + self.slope * math.log10(samples)

    def samples_for(self, target: float, slope: float | None = None) -> float:
        """Samples at which the line (or the line of ``slope`` through the centroid) reaches
        ``target``; inf where that slope is not positive."""
        slope = self.slope if slope is None else slope
        if slope <= 0:
            return math.inf
        x0, y0 = self.centroid
        return 10 ** (x0 + (target - y0) / slope)


def read_points(path: Path) -> list[Point]:
    """The rows of a points file (columns run, samples, pck_limb, end_of_schedule, machine).

    Raises:
        ValueError: a missing column or a value that is not a number, naming the file and row.
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    points = []
    for i, row in enumerate(rows, start=2):
        try:
            end = row["end_of_schedule"].strip().lower()
            if end not in ("yes", "no"):
                raise ValueError(f"end_of_schedule {end!r} is not yes or no")
            points.append(
                Point(
                    row["run"],
                    int(row["samples"]),
                    float(row["pck_limb"]),
                    end == "yes",
                    row.get("machine") or "",
                )
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}, line {i}: {error!r}") from error
    return points


def read_long_run(path: Path, batch: int, name: str, machine: str = "") -> list[Point]:
    """Each validation row of a CSVLogger ``metrics.csv`` (``step``, ``val/pdj@0.2/limb_joints``)
    as a point on the way: ``step`` x ``batch`` samples."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(METRIC)]
    if not rows:
        raise ValueError(f"{path}: no row has {METRIC}")
    return [
        Point(name, int(r["step"]) * batch, 100 * float(r[METRIC]), False, machine) for r in rows
    ]


def fit_trend(points: list[Point]) -> Trend:
    """The least-squares line of PCK on log10(samples) over the end-of-schedule points.

    Raises:
        ValueError: fewer than three such points, or all at one sample count.
    """
    ends = [p for p in points if p.end]
    x = [math.log10(p.samples) for p in ends]
    if len(ends) < 3 or len(set(x)) < 2:
        raise ValueError(f"a trend needs 3 end-of-schedule points at 2+ sizes, got {len(ends)}")
    y = [p.pck for p in ends]
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(ends) - 2) * fit.stderr
    centroid = (sum(x) / len(x), sum(y) / len(y))
    return Trend(fit.intercept, fit.slope, fit.slope - half, fit.slope + half, centroid,
                 len(ends), fit.rvalue**2)  # fmt: skip


def fmt_samples(value: float) -> str:
    if math.isinf(value):
        return "never (slope ≤ 0)"
    return f"{value:,.0f}" if value < 1e7 else f"{value / 1e6:,.0f} million"


def markdown(points: list[Point], trend: Trend, targets: list[float], command: str) -> str:
    """The points, the trend and its predictions as a markdown report."""
    top = max(p.samples for p in points if p.end)
    lines = [
        "# Accuracy against training samples: `heatmap_budget`",
        "",
        f"Commit {commit()}. Command: `{command}`",
        "",
        "PCK@0.2 over the 7,119 labelled limb joints of LSPet's 900 validation images, %.",
        "",
        "| run | machine | training samples | PCK@0.2 limb joints | end of schedule | trend |",
        "|---|---|---:|---:|---|---:|",
    ]
    for p in sorted(points, key=lambda p: (p.run, p.samples)):
        end = "yes" if p.end else "no (on the way)"
        lines.append(
            f"| {p.run} | {p.machine} | {p.samples:,} | {p.pck:.1f} | {end} "
            f"| {trend.at(p.samples):.1f} |"
        )
    lines += [
        "",
        f"Trend over the {trend.n} end-of-schedule points: PCK = {trend.intercept:.1f} + "
        f"{trend.slope:.2f} log10(samples) (R² {trend.r2:.2f}); **{trend.slope:.1f} points "
        f"per tenfold samples**, 95 % interval [{trend.slope_low:.1f}, {trend.slope_high:.1f}].",
        "",
        "| target PCK@0.2 limb joints | samples the trend predicts | range (slope's 95 % "
        "interval) | within the measured range? |",
        "|---:|---:|---|---|",
    ]
    for target in targets:
        mid = trend.samples_for(target)
        low = trend.samples_for(target, trend.slope_high)
        high = trend.samples_for(target, trend.slope_low)
        inside = "yes" if mid <= top else f"no: extrapolated past {top:,}"
        lines.append(
            f"| {target:g} | {fmt_samples(mid)} | {fmt_samples(low)} – {fmt_samples(high)} "
            f"| {inside} |"
        )
    return "\n".join(lines) + "\n"


def plot(points: list[Point], trend: Trend, targets: list[float], output: Path) -> None:
    """Points (filled: end of schedule; open: on the way), one colour a run, the trend line
    out to the largest target, and the targets as horizontal lines."""
    fig, ax = plt.subplots(figsize=(8, 5))
    runs = sorted({p.run for p in points})
    colours = plt.get_cmap("tab10")
    for i, run in enumerate(runs):
        mine = sorted((p for p in points if p.run == run), key=lambda p: p.samples)
        way = [p for p in mine if not p.end]
        ends = [p for p in mine if p.end]
        colour = colours(i % 10)
        if len(way) > 1:
            ax.plot([p.samples for p in way], [p.pck for p in way], color=colour, lw=0.8)
        ax.scatter([p.samples for p in way], [p.pck for p in way], facecolors="none",
                   edgecolors=[colour], s=28)  # fmt: skip
        ax.scatter([p.samples for p in ends], [p.pck for p in ends], color=colour, s=48,
                   label=run)  # fmt: skip
    far = max(trend.samples_for(max(targets)), max(p.samples for p in points))
    far = min(far, 1e9)
    low = min(p.samples for p in points)
    xs = [low * (far / low) ** (k / 50) for k in range(51)]
    ax.plot(xs, [trend.at(x) for x in xs], "k--", lw=1,
            label=f"trend: {trend.slope:.1f} points per 10x samples")  # fmt: skip
    for target in targets:
        ax.axhline(target, color="grey", lw=0.6, ls=":")
        ax.text(low, target + 0.5, f"{target:g} %", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("training samples (steps x batch)")
    ax.set_ylabel("PCK@0.2, limb joints, LSPet validation (%)")
    ax.set_title("heatmap_budget: accuracy against training samples")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(output, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=Path, default=REPO / "docs/results/scaling_points.csv")
    parser.add_argument("--long-run", type=Path, default=None, help="its metrics.csv")
    parser.add_argument("--long-run-batch", type=int, default=32)
    parser.add_argument("--long-run-name", default="long run (on the way)")
    parser.add_argument("--long-run-machine", default="")
    parser.add_argument("--target", type=float, action="append", default=None)
    parser.add_argument("--output", type=Path, default=REPO / "docs/figures/scaling_curve.png")
    parser.add_argument("--table", type=Path, default=REPO / "docs/results/scaling_curve.md")
    opts = parser.parse_args(argv)
    targets = opts.target or [50.0, 59.3]
    points = read_points(opts.points)
    if opts.long_run:
        points += read_long_run(
            opts.long_run, opts.long_run_batch, opts.long_run_name, opts.long_run_machine
        )
    trend = fit_trend(points)
    args = sys.argv[1:] if argv is None else argv
    text = markdown(
        points, trend, targets, " ".join(["python bench/reproduce/scaling_curve.py", *args])
    )
    opts.table.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(opts.table, text.encode())
    plot(points, trend, targets, opts.output)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
