"""PDJ against the normalised distance, every stage of each setting, its seeds averaged: the
figure of a multi-stage ablation (coarse vs refined heat-maps at two strides; cascade stage 1
vs stage 2), from the runs' last-validation ``val_pdj_curve.csv`` (``PDJCurveWriter``).

    .venv/bin/python bench/reproduce/stage_curves.py docs/figures/pooling_budget_stages.png \
        "stride 4=RUN_A,RUN_B,RUN_C" "stride 8=RUN_D,RUN_E,RUN_F" \
        --stage-names coarse refined --title "..."

A RUN is a run folder holding ``val_pdj_curve.csv``. Every stage is drawn (the first dashed, the
last solid); the curve is the mean over the setting's seeds of each seed's PDJ (the seeds were
scored on the same images, so it is also the pooled PDJ wherever every seed counted the same
joints, as here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from lightning_pose.plots.curves import read_pdj_curves, save_figure  # noqa: E402
from lightning_pose.reports.intervals import labelled_lists  # noqa: E402

STYLES = ["--", ":", "-."]  # earlier stages; the final stage is solid


def seed_mean(runs: list[Path]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Thresholds (T,) and stage -> the seeds' mean PDJ (T,) in [0, 1].

    Raises:
        ValueError: the runs' thresholds or stages differ (the file named).
    """
    curves = [read_pdj_curves(run / "val_pdj_curve.csv") for run in runs]
    thresholds, first = curves[0]
    for run, (t, c) in zip(runs[1:], curves[1:], strict=True):
        if (
            t.shape != thresholds.shape
            or not np.allclose(t, thresholds)
            or c.keys() != first.keys()
        ):
            raise ValueError(f"{run}: thresholds or stages differ from {runs[0]}")
    return thresholds, {s: np.mean([c[s] for _, c in curves], axis=0) for s in first}


def figure(settings: dict[str, list[Path]], stage_names: list[str], title: str) -> Figure:
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for colour, (label, runs) in enumerate(settings.items()):
        thresholds, stages = seed_mean(runs)
        last = max(stages)
        for s, pdj in sorted(stages.items()):
            name = stage_names[s - 1] if s <= len(stage_names) else f"stage {s}"
            style = "-" if s == last else STYLES[(s - 1) % len(STYLES)]
            ax.plot(thresholds, 100 * pdj, style, color=f"C{colour}",
                    label=f"{label}, {name} ({len(runs)} seeds)")  # fmt: skip
    ax.set_xlabel("normalised distance (fraction of torso diameter)")
    ax.set_ylabel("PDJ, %")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the figure (.png)")
    parser.add_argument("settings", nargs="+", help="LABEL=RUN[,RUN...]")
    parser.add_argument("--stage-names", nargs="+", default=[], help="stage 1's name, ...")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    settings = {
        label: [Path(r) for r in runs]
        for label, runs in labelled_lists(parser, args.settings, "RUN").items()
    }
    save_figure(figure(settings, args.stage_names, args.title), args.out)


if __name__ == "__main__":
    main()
