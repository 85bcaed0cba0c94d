"""The shared partial-weights loader: loads one part and only it, with weights_only=True, and
says clearly what is wrong with a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_pose.checkpoints import load_partial_weights, read_state_dict


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
