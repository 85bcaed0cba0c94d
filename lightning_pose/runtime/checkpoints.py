"""Writing checkpoints atomically (:class:`AtomicCheckpointIO`), reading them safely and checking
they fit: ``torch.load(weights_only=True)`` unpickles tensors and plain containers only, never
arbitrary objects. Loading weights into part of a model (cascade stages, detection
pre-training); checking a ``--ckpt_path`` against the config (its joints and input size, finite
weights) before a run starts.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import Tensor, nn

from lightning_pose.data.skeleton import Skeleton
from lightning_pose.runtime.files import atomic_open

# ``ckpt_path`` values the Trainer resolves itself (not file names).
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` writing each local checkpoint through
    :func:`lightning_pose.runtime.files.atomic_open`: a temporary file in the checkpoint's own
    folder, fsynced, then renamed onto the target. Lightning's own writer stages the file in the
    system temp folder and "moves" it, which across filesystems (tmpfs ``/tmp``, ``runs/`` on
    NFS or Lustre) is a copy that truncates the target first: a kill then left an empty
    ``last.ckpt``, a full disk a truncated ``best-*.ckpt``. Remote URLs (``s3://``) go to
    Lightning's writer. The CLI installs it in every trainer that has no other checkpoint IO.
    """

    def save_checkpoint(
        self, checkpoint: dict, path: str | Path, storage_options: object | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(path) as f:
            try:
                torch.save(checkpoint, f)
            except RuntimeError as err:
                # torch's writer reports a failed write (a full disk, a quota) as
                # "[enforce fail at inline_container.cc:...] ... file write failed"; the
                # OSError it hides is what the user can act on
                cause = _os_error(err)
                if cause is None:
                    raise
                raise OSError(cause.errno, cause.strerror, str(path)) from None


def _os_error(err: BaseException) -> OSError | None:
    """The ``OSError`` in ``err``'s chain of causes and contexts, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def non_finite_tensors(state: dict[str, Tensor]) -> list[str]:
    """Names of the floating-point tensors of a state dict holding a NaN or an infinity."""
    return [
        name
        for name, value in state.items()
        if isinstance(value, Tensor) and value.is_floating_point() and not value.isfinite().all()
    ]


def read_checkpoint(path: str | Path, key: str = "model.init_checkpoint") -> dict:
    """A Lightning checkpoint, read with ``weights_only=True``.

    Args:
        path: the ``.ckpt`` file.
        key: the config key that named it, for error messages.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, not a torch checkpoint, holds objects that
            ``weights_only`` refuses, or has no ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}: {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{key}: {path} is empty (0 bytes), expected a Lightning checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises retrying with weights_only=False, which runs whatever code
        # the file holds: the unsafe thing to do with a file of unknown origin. Not repeated.
        reason = _unpickler_reason(err)
        if "global" in reason.lower():
            raise ValueError(
                f"{key}: {path} is a torch file but not a trusted checkpoint: it refers to "
                "Python code or objects other than tensors and plain values, which "
                "lightning_pose never loads (expected a Lightning .ckpt written by "
                f"lightning_pose; the unpickler refused: {reason})"
            ) from None
        raise ValueError(
            f"{key}: {path} cannot be read as a checkpoint (expected a Lightning .ckpt of "
            f"tensors and plain values; the unpickler refused: {reason})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{key}: {path} cannot be read as a checkpoint (expected a Lightning .ckpt of "
            f"tensors and plain values): {err}"
        ) from err
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(f"{key}: {path} has no 'state_dict': not a Lightning checkpoint")
    return checkpoint


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """The unpickler's own reason (``Unsupported global: GLOBAL x.Y ...``, ``Trying to load
    unsupported GLOBAL posix.system whose module posix is blocked``), without torch's advice
    around it; else the message's first line that is not advice."""
    text = str(err)
    for pattern in (
        r"WeightsUnpickler error:\s*(.+?)(?:\n|$)",
        r"(Trying to load unsupported GLOBAL .+?)(?:\n|$)",
    ):
        match = re.search(pattern, text)
        if match:
            return match.group(1).split(" was not an allowed global")[0].strip().rstrip(".")
    advice = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(advice)]
    return (kept or lines or [type(err).__name__])[0].rstrip(".")


