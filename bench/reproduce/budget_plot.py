"""Accuracy against CPU time: every curve of ``docs/results/budget_curves/*.csv`` in one figure.

    python bench/reproduce/budget_plot.py [--reference "BlazePose full=59.6" ...] [--target 70]
        [--output docs/figures/accuracy_vs_cpu_time.png]

x: CPU core-minutes since the start of ``fit``: the cores the fit was pinned to x its
wall-clock minutes (``time/fit_s``: start-up, crop cache, training and the validations so
far); y: PCK@0.2 over the 12 limb joints of LSPet's 900 validation images
(``val/pdj@0.2/limb_joints``, %), one point per validation. A curve's name is its file's stem
(``bench/reproduce/budget.py NAME``); ``--point NAME=CORE_MINUTES,PERCENT`` adds a single
measured point (a run validated only at its end); ``--reference NAME=PERCENT`` draws a
horizontal line.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lightning_pose.runtime.files import write_bytes_atomic  # noqa: E402

REPO = Path(__file__).resolve().parents[2]  # bench/reproduce/budget_plot.py


def read_curve(path: Path) -> tuple[list[float], list[float]]:
    """(core-minutes, PCK@0.2 limb joints %) of one curve file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    minutes = [float(r["time/fit_s"]) / 60 * float(r.get("cores") or 1) for r in rows]
    pck = [100 * float(r["val/pdj@0.2/limb_joints"]) for r in rows]
    return minutes, pck


def name_value(text: str) -> tuple[str, str]:
    name, _, value = text.rpartition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", default=str(REPO / "docs" / "results" / "budget_curves"))
    parser.add_argument("--reference", type=name_value, action="append", default=[])
    parser.add_argument("--point", type=name_value, action="append", default=[])
    parser.add_argument("--target", type=float, default=70.0)
    parser.add_argument(
        "--output", default=str(REPO / "docs" / "figures" / "accuracy_vs_cpu_time.png")
    )
    opts = parser.parse_args(argv)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for path in sorted(Path(opts.curves).glob("*.csv")):
        minutes, pck = read_curve(path)
        ax.plot(minutes, pck, marker="o", markersize=3, label=path.stem)
    for name, value in opts.point:
        minutes, pck = (float(v) for v in value.split(","))
        ax.plot([minutes], [pck], marker="s", linestyle="none", label=name)
    for name, value in opts.reference:
        ax.axhline(float(value), linestyle=":", color="grey")
        ax.text(0.01, float(value) + 1, name, transform=ax.get_yaxis_transform(), fontsize=8)
    ax.axhline(opts.target, linestyle="--", color="red", linewidth=0.8)
    ax.text(
        0.01,
        opts.target + 1,
        f"target {opts.target:g}%",
        transform=ax.get_yaxis_transform(),
        fontsize=8,
        color="red",
    )
    ax.set_xlabel("CPU core-minutes of fit (cores x wall-clock minutes)")
    ax.set_ylabel("PCK@0.2, 12 limb joints, LSPet val (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    fig.tight_layout()
    output = Path(opts.output)
    tmp = output.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    write_bytes_atomic(output, tmp.read_bytes())
    tmp.unlink()
    print(output)
    return output


if __name__ == "__main__":
    main()
