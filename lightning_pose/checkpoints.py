"""Loading weights from a checkpoint into part of a model (cascade stages, detection
pre-training), safely: ``torch.load(weights_only=True)`` unpickles tensors and plain
containers only, never arbitrary objects.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn


def read_state_dict(path: str | Path, key: str = "model.init_checkpoint") -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, read with ``weights_only=True``.

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
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"{key}: {path} cannot be read as a checkpoint with weights_only=True "
            f"(expected a Lightning .ckpt of tensors and plain values): {err}"
        ) from err
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ValueError(f"{key}: {path} has no 'state_dict': not a Lightning checkpoint")
    return checkpoint["state_dict"]


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
