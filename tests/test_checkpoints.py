"""The shared partial-weights loader: loads one part and only it, with weights_only=True, and
says clearly what is wrong with a bad file; a --ckpt_path checked against the config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_pose.checkpoints import (
    check_checkpoint_fits,
    checkpoint_file,
    checkpoint_mismatches,
    load_partial_weights,
    read_state_dict,
)
from lightning_pose.skeleton import FLIC, LSP, Skeleton


def small() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))


def save(path: Path, state: dict, **extra) -> Path:
    torch.save({"state_dict": state, **extra}, path)
    return path


def test_loads_the_first_prefix_present_and_only_that_part(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source, other = small(), small()
    state = {f"stages.1.{k}": v for k, v in source.state_dict().items()}
    state |= {f"head.{k}": v for k, v in other.state_dict().items()}
    path = save(tmp_path / "a.ckpt", state)
    target = small()
    assert load_partial_weights(target, path, ["stages.0.", "stages.1."]) == "stages.1."
    for a, b in zip(target.state_dict().values(), source.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the other part's weights were not copied in
    assert not torch.equal(target[0].weight, other[0].weight)


class NotAllowed:
    """Any class outside torch's weights_only allow-list."""


def test_refuses_a_pickled_object_with_weights_only(tmp_path: Path) -> None:
    path = save(tmp_path / "evil.ckpt", small().state_dict(), payload=NotAllowed())
    with pytest.raises(ValueError, match=r"evil.ckpt cannot be read .* weights_only=True"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is empty \(0 bytes\)"),
        (b"not a checkpoint", "cannot be read as a checkpoint"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=rf"model.init_checkpoint: .*bad.ckpt.*{message}|{message}"
    ):
        load_partial_weights(small(), path, ["x."])


def test_missing_file_state_dict_prefix_and_shape(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model.init_checkpoint: .*nope.ckpt does not"):
        load_partial_weights(small(), tmp_path / "nope.ckpt", ["x."])
    torch.save({"weights": 1}, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="has no 'state_dict'"):
        read_state_dict(tmp_path / "plain.ckpt")
    path = save(tmp_path / "b.ckpt", {f"trunk.{k}": v for k, v in small().state_dict().items()})
    with pytest.raises(
        ValueError, match=r"no weights under \['stages.0.'\]; its model has \['trunk'\]"
    ):
        load_partial_weights(small(), path, ["stages.0."])
    wide = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2))
    with pytest.raises(ValueError, match="size mismatch"):
        load_partial_weights(wide, path, ["trunk."])
    partial = {k: v for k, v in small().state_dict().items() if k.startswith("0.")}
    path = save(tmp_path / "c.ckpt", {f"trunk.{k}": v for k, v in partial.items()})
    with pytest.raises(ValueError, match=r"do not fit Sequential: missing \['1.weight'"):
        load_partial_weights(small(), path, ["trunk."])


# --- a --ckpt_path checked against the config --------------------------------------------------


def record(skeleton: Skeleton | None, input_size: int | None) -> dict:
    """The parts of a Lightning checkpoint the check reads, as ``fit`` writes them."""
    checkpoint: dict = {"state_dict": {}}
    if skeleton is not None:
        checkpoint["pose"] = {"skeleton": skeleton.to_dict()}
    if input_size is not None:
        checkpoint["datamodule_hyper_parameters"] = {"dataset": "lspet", "input_size": input_size}
    return checkpoint


@pytest.mark.parametrize(
    ("skeleton", "input_size", "expected"),
    [
        (LSP, 64, []),
        (None, None, []),  # nothing recorded: nothing to compare
        (FLIC, 64, ["joints"]),
        (LSP, 220, ["size"]),
        (FLIC, 220, ["joints", "size"]),
    ],
)
def test_checkpoint_mismatches_known_answers(
    skeleton: Skeleton | None, input_size: int | None, expected: list[str]
) -> None:
    problems = checkpoint_mismatches(record(skeleton, input_size), LSP, 64)
    kinds = ["joints" if "joints of skeleton" in p else "size" for p in problems]
    assert kinds == expected
    if "size" in expected:
        assert problems[-1] == (
            f"it was trained on {input_size} px crops, the config asks for "
            f"data.input_size=64; set --data.input_size={input_size}"
        )
    if "joints" in expected:
        assert problems[0].startswith(
            "its model estimates the 11 joints of skeleton 'flic' (left_shoulder, left_elbow, "
        )
        assert "the config's data (data.dataset) the 14 of 'lsp' (right_ankle, " in problems[0]


def test_check_checkpoint_fits_names_the_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "flic.ckpt"
    torch.save(record(FLIC, 64), path)
    check_checkpoint_fits(path, FLIC, 64)  # fits: no error
    with pytest.raises(ValueError, match=rf"ckpt_path: {re.escape(str(path))} does not fit"):
        check_checkpoint_fits(path, LSP, 64)


@pytest.mark.parametrize("name", [None, "last", "best", "hpc", "registry", "s3://bucket/x.ckpt"])
def test_checkpoint_file_leaves_names_the_trainer_resolves(name: str | None) -> None:
    assert checkpoint_file(name) is None
    check_checkpoint_fits(name, LSP, 64)  # nothing to read, nothing raised


def test_checkpoint_file_checks_a_real_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ckpt_path: .*last does not exist"):
        checkpoint_file(tmp_path / "last")  # a path, not the bare name "last"
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"ckpt_path: .*empty.ckpt is empty \(0 bytes\)"):
        checkpoint_file(path)
    torch.save(record(LSP, 64), tmp_path / "good.ckpt")
    assert checkpoint_file(tmp_path / "good.ckpt") == tmp_path / "good.ckpt"
