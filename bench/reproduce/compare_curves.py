"""Training curves of same-budget LSPet runs (bench/reproduce/compare_lspet.sh): one column of
each run's fit log (Lightning CSV, logged every 20 steps) against the step, smoothed over 5
points.

    .venv/bin/python bench/reproduce/compare_curves.py OUT.png COLUMN RUN [RUN ...]

RUN is a folder under runs/compare/, optionally ``NAME:COLUMN`` where that run logs the same
quantity under another name (e.g. DeepPose's ``train/loss`` is the regression loss).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curve(run: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one column of the run's fit log (its first version folder)."""
    fit = sorted((run / "runs" / "lspet").glob("version_*"))[0] / "metrics.csv"
    points = [
        (float(r["step"]), float(r[column]))
        for r in csv.DictReader(fit.open())
        if r.get(column) not in ("", None)
    ]
    if not points:
        raise SystemExit(f"{fit} has no values of {column!r}")
    steps, values = map(np.asarray, zip(*points, strict=True))
    return steps, values


def main(out: Path, column: str, runs: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for spec in runs:
        name, _, own = spec.partition(":")
        steps, values = curve(Path("runs/compare") / name, own or column)
        k = min(5, len(values))
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, label=name)
    ax.set_xlabel("training step (batch 16)")
    ax.set_ylabel(f"{column} (mean of 5 logged points)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
