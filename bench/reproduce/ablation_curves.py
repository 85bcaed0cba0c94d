"""PDJ against the normalised distance for the pooling and multi-task ablations of the
same-budget LSPet runs (bench/reproduce/compare_lspet.sh): the final stage of each run's
validation on the 900 validation images (``<run>/runs/lspet/version_1/val_pdj_curve.csv``),
one panel per study.

    .venv/bin/python bench/reproduce/ablation_curves.py docs/figures/lspet_ablations_pdj_curve.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from lightning_pose.plots.curves import read_pdj_curves, save_figure  # noqa: E402

RUNS = Path("runs/compare")
STUDIES = {
    "pooling and stride (Tompson et al. §3), refined stage": {
        "tompson_max_s4": "max pooling, stride 4",
        "tompson_avg_s4": "average pooling, stride 4",
        "tompson_max_s8": "max pooling, stride 8",
    },
    "multi-task (Li & Chan), EfficientNet-Lite0": {
        "deeppose_effnet": "regression only",
        "mt_joint": "+ joint detection",
        "mt_both": "+ joint and part detection",
        "mt_pretrained_regression": "detection pre-training, then regression",
    },
}


def main(out: Path) -> None:
    fig = Figure(figsize=(11, 4.2))
    for ax, (title, runs) in zip(fig.subplots(1, len(STUDIES)), STUDIES.items(), strict=True):
        for name, label in runs.items():
            thresholds, curves = read_pdj_curves(
                RUNS / name / "runs" / "lspet" / "version_1" / "val_pdj_curve.csv"
            )
            final = curves[max(curves)]  # (T,) fraction
            ax.plot(thresholds, 100 * final, label=label)
        ax.set(title=title, xlabel="normalised distance (fraction of torso diameter)")
        ax.set(ylabel="PDJ, % (900 images)", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
