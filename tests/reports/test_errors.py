"""``lightning-pose report errors``: hits, left/right swaps and other misses, by hand and
through the real validation loader of a generated LSPet with estimates of known answer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_pose.data.skeleton import LSP_SKELETON
from lightning_pose.reports import errors

REPO = Path(__file__).resolve().parents[2]


def test_categorise_by_hand() -> None:
    perm = LSP_SKELETON.flip_permutation()  # right ankle 0 <-> left ankle 5, ...
    target = torch.zeros(2, 14, 2)
    target[:, :, 0] = torch.arange(14.0) * 10  # joint k at x = 10 k
    pred = target.clone()
    pred[0, 0] = target[0, 5]  # right ankle predicted on the left ankle: a swap
    pred[0, 1] = target[0, 1] + torch.tensor([3.0, 0.0])  # right knee 3 px off: a miss
    pred[0, 2] += torch.tensor([1.9, 0.0])  # right hip within 2 px: a hit
    labelled = torch.ones(2, 14, dtype=torch.bool)
    labelled[1, 3] = False  # not counted
    torso = torch.tensor([10.0, 0.0])  # image 1 has no torso: none of its joints counted
    joints = LSP_SKELETON.groups()["limb_joints"]
    counts = errors.categorise(pred, target, labelled, torso, perm, joints, 0.2)
    assert counts == {"hit": 10, "swap": 1, "other": 1, "counted": 12}
    # the swap needs the other side labelled
    labelled[0, 5] = False
    counts = errors.categorise(pred, target, labelled, torso, perm, joints, 0.2)
    assert counts == {"hit": 9, "swap": 0, "other": 2, "counted": 11}  # left ankle not counted


@pytest.mark.parametrize("estimate", ["truth", "mirrored"])
def test_main_on_the_validation_loader(
    estimate: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real CLI-built model and validation loader, with the estimate replaced by the labels
    (all hits) or by the labels with left and right exchanged (every limb joint whose other
    side is labelled and elsewhere is a swap)."""
    variant = REPO / "conf" / "model" / "deeppose.yaml"
    real_build = errors.build
    seen: dict[str, int] = {"swappable": 0, "counted": 0}

    def build(path, args):
        model, datamodule = real_build(path, args)
        perm = datamodule.skeleton.flip_permutation()
        joints = datamodule.skeleton.groups()["limb_joints"]

        def fake_estimate(batch):
            truth = batch["keypoints_norm"].nan_to_num(0.0)
            if estimate == "truth":
                return {"stages": [truth]}
            labelled, px = batch["labelled"], batch["keypoints_px"]
            counted = labelled & (batch["torso_diameter_px"] > 0)[:, None]
            far = (px - px[:, perm]).norm(dim=-1) > 0.2 * batch["torso_diameter_px"][:, None]
            seen["swappable"] += int((counted & labelled[:, perm] & far)[:, joints].sum())
            seen["counted"] += int(counted[:, joints].sum())
            return {"stages": [truth[:, perm]]}

        model.estimate = fake_estimate
        return model, datamodule

    monkeypatch.setattr(errors, "build", build)
    args = errors.parse(["--variant", str(variant), "--ckpt", "unused",
        "--data-root", str(tiny_root), "--override=--data.input_size=64"])  # fmt: skip
    args.ckpt = None  # the model's initial weights, saved below as the checkpoint to score
    model, _ = real_build(variant, args)
    ckpt = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "model.ckpt")
    output = tmp_path / "error_types.md"
    rows = errors.main([
        "--variant", str(variant), "--ckpt", str(tmp_path / "model.ckpt"),
        "--data-root", str(tiny_root), "--override=--data.input_size=64",
        "--override=--data.val_every=4", "--thresholds", "0.2", "--output", str(output),
    ])  # fmt: skip
    ((threshold, counts),) = rows
    assert threshold == 0.2 and counts["counted"] > 0
    if estimate == "truth":
        assert counts["hit"] == counts["counted"] and counts["swap"] == counts["other"] == 0
    else:
        assert counts["counted"] == seen["counted"]
        assert counts["swap"] == seen["swappable"] > 0
    text = output.read_text()
    assert "lightning-pose report errors --variant" in text
    assert f"| 0.2 | {counts['counted']} |" in text
