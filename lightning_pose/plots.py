"""Plots and their numbers: PDJ versus normalised distance (DeepPose Fig. 5), poses drawn on
images, joint label statistics and the comparison of a sweep's trials.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``, no pyplot state
and no backend switch), so they save to files in a headless process and display in a notebook
as the value of a cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure

from lightning_pose.codecs.grid import norm_to_grid
from lightning_pose.files import write_bytes_atomic
from lightning_pose.skeleton import Skeleton

TRUE_COLOUR = (40, 200, 40)  # RGB: the labels
PREDICTED_COLOUR = (255, 40, 40)  # RGB: the model's estimate


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


def draw_skeleton(
    image: np.ndarray,
    keypoints_px: np.ndarray,
    skeleton: Skeleton,
    colour: tuple[int, int, int],
    labelled: np.ndarray | None = None,
    limb_colour: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Draw joints (dots, ``colour``) and limbs (lines between their end points,
    ``limb_colour``, default ``colour``) on a copy of an RGB image; with ``labelled``, only
    labelled joints and limbs whose joints are all labelled. Never fails on a bad estimate:
    joints with a NaN or infinite coordinate are not drawn (nor their limbs), joints far
    outside the image are clipped to within 4 image sides of it.

    Shapes:
        image: (H, W, 3) uint8. keypoints_px: (K, 2) pixels. labelled: (K,) bool.
        returns (H, W, 3) uint8.
    """
    out = image.copy()
    K = skeleton.num_joints
    labelled = np.ones(K, dtype=bool) if labelled is None else np.asarray(labelled, dtype=bool)
    # a diverged model's estimate (NaN, 1e30) is drawn where it can be: non-finite joints are
    # left out, far ones clipped to a band around the image (OpenCV takes int32 coordinates)
    keypoints_px = np.asarray(keypoints_px, dtype=np.float64)
    labelled = labelled & np.isfinite(keypoints_px).all(axis=-1)
    reach = 4.0 * max(image.shape[:2])
    keypoints_px = np.clip(np.nan_to_num(keypoints_px), -reach, reach)
    radius = max(2, round(max(image.shape[:2]) / 150))
    weights = skeleton.limb_endpoint_weights()  # (L, 2, K)
    limb_ok = ~((weights > 0) & ~labelled).any(axis=(1, 2))  # (L,)
    kp = np.where(labelled[:, None], keypoints_px, 0.0)  # (K, 2): no NaN into the einsum
    ends = np.round(np.einsum("lek,kc->lec", weights, kp)).astype(int)  # (L, 2, 2) pixels
    for (a, b), ok in zip(ends, limb_ok, strict=True):
        if ok:
            line_colour = colour if limb_colour is None else limb_colour
            cv2.line(out, tuple(map(int, a)), tuple(map(int, b)), line_colour, max(1, radius // 2))
    for (x, y), ok in zip(np.round(keypoints_px).astype(int), labelled, strict=True):
        if ok:
            cv2.circle(out, (int(x), int(y)), radius, colour, -1)
    return out


def draw_comparison(
    image: np.ndarray,
    predicted_px: np.ndarray,
    true_px: np.ndarray,
    labelled: np.ndarray,
    skeleton: Skeleton,
) -> np.ndarray:
    """The true pose (labelled joints, :data:`TRUE_COLOUR`) and, over it, the predicted one
    (every joint, :data:`PREDICTED_COLOUR`).

    Shapes:
        image: (H, W, 3) uint8. predicted_px, true_px: (K, 2) pixels. labelled: (K,) bool.
        returns (H, W, 3) uint8.
    """
    out = draw_skeleton(image, true_px, skeleton, TRUE_COLOUR, labelled)
    return draw_skeleton(out, predicted_px, skeleton, PREDICTED_COLOUR)


def draw_sample(sample: Mapping[str, Any], skeleton: Skeleton) -> np.ndarray:
    """A sample's network input with its labelled joints and limbs (:data:`TRUE_COLOUR`), in
    the crop's pixels (after any augmentation).

    Shapes:
        sample: ``image (3, S, S)`` float in [0, 1], ``keypoints_norm (K, 2)``,
        ``labelled (K,)``. returns (S, S, 3) uint8.
    """
    image = (sample["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    keypoints_px = norm_to_grid(sample["keypoints_norm"].numpy(), image.shape[0])  # (K, 2)
    return draw_skeleton(image, keypoints_px, skeleton, TRUE_COLOUR, sample["labelled"].numpy())


def image_grid_figure(
    images: Sequence[np.ndarray], titles: Sequence[str] = (), cols: int = 4
) -> Figure:
    """Images in a grid, axes off. Shapes: images: N x (H, W, 3) uint8."""
    rows = max(1, -(-len(images) // cols))
    fig = Figure(figsize=(3 * cols, 3 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i])
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def joint_visibility_figure(
    joint_names: Sequence[str], labelled: np.ndarray, visible: np.ndarray
) -> Figure:
    """Per joint, the fraction of images where it is labelled and where it is labelled and
    visible (not occluded).

    Shapes:
        labelled, visible: (N, K) bool over N images.
    """
    x = np.arange(len(joint_names))
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    ax.bar(x - 0.2, 100 * labelled.mean(axis=0), width=0.4, label="labelled")
    ax.bar(x + 0.2, 100 * (labelled & visible).mean(axis=0), width=0.4, label="visible")
    ax.set_xticks(x, joint_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"% of {labelled.shape[0]} images")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    return fig


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
