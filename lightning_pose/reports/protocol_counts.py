"""``lightning-pose report protocol-counts``: how many images, joints and limbs each metric
counts on each evaluation split, from the annotation files alone (no images, no model): the
counting rule of ``StageMetrics``.

Counted: labelled joints (occluded ones too) of images whose normaliser can be measured
(PDJ: both torso joints labelled; PCKh: neck and head top labelled); PCP: limbs whose end
joints are all labelled and whose true length is > 0. For comparison, the package's first
rule counted *visible* joints only (docs/results/HISTORY.md, "What each metric counts").

Usage: ``lightning-pose report protocol-counts [DATA_ROOT]`` (prints a markdown table; the
data root as ``data.root`` resolves it: :func:`lightning_pose.data.datamodule.resolve_data_root`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.datamodule import resolve_data_root, split_indices
from lightning_pose.data.readers import FLIC, LSP, LSPet
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics

SPLITS = {"lspet": "val", "lsp": "test", "flic": "test"}
READERS = {"lspet": LSPet(), "lsp": LSP(), "flic": FLIC()}


def counts(dataset: str, root: Path, flags: str) -> dict[str, int]:
    """What ``StageMetrics`` counts on ``dataset``'s evaluation split (:data:`SPLITS`) under
    ``root`` when the joints of ``flags`` (``"labelled"`` or ``"visible"``) count: its
    ``count/*`` values, ``pdj_images`` (images with a torso) and ``joints`` (flagged joints).

    Raises:
        DatasetError, FileNotFoundError: the dataset's annotation files are missing or
            malformed (the reader's message).
    """
    ann = READERS[dataset].read(root)
    index = split_indices(ann, val_every=10)[SPLITS[dataset]]
    keypoints = torch.from_numpy(ann.keypoints_px[index])  # (N, K, 2)
    labelled = torch.from_numpy(getattr(ann, flags)[index])  # (N, K)
    skeleton = ann.skeleton
    head = (
        segment_lengths(keypoints, labelled, skeleton.head)
        if skeleton.head
        else torch.zeros(len(index))
    )
    batch = {
        "keypoints_px": keypoints,
        "labelled": labelled,
        "torso_diameter_px": segment_lengths(keypoints, labelled, skeleton.torso),
        "head_size_px": head,
    }
    metrics = StageMetrics(skeleton, EvaluationProtocol())
    metrics.update(keypoints, batch)  # the prediction does not change what is counted
    out = {k: int(v) for k, v in metrics.counts().items()}
    out["pdj_images"] = int((batch["torso_diameter_px"] > 0).sum())
    out["joints"] = int(labelled.sum())
    return out


def table(root: Path) -> str:
    """The markdown table: per dataset and split, what each rule (labelled joints, now;
    visible joints, the first rule) counts."""
    lines = [
        "| dataset, split | rule | images | labelled joints | PDJ: images / joints "
        "| PCKh joints | PCP limbs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for dataset, split in SPLITS.items():
        for flags, rule in (("labelled", "labelled (now)"), ("visible", "visible (before)")):
            c = counts(dataset, root, flags)
            lines.append(
                f"| {dataset} {split} | {rule} | {c['count/images']} | {c['joints']} | "
                f"{c['pdj_images']} / {c['count/pdj']} | {c['count/pckh']} | {c['count/pcp']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    """Print the table (stdout) and return it; see :func:`table`."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose report protocol-counts", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("root", nargs="?", help="the data root (default: as data.root)")
    text = table(resolve_data_root(parser.parse_args(argv).root))
    print(text, end="")
    return text
