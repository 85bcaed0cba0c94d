"""The table of ``bench/same_behaviour.sh``: per family, the training steps both runs logged,
the largest relative difference of their per-step training losses, and each final validation
metric before / after.

    .venv/bin/python bench/same_behaviour.py OUT
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

KEYS = ["val/loss", "val/pdj@0.2", "val/pckh@0.5", "val/pcp@0.5"]


def train_losses(run: Path) -> dict[int, float]:
    """Step -> ``train/loss`` from the run's ``metrics.csv`` ({} when it wrote none)."""
    path = next(run.rglob("metrics.csv"), None)
    if path is None:
        return {}
    with path.open(newline="") as f:
        return {
            int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")
        }


def final_metrics(run: Path) -> dict[str, float]:
    """The run's last validation (``val_metrics.json``; {} when it wrote none)."""
    path = next(run.rglob("val_metrics.json"), None)
    return json.loads(path.read_text()) if path else {}


def table(out: Path) -> str:
    lines = [
        "| variant | steps compared | max rel. loss difference | "
        + " | ".join(f"{k} before / after" for k in KEYS)
        + " |",
        "|---|---:|---:|" + "---|" * len(KEYS),
    ]
    for old in sorted((out / "old").iterdir()):
        new = out / "new" / old.name
        before, after = train_losses(old), train_losses(new)
        steps = sorted(set(before) & set(after))
        worst = max(
            (abs(before[s] - after[s]) / max(abs(before[s]), 1e-12) for s in steps),
            default=float("nan"),
        )
        vo, vn = final_metrics(old), final_metrics(new)
        cells = [f"{vo[k]:.5f} / {vn[k]:.5f}" if k in vo and k in vn else "–" for k in KEYS]
        lines.append(f"| {old.name} | {len(steps)} | {worst:.1e} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: same_behaviour.py OUT")
    sys.stdout.write(table(Path(sys.argv[1])))
