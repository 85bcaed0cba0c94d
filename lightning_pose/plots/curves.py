"""Curves and their numbers: PDJ versus normalised distance (DeepPose Fig. 5), per-stage
curves and the comparison of a sweep's trials; written atomically as PNG and CSV.

Figures use matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state), so
they save from a headless process and display in a notebook.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lightning_pose.runtime.files import write_bytes_atomic


def save_figure(fig: Figure, path: Path, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG atomically."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi)
    write_bytes_atomic(path, png.getvalue())


def pdj_curve_figure(
    thresholds: np.ndarray, curves: Mapping[int | str, np.ndarray], title: str = ""
) -> Figure:
    """PDJ (%) versus the distance threshold, one line per stage (or per run: any labels).

    Shapes:
        thresholds: (T,) fractions of the torso diameter. curves: label -> (T,) in [0, 1].
    """
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for label, curve in curves.items():
        ax.plot(
            thresholds,
            100 * np.asarray(curve),
            label=f"stage {label}" if isinstance(label, int) else label,
        )
    ax.set_xlabel("normalised distance to true joint (fraction of torso diameter)")
    ax.set_ylabel("detection rate, %  (PDJ)")
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def save_pdj_curves(stem: Path, thresholds: np.ndarray, curves: dict[int, np.ndarray]) -> None:
    """Write ``<stem>.csv`` (threshold, then one column per stage, PDJ in [0, 1]) and
    ``<stem>.png`` (one line per stage), each atomically.

    Shapes:
        thresholds: (T,) fractions of the torso diameter. curves: stage -> (T,).
    """
    stages = sorted(curves)
    table = np.column_stack([thresholds] + [curves[s] for s in stages])
    header = ",".join(["threshold"] + [f"stage{s}" for s in stages])
    text = io.StringIO()
    np.savetxt(text, table, delimiter=",", header=header, comments="", fmt="%.6f")
    write_bytes_atomic(stem.with_suffix(".csv"), text.getvalue().encode())
    save_figure(
        pdj_curve_figure(thresholds, {s: curves[s] for s in stages}), stem.with_suffix(".png")
    )


def read_pdj_curves(path: Path) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Read a ``*_pdj_curve.csv`` written by :func:`save_pdj_curves`.

    Shapes:
        returns thresholds (T,) and stage -> PDJ (T,) in [0, 1].

    Raises:
        ValueError: the file's header is not ``threshold,stage1,...``.
    """
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    if header[0] != "threshold" or not all(h.startswith("stage") for h in header[1:]):
        raise ValueError(f"{path}: expected the header threshold,stage1,..., got {header}")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)  # (T, 1 + S)
    return table[:, 0], {int(h[5:]): table[:, i] for i, h in enumerate(header[1:], start=1)}


def stage_curves_figure(
    curves: Mapping[str, tuple[np.ndarray, Mapping[int, np.ndarray]]], cols: int = 3
) -> Figure:
    """One panel per run (e.g. a sweep's trials), one PDJ line per stage in each.

    Shapes:
        curves: run -> (thresholds (T,), stage -> PDJ (T,) in [0, 1]).
    """
    rows = max(1, -(-len(curves) // cols))
    fig = Figure(figsize=(4 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    for ax in axes[len(curves) :]:
        ax.set_axis_off()
    for ax, (run, (thresholds, stages)) in zip(axes, curves.items(), strict=False):
        for s in sorted(stages):
            ax.plot(thresholds, 100 * stages[s], label=f"stage {s}")
        ax.set_title(run, fontsize=9)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("PDJ, %")
    fig.supxlabel("normalised distance (fraction of torso diameter)")
    fig.tight_layout()
    return fig


def sweep_comparison_figure(
    trials: Sequence[str],
    values: Sequence[float | None],
    metric: str,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Figure:
    """A sweep's trials side by side: the sweep's metric per trial (in %, a missing value = a
    failed trial, marked) and, where given, each trial's PDJ curve of its final stage.

    Shapes:
        values: one per trial, in [0, 1]. curves: trial -> (thresholds (T,), PDJ (T,)).
    """
    fig = Figure(figsize=(11 if curves else 6, 4))
    axes = fig.subplots(1, 2 if curves else 1)
    ax = axes[0] if curves else axes
    y = np.arange(len(trials))
    ok = np.array([v is not None and np.isfinite(v) for v in values], dtype=bool)
    heights = np.array([100 * v if o else 0.0 for v, o in zip(values, ok, strict=True)])
    ax.barh(y[ok], heights[ok])
    for i in np.flatnonzero(~ok):
        ax.text(0, i, " failed", va="center", color="red")
    ax.set_yticks(y, trials, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric}, %")
    ax.grid(axis="x", alpha=0.3)
    if curves:
        for trial, (thresholds, curve) in curves.items():
            axes[1].plot(thresholds, 100 * curve, label=trial)
        axes[1].set_xlabel("normalised distance (fraction of torso diameter)")
        axes[1].set_ylabel("PDJ, % (final stage)")
        axes[1].set_ylim(0, 100)
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
