"""Print the markdown table of the same-budget LSPet comparison (bench/compare_lspet.sh).

    .venv/bin/python bench/compare_table.py [runs/compare/summary.tsv]

One row per run: the steps its budget bought (batch 16), and the metrics of its last state on
the validation images, with what they counted. Where a model has two stages (coarse and
refined heat-maps) the coarse stage's PDJ is shown beside the final one.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

METRICS = ["val/pdj@0.05", "val/pdj@0.1", "val/pdj@0.2", "val/pckh@0.5", "val/pcp@0.5"]
COUNTS = ["val/count/images", "val/count/pdj", "val/count/pckh", "val/count/pcp"]


def last_values(metrics_csv: Path) -> dict[str, float]:
    """The latest non-empty value of every column of a Lightning CSVLogger file."""
    values: dict[str, float] = {}
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            values |= {k: float(v) for k, v in row.items() if v not in ("", None)}
    return values


def main(summary: Path) -> None:
    header = ["run", "commit", "steps", "fit s"] + [m.removeprefix("val/") for m in METRICS]
    header += ["coarse pdj@0.05 / 0.1 / 0.2", "images / joints (PDJ, PCKh) / limbs"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, commit, steps, fit_s, _, val_dir, *_ in csv.reader(summary.open(), delimiter="\t"):
        v = last_values(Path(val_dir) / "metrics.csv")
        cells = [name, commit, steps, fit_s] + [f"{100 * v[m]:.1f}" for m in METRICS]
        coarse = [v.get(f"val/stage1/pdj@{t}") for t in ("0.05", "0.1", "0.2")]
        cells.append(" / ".join(f"{100 * c:.1f}" for c in coarse) if None not in coarse else "")
        cells.append(" / ".join(str(int(v[c])) for c in COUNTS))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/compare/summary.tsv"))
