"""``lightning-pose report compare``: the markdown table of the same-budget LSPet comparison
(``bench/reproduce/compare_lspet.sh``).

    lightning-pose report compare [runs/compare/summary.tsv]

One row per run: the steps its budget bought (batch 16), and the metrics of its last state on
the validation images, with what they counted. Where a model has two stages (coarse and
refined heat-maps) the coarse stage's PDJ is shown beside the final one.
"""

from __future__ import annotations

import argparse
import csv
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


def table(summary: Path) -> str:
    """The table of the runs listed in ``summary`` (tab-separated, one line per run as
    ``compare_lspet.sh`` appends it: name, commit, steps, fit s, validate s, the validation
    run folder, the arguments); each run's metrics are the last values of its validation
    folder's ``metrics.csv``.

    Raises:
        FileNotFoundError: ``summary`` or a run's ``metrics.csv`` is missing.
        ValueError: a run's ``metrics.csv`` lacks one of :data:`METRICS` or :data:`COUNTS`.
    """
    if not summary.is_file():
        raise FileNotFoundError(
            f"{summary}: no such summary of runs (bench/reproduce/compare_lspet.sh appends to "
            "runs/compare/summary.tsv)"
        )
    lines = []
    header = ["run", "commit", "steps", "fit s"] + [m.removeprefix("val/") for m in METRICS]
    header += ["coarse pdj@0.05 / 0.1 / 0.2", "images / joints (PDJ, PCKh) / limbs"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    with summary.open() as f:
        runs = list(csv.reader(f, delimiter="\t"))
    for name, commit, steps, fit_s, _, val_dir, *_ in runs:
        metrics_csv = Path(val_dir) / "metrics.csv"
        if not metrics_csv.is_file():
            raise FileNotFoundError(f"{metrics_csv} (run {name} of {summary}): no such file")
        v = last_values(metrics_csv)
        missing = [k for k in METRICS + COUNTS if k not in v]
        if missing:
            raise ValueError(f"{metrics_csv} (run {name} of {summary}): no values of {missing}")
        cells = [name, commit, steps, fit_s] + [f"{100 * v[m]:.1f}" for m in METRICS]
        coarse = [v.get(f"val/stage1/pdj@{t}") for t in ("0.05", "0.1", "0.2")]
        cells.append(" / ".join(f"{100 * c:.1f}" for c in coarse) if None not in coarse else "")
        cells.append(" / ".join(str(int(v[c])) for c in COUNTS))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    """Print the table (stdout) and return it; see :func:`table`."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose report compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "summary", type=Path, nargs="?", default=Path("runs/compare/summary.tsv"),
        help="the runs' summary (compare_lspet.sh appends a line per run)",
    )  # fmt: skip
    text = table(parser.parse_args(argv).summary)
    print(text, end="")
    return text
