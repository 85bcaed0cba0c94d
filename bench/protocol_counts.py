"""How many images, joints and limbs each metric counts on each evaluation split, from the
annotation files alone (no images, no model): the counting rule of ``StageMetrics``.

Counted: labelled joints (occluded ones too) of images whose normaliser can be measured
(PDJ: both torso joints labelled; PCKh: neck and head top labelled); PCP: limbs whose end
joints are all labelled and whose true length is > 0. For comparison, the package's first
rule counted *visible* joints only (docs/results/HISTORY.md, "What each metric counts").

Usage: .venv/bin/python bench/protocol_counts.py [data root]   (prints a Markdown table)
"""

from __future__ import annotations

import sys

import torch

from lightning_pose.codecs.segments import segment_lengths
from lightning_pose.data.datamodule import resolve_data_root, split_indices
from lightning_pose.data.readers import FLIC, LSP, LSPet
from lightning_pose.metrics.protocol import EvaluationProtocol, StageMetrics

SPLITS = {"lspet": "val", "lsp": "test", "flic": "test"}
READERS = {"lspet": LSPet(), "lsp": LSP(), "flic": FLIC()}


def counts(dataset: str, root, flags: str) -> dict[str, int]:
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


def main() -> None:
    root = resolve_data_root(sys.argv[1] if len(sys.argv) > 1 else None)
    print(
        "| dataset, split | rule | images | labelled joints | PDJ: images / joints "
        "| PCKh joints | PCP limbs |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for dataset, split in SPLITS.items():
        for flags, rule in (("labelled", "labelled (now)"), ("visible", "visible (before)")):
            c = counts(dataset, root, flags)
            print(
                f"| {dataset} {split} | {rule} | {c['count/images']} | {c['joints']} | "
                f"{c['pdj_images']} / {c['count/pdj']} | {c['count/pckh']} | {c['count/pcp']} |"
            )


if __name__ == "__main__":
    main()
