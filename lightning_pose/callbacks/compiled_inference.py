"""Inference through ``torch.compile`` (TorchInductor) with the weights frozen into the graph:
the batch-1 latency lever of ``docs/RESULTS.md`` ("Predict latency")."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn


def compile_inference_modules(
    model: nn.Module, freezing: bool = True, dynamic: bool | None = False
) -> Callable[[], None]:
    """Replace the ``forward`` of each network ``model.inference_modules()`` names by its
    ``torch.compile`` (TorchInductor), in place; returns the function that puts the eager
    ``forward`` methods back.

    With ``freezing`` (Inductor's ``freezing`` option) the parameters and buffers are folded
    into the compiled graph as constants when it is compiled, under ``torch.no_grad`` or
    ``torch.inference_mode``: batch norm is folded into the convolutions and the weights are
    pre-packed for oneDNN. The graph then keeps the weights it was compiled with, so compile
    only a model whose weights no longer change (predict, test, a standalone validate), and
    put the eager methods back before they do. With grad enabled the same compiled code runs
    without freezing.

    Compilation happens at the first call of each network, and again for every new input
    shape when ``dynamic`` is False (e.g. the smaller last batch of a predict): tens of
    seconds each on a 2-core CPU (a C++ compiler must be installed); later calls reuse it.

    Args:
        model: a :class:`~lightning_pose.models.base.PoseEstimator` (anything with
            ``inference_modules() -> list[str]`` of ``get_submodule`` paths).
        freezing: fold the weights into the graph (see above).
        dynamic: ``torch.compile``'s ``dynamic`` (False: one graph per input shape).

    Returns:
        undo: restores the eager ``forward`` of every compiled network (idempotent).

    Raises:
        ValueError: ``model`` names no network to compile, or a name that is not one of its
            submodules.
    """
    names = model.inference_modules() if hasattr(model, "inference_modules") else []
    if not names:
        raise ValueError(
            f"CompiledInference: {type(model).__name__} names no network to compile "
            "(PoseEstimator.inference_modules() is empty)"
        )
    try:
        modules = [model.get_submodule(name) for name in names]
    except AttributeError as err:
        raise ValueError(
            f"CompiledInference: {type(model).__name__}.inference_modules() names {names}, "
            f"not all of them submodules: {err}"
        ) from err
    compiled: list[nn.Module] = []
    for module in modules:
        if "forward" in vars(module):
            continue  # already compiled (or patched by someone else): leave it
        module.forward = _frozen_compile(module.forward, freezing, dynamic)
        compiled.append(module)

    def undo() -> None:
        while compiled:
            del compiled.pop().forward  # the instance attribute: back to the class's method

    return undo


def _frozen_compile(
    forward: Callable[..., Any], freezing: bool, dynamic: bool | None
) -> Callable[..., Any]:
    """``torch.compile(forward)``, compiled (at its calls) with Inductor's ``freezing`` set.

    ``torch.compile(options={"freezing": True})`` does not freeze (torch 2.14: the weights
    stay graph inputs; ``tests/callbacks/test_compiled_inference.py`` checks it does here),
    so the global setting is patched around every call, when Inductor compiles."""
    from torch._inductor import config as inductor_config  # imported on use: slow to import

    compiled = torch.compile(forward, dynamic=dynamic)

    @functools.wraps(forward)
    def call(*args: Any, **kwargs: Any) -> Any:
        with inductor_config.patch(freezing=freezing):
            return compiled(*args, **kwargs)

    return call


class CompiledInference(pl.Callback):
    """Run ``predict``, ``test`` and a standalone ``validate`` through the model's networks
    compiled by :func:`compile_inference_modules` (TorchInductor, weights frozen into the
    graph); the eager networks are put back at the end (and on an exception).

    Never during ``fit``: its validations see weights that change between them, which a
    frozen graph would not. The estimates agree with eager ones to float rounding (about 1e-7
    of the heat-maps; ``tests/callbacks/test_compiled_inference.py``). On the 2-core CPU of
    ``docs/RESULTS.md`` the budget heat-map model's batch-1 predict goes from 31 to 20 ms per
    image (channels-last, decode included;
    ``docs/results/latency_heatmap_budget_compiled.md``), after a compilation of 25-50 s per
    input shape: worth it for a predict over many images, not for a handful. Usage::

        python -m lightning_pose predict -c conf/lspet.yaml -c conf/model/heatmap_budget.yaml \\
            --ckpt_path best.ckpt --data.predict.image_dir photos/ --data.batch_size=1 \\
            --trainer.callbacks+=lightning_pose.callbacks.ChannelsLast \\
            --trainer.callbacks+=lightning_pose.callbacks.CompiledInference

    Args:
        freezing, dynamic: see :func:`compile_inference_modules`.
    """

    def __init__(self, freezing: bool = True, dynamic: bool | None = False) -> None:
        self.freezing = freezing
        self.dynamic = dynamic
        self._undo: Callable[[], None] | None = None

    def _start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" or self._undo is not None:
            return
        self._undo = compile_inference_modules(pl_module, self.freezing, self.dynamic)

    def _end(self, *args) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer, pl_module)

    on_predict_end = on_test_end = on_validation_end = _end

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._end()
