"""Plots and their numbers: PDJ versus normalised distance (DeepPose Fig. 5)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lightning_pose.files import write_bytes_atomic  # noqa: E402


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

    fig, ax = plt.subplots(figsize=(5, 4))
    for s in stages:
        ax.plot(thresholds, 100 * curves[s], label=f"stage {s}")
    ax.set_xlabel("normalised distance to true joint (fraction of torso diameter)")
    ax.set_ylabel("detection rate, %  (PDJ)")
    ax.set_xlim(thresholds[0], thresholds[-1])
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(stem.with_suffix(".png"), png.getvalue())