def read_state_dict(path: str | Path, key: str = "model.init_checkpoint") -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (see :func:`read_checkpoint`)."""
    return read_checkpoint(path, key)["state_dict"]


def checkpoint_file(
    ckpt_path: str | Path | None, key: str = "ckpt_path", model: str | None = None
) -> Path | None:
    """The file ``ckpt_path`` names, checked to be a readable checkpoint of the config's model
    family; None where there is no file to check: no ``ckpt_path``, one of the names the
    Trainer resolves itself (``"last"``, ``"best"``, ...) or a remote URL.

    Args:
        model: the config's ``model.class_path`` (None: not compared). LightningCLI would
            otherwise swap in the checkpoint's class and keep the config's other model
            arguments, and PyTorch then listed missing and unexpected keys.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_checkpoint`; also a checkpoint of
            another model family (named).
    """
    path = _local_checkpoint(ckpt_path)
    if path is None:
        return None
    checkpoint = read_checkpoint(path, key)
    family = checkpoint_family(checkpoint)
    wanted = str(model).rsplit(".", 1)[-1] if model else None
    if wanted is not None and family is not None and family != wanted:
        raise ValueError(
            f"{key}: {path} is a {family} model, the config builds {wanted} "
            f"(model.class_path); give the model config it was trained with (one whose "
            f"class_path is {family})"
        )
    return path


def _local_checkpoint(ckpt_path: str | Path | None) -> Path | None:
    """The local file ``ckpt_path`` names, unread; None as in :func:`checkpoint_file`."""
    if ckpt_path is None:
        return None
    text = str(ckpt_path)
    special = text in LIGHTNING_CKPT_NAMES or text.startswith("registry:") or "://" in text
    return None if special and not Path(text).is_file() else Path(text)


def checkpoint_mismatches(checkpoint: dict, skeleton: Skeleton, input_size: int) -> list[str]:
    """How a checkpoint's record differs from the config: its joints (``checkpoint["pose"]``,
    written by ``PoseEstimator.on_save_checkpoint``) and the crop side it was trained at
    (``datamodule_hyper_parameters["input_size"]``, pixels). What the checkpoint does not
    record is not compared. Empty when it fits."""
    problems = []
    record = (checkpoint.get("pose") or {}).get("skeleton") or {}
    joints = record.get("joints")
    if joints is not None and list(joints) != list(skeleton.joints):
        problems.append(
            f"its model estimates the {len(joints)} joints of skeleton {record.get('name')!r} "
            f"({', '.join(joints)}), the config's data (data.dataset) the {skeleton.num_joints} "
            f"of {skeleton.name!r} ({', '.join(skeleton.joints)}); use the dataset config it "
            "was trained with"
        )
    trained = (checkpoint.get("datamodule_hyper_parameters") or {}).get("input_size")
    if trained is not None and int(trained) != input_size:
        problems.append(
            f"it was trained on {trained} px crops, the config asks for data.input_size="
            f"{input_size}; set --data.input_size={trained}"
        )
    return problems


def checkpoint_family(checkpoint: dict) -> str | None:
    """The class name of the model a checkpoint holds (``DeepPose``, ``HeatmapPose``), as
    LightningCLI records it (``hyper_parameters["_class_path"]``); None where unrecorded."""
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    return str(class_path).rsplit(".", 1)[-1] if class_path else None


def check_checkpoint_fits(
    ckpt_path: str | Path | None, skeleton: Skeleton, input_size: int, key: str = "ckpt_path"
) -> None:
    """Refuse a checkpoint that does not fit the config, before a run starts (a raw tensor-size
    error or, worse, silently wrong predictions otherwise).

    Args:
        ckpt_path: the ``--ckpt_path`` value (nothing is checked where
            :func:`checkpoint_file` finds no file).
        skeleton: the config's data skeleton (``data.skeleton``).
        input_size: the config's ``data.input_size``, pixels.
        key: the config key, for error messages.

    Raises:
        FileNotFoundError, ValueError: an unreadable file (see :func:`read_checkpoint`), one
            with non-finite weights (a diverged fit), or one that differs from the config (see
            :func:`checkpoint_mismatches`).
    """
    path = _local_checkpoint(ckpt_path)
    if path is None:
        return
    checkpoint = read_checkpoint(path, key)
    bad = non_finite_tensors(checkpoint["state_dict"])
    if bad:
        raise ValueError(
            f"{key}: {path} has non-finite weights (NaN or infinity) in {len(bad)} tensors "
            f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): its training diverged; "
            "use an earlier checkpoint"
        )
    problems = checkpoint_mismatches(checkpoint, skeleton, input_size)
    if problems:
        raise ValueError(f"{key}: {path} does not fit the config: {'; and '.join(problems)}")


def select_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Entries under ``prefix`` (e.g. ``"stages.0."``), with the prefix stripped."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_partial_weights(
    module: nn.Module,
    source: str | Path | dict[str, Tensor],
    prefixes: Sequence[str],
    key: str = "model.init_checkpoint",
) -> str:
    """Load ``module``'s weights from the first of ``prefixes`` the checkpoint has, strictly.

    Args:
        module: the part of a model to fill (e.g. a cascade stage, a shared trunk).
        source: the checkpoint's path, or its state dict already read with
            :func:`read_state_dict` (to fill several parts from one read).
        prefixes: where the part may live in the checkpoint's model, in order of preference
            (e.g. ``["stages.0.", "regressor."]``: a cascade's stage 1 or a DeepPose).
        key: the config key that named the file, for error messages.

    Returns:
        The prefix that was loaded.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_state_dict`; also when no prefix has
            weights, or they do not match ``module`` (names the missing and unexpected keys).
    """
    state = source if isinstance(source, dict) else read_state_dict(source, key)
    where = "the checkpoint" if isinstance(source, dict) else str(source)
    for prefix in prefixes:
        part = select_prefix(state, prefix)
        if part:
            try:
                result = module.load_state_dict(part, strict=False)
            except RuntimeError as err:  # a shape mismatch
                raise ValueError(f"{key}: the weights under {prefix!r} in {where}: {err}") from err
            if result.missing_keys or result.unexpected_keys:
                raise ValueError(
                    f"{key}: the weights under {prefix!r} in {where} do not fit "
                    f"{type(module).__name__}: missing {result.missing_keys[:5]}, unexpected "
                    f"{result.unexpected_keys[:5]}"
                )
            return prefix
    roots = sorted({k.split(".", 1)[0] for k in state})
    raise ValueError(f"{key}: {where} has no weights under {list(prefixes)}; its model has {roots}")
