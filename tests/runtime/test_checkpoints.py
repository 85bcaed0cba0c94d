"""The shared partial-weights loader: loads one part and only it, with weights_only=True, and
says clearly what is wrong with a bad file; a --ckpt_path checked against the config."""

from __future__ import annotations

import contextlib
import errno
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_pose.data.skeleton import FLIC_SKELETON, LSP_SKELETON, Skeleton
from lightning_pose.runtime.checkpoints import (
    check_checkpoint_fits,
    checkpoint_file,
    checkpoint_mismatches,
    load_partial_weights,
    read_state_dict,
)


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
    with pytest.raises(
        ValueError, match=r"evil.ckpt is a torch file but not a trusted checkpoint"
    ) as caught:
        read_state_dict(path)
    # never the advice to retry with weights_only=False (it would run the file's code)
    assert "weights_only" not in str(caught.value) and "NotAllowed" in str(caught.value)


class RunsCode:
    """A crafted checkpoint: unpickling it would call ``os.system``."""

    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_crafted_checkpoint_is_refused_saying_why(tmp_path: Path, zipped: bool) -> None:
    """torch blocks the whole ``os`` module with a message of another form: it was told as
    "not a torch file" although the file is one."""
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "x": RunsCode()}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(ValueError) as caught:
        read_state_dict(path, key="ckpt_path")
    assert str(caught.value) == (
        f"ckpt_path: {path} is a torch file but not a trusted checkpoint: it refers to Python "
        "code or objects other than tensors and plain values, which lightning_pose never "
        "loads (expected a Lightning .ckpt written by lightning_pose; the unpickler refused: "
        "Trying to load unsupported GLOBAL posix.system whose module posix is blocked)"
    )


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
        (LSP_SKELETON, 64, []),
        (None, None, []),  # nothing recorded: nothing to compare
        (FLIC_SKELETON, 64, ["joints"]),
        (LSP_SKELETON, 220, ["size"]),
        (FLIC_SKELETON, 220, ["joints", "size"]),
    ],
)
def test_checkpoint_mismatches_known_answers(
    skeleton: Skeleton | None, input_size: int | None, expected: list[str]
) -> None:
    problems = checkpoint_mismatches(record(skeleton, input_size), LSP_SKELETON, 64)
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
    torch.save(record(FLIC_SKELETON, 64), path)
    check_checkpoint_fits(path, FLIC_SKELETON, 64)  # fits: no error
    with pytest.raises(ValueError, match=rf"ckpt_path: {re.escape(str(path))} does not fit"):
        check_checkpoint_fits(path, LSP_SKELETON, 64)


@pytest.mark.parametrize("name", [None, "last", "best", "hpc", "registry", "s3://bucket/x.ckpt"])
def test_checkpoint_file_leaves_names_the_trainer_resolves(name: str | None) -> None:
    assert checkpoint_file(name) is None
    check_checkpoint_fits(name, LSP_SKELETON, 64)  # nothing to read, nothing raised


def test_checkpoint_file_checks_a_real_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ckpt_path: .*last does not exist"):
        checkpoint_file(tmp_path / "last")  # a path, not the bare name "last"
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"ckpt_path: .*empty.ckpt is empty \(0 bytes\)"):
        checkpoint_file(path)
    torch.save(record(LSP_SKELETON, 64), tmp_path / "good.ckpt")
    assert checkpoint_file(tmp_path / "good.ckpt") == tmp_path / "good.ckpt"


# --- writing: AtomicCheckpointIO --------------------------------------------------------------
SHM = Path("/dev/shm")


def _copy_killed_midway(src, dst, *args, **kwargs):
    """What a SIGKILL during a cross-filesystem "move" leaves: the target truncated, then half
    written."""
    with open(dst, "wb") as f:
        f.write(Path(src).read_bytes()[:100])
    raise KeyboardInterrupt("killed during the copy")


@pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm (a tmpfs) on this machine")
def test_a_kill_while_rewriting_a_checkpoint_keeps_the_old_one_with_tmp_on_another_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The system temp folder on a tmpfs, the checkpoint on the disk (the cluster case): a kill
    while last.ckpt is rewritten leaves the previous last.ckpt whole. Lightning's own
    TorchCheckpointIO (an fsspec transaction staged in the temp folder, then a copy) leaves
    100 bytes."""
    from lightning_pose.runtime.checkpoints import AtomicCheckpointIO

    other_fs = Path(tempfile.mkdtemp(dir=SHM))
    try:
        monkeypatch.setattr("tempfile.tempdir", str(other_fs))
        monkeypatch.setattr("shutil.copyfile", _copy_killed_midway)
        last = tmp_path / "checkpoints" / "last.ckpt"
        io = AtomicCheckpointIO()
        io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "global_step": 3}, last)
        with contextlib.suppress(KeyboardInterrupt):
            io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "global_step": 4}, last)
        state = torch.load(last, weights_only=True)
        assert state["global_step"] == 4  # the rewrite went through: no copy was involved
        assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
    finally:
        shutil.rmtree(other_fs)


def test_a_full_disk_leaves_no_truncated_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning_pose.runtime.checkpoints import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    best = tmp_path / "best-001.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(10)}, "global_step": 1}, best)
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # the bytes are written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(10)}, "global_step": 2}, best)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"state_dict": {}, "global_step": 2}, tmp_path / "best-002.ckpt")
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(best, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-001.ckpt"]


def test_a_full_disk_during_torch_save_says_no_space_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while torch writes the file: torch's own error was
    ``RuntimeError: [enforce fail at inline_container.cc:...]``."""
    from lightning_pose.runtime import checkpoints

    real_open = checkpoints.atomic_open

    class FullDisk:
        def __init__(self, f) -> None:
            self.f, self.written = f, 0

        def write(self, data) -> int:
            self.written += len(data)
            if self.written > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def flush(self) -> None:
            self.f.flush()

    @contextlib.contextmanager
    def filling_open(path):
        with real_open(path) as f:
            yield FullDisk(f)

    monkeypatch.setattr(checkpoints, "atomic_open", filling_open)
    target = tmp_path / "last.ckpt"
    with pytest.raises(OSError) as caught:
        checkpoints.AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(10_000)}, target)
    assert type(caught.value) is OSError and caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"[Errno 28] No space left on device: '{target}'"
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_refuses_a_checkpoint_with_non_finite_weights(tmp_path: Path) -> None:
    state = {"head.weight": torch.tensor([1.0, float("nan")]), "head.bias": torch.ones(2)}
    path = save(tmp_path / "diverged.ckpt", state)
    with pytest.raises(ValueError, match=r"diverged.ckpt has non-finite weights .*head.weight"):
        check_checkpoint_fits(path, LSP_SKELETON, 220)
