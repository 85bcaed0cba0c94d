"""``lightning-pose report errors``: where a model's misses come from, left/right swaps
against the rest, on LSPet validation.

Every labelled limb joint (shoulders, elbows, wrists, hips, knees, ankles) that PDJ@t counts
(torso-normalised, DeepPose §5; images whose torso joints are both labelled) is, for the final
stage's estimate:

* a **hit**: within ``t`` torso diameters of its own label (``val/pdj@t/limb_joints``);
* a **swap**: a miss, but within ``t`` torso diameters of the label of its left/right
  counterpart (the skeleton's flip pairs): the model found the other side's joint, or the
  annotator named the sides the other way (LSPet's labels, made on Amazon Mechanical Turk,
  name them inconsistently: Johnson & Everingham 2011);
* **other**: any other miss.

The model is built as the CLI builds it (``-c conf/lspet.yaml -c <--variant>`` and every
``--override``: :func:`lightning_pose.cli.configured.lspet_model`), loads ``--ckpt``, and
runs on the validation split in eval mode (so ``--override=--model.init_args.flip_test=true``
applies). Prints a markdown table and writes it, with the command and commit, to ``--output``
(atomically).

    lightning-pose report errors --variant conf/model/heatmap_budget.yaml --ckpt .../last.ckpt
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from lightning_pose.cli.configured import lspet_model
from lightning_pose.codecs.box import decode
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.metrics.functional import keypoint_distances
from lightning_pose.models.base import PoseEstimator
from lightning_pose.reports import provenance
from lightning_pose.runtime.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[2]  # lightning_pose/reports/errors.py


def categorise(
    pred_px: torch.Tensor,
    target_px: torch.Tensor,
    labelled: torch.Tensor,
    torso_px: torch.Tensor,
    flip_permutation: list[int],
    joints: list[int],
    threshold: float,
) -> dict[str, int]:
    """Counts of ``hit``, ``swap`` and ``other`` over the ``joints`` PDJ counts (see the module
    docstring), and ``counted``, their sum.

    Shapes:
        pred_px, target_px: (B, K, 2) pixels. labelled: (B, K) bool. torso_px: (B,) pixels
        (a sample with a torso <= 0 or not finite is not counted).
    """
    radius = threshold * torso_px.double()[:, None]  # (B, 1)
    counted = labelled & (torch.isfinite(torso_px) & (torso_px > 0))[:, None]  # (B, K)
    own = keypoint_distances(pred_px.double(), target_px.double()) <= radius  # (B, K)
    mirrored = target_px[:, flip_permutation].double()  # (B, K, 2): the other side's label
    other_side = (keypoint_distances(pred_px.double(), mirrored) <= radius) & labelled[
        :, flip_permutation
    ]  # (B, K)
    is_other_joint = torch.tensor(flip_permutation) != torch.arange(len(flip_permutation))
    keep = counted[:, joints]
    hit = own[:, joints] & keep
    swap = ~own[:, joints] & other_side[:, joints] & is_other_joint[joints] & keep
    counts = {"hit": int(hit.sum()), "swap": int(swap.sum()), "counted": int(keep.sum())}
    counts["other"] = counts["counted"] - counts["hit"] - counts["swap"]
    return counts


def build(variant: Path, args: argparse.Namespace) -> tuple[PoseEstimator, PoseDataModule]:
    """The ``variant``'s model (eval mode, ``args.ckpt``'s weights where given) and data
    module on LSPet (``args.data_root``, else as the CLI resolves it), with ``args.override``."""
    return lspet_model(variant, args.override, args.ckpt, args.data_root)


def parse(argv: list[str]) -> argparse.Namespace:
    """The command's arguments. Raises SystemExit (argparse's message, exit 2) on bad ones."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose report errors", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--variant", type=Path, required=True, help="the model's config")
    parser.add_argument("--ckpt", type=Path, required=True, help="its trained weights")
    parser.add_argument(
        "--override", action="append", default=[], metavar="ARG",
        help="extra CLI argument, e.g. --override=--model.init_args.flip_test=true",
    )  # fmt: skip
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / "error_types.md")
    return parser.parse_args(argv)


def table(rows: list[tuple[float, dict[str, int]]]) -> str:
    """The markdown table: per threshold (torso diameters), the joints counted and the shares
    of hits, swaps and other misses (of those counted), and of swaps among the misses."""
    lines = [
        "| threshold (torso) | joints counted | hit | swap (left/right) | other miss | "
        "swaps among misses |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for t, c in rows:
        n, misses = c["counted"], c["swap"] + c["other"]
        pct = [100 * c[k] / max(n, 1) for k in ("hit", "swap", "other")]
        lines.append(
            f"| {t:g} | {n} | {pct[0]:.1f} % | {pct[1]:.1f} % | {pct[2]:.1f} % | "
            f"{100 * c['swap'] / max(misses, 1):.1f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[tuple[float, dict[str, int]]]:
    """Count, print and write the report (see the module docstring); returns the rows
    ``(threshold, counts of categorise())``.

    Raises:
        FileNotFoundError, ValueError: ``--ckpt`` missing or not fitting the config
            (:func:`lightning_pose.cli.configured.configured_model`), the data not found.
    """
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    torch.set_num_threads(args.threads)
    model, datamodule = build(args.variant, args)
    skeleton = datamodule.skeleton
    joints, perm = skeleton.groups()["limb_joints"], skeleton.flip_permutation()
    datamodule.batch_size = args.batch_size
    datamodule.setup("validate")
    totals = {t: {"hit": 0, "swap": 0, "other": 0, "counted": 0} for t in args.thresholds}
    images = 0
    with torch.inference_mode():
        for batch in datamodule.val_dataloader():
            pred_px = decode(model.estimate(batch)["stages"][-1], batch["box"])
            images += len(pred_px)
            for t in args.thresholds:
                counts = categorise(
                    pred_px, batch["keypoints_px"], batch["labelled"],
                    batch["torso_diameter_px"], perm, joints, t,
                )  # fmt: skip
                for k, v in counts.items():
                    totals[t][k] += v
    rows = [(t, totals[t]) for t in args.thresholds]
    commit = provenance.commit()
    report = (
        "# Misses of the limb joints: left/right swaps and the rest\n\n"
        f"Command: `lightning-pose report errors {shlex.join(argv)}`  \n"
        f"Commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {images} LSPet "
        "validation images; limb joints counted as PDJ counts them (labelled, both torso joints "
        "labelled); final stage. A swap: a miss within the threshold of the other side's "
        "label.\n\n" + table(rows) + "\n"
    )
    print(report)
    write_bytes_atomic(args.output, report.encode())
    return rows
