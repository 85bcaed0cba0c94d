"""CompiledInference: predict through torch.compile with frozen weights gives the eager
estimates, really runs the compiled graph, and leaves the eager model behind."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from lightning_pose.callbacks.compiled_inference import (
    CompiledInference,
    compile_inference_modules,
)
from lightning_pose.cli import main
from tests.conftest import tiny_args, write_image

REPO = Path(__file__).resolve().parents[2]


class TwoNets(nn.Module):
    """A stand-in estimator: a conv-bn network it names for compilation, and one it does not."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.other = nn.Conv2d(3, 4, 1)
        self.names = names

    def inference_modules(self) -> list[str]:
        return self.names


def test_frozen_graph_matches_eager_keeps_its_weights_and_undoes() -> None:
    torch.manual_seed(0)
    model = TwoNets(["net"]).eval()
    x = torch.rand(2, 3, 8, 8)
    with torch.inference_mode():
        eager = model.net(x)
        undo = compile_inference_modules(model)
        assert "forward" in vars(model.net) and "forward" not in vars(model.other)
        compiled = model.net(x)
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
        model.net[0].weight.mul_(2.0)  # the frozen graph holds the weights it compiled with
        torch.testing.assert_close(model.net(x), eager, rtol=1e-5, atol=1e-6)
        undo()
        assert "forward" not in vars(model.net)
        assert not torch.allclose(model.net(x), eager)  # eager again: the new weights count
    undo()  # idempotent


def test_nothing_to_compile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="TwoNets names no network to compile"):
        compile_inference_modules(TwoNets([]))
    with pytest.raises(ValueError, match=r"names \['nope'\], not all of them submodules"):
        compile_inference_modules(TwoNets(["nope"]))


def test_predict_with_compiled_inference_gives_the_eager_keypoints(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real predict (DeepPose on a ResNet-18, 64 px, batches of 2 and 1: two compiled
    shapes) with and without the callback."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "frames"
    for k in range(3):
        write_image(folder / f"f{k}.jpg", 40 + 10 * k, 30, seed=k)
    common = ["-c", str(REPO / "conf" / "lspet.yaml"), *tiny_args(tiny_root)]
    common += ["--trainer.devices=1", f"--data.predict.image_dir={folder}", "--seed_everything=3"]
    calls = []
    real_compile = torch.compile

    def counting_compile(fn, **kwargs):
        compiled = real_compile(fn, **kwargs)

        def call(*args):
            calls.append(args[0].shape[0])
            return compiled(*args)

        return call

    results = {}
    for name, extra in (
        ("eager", []),
        ("compiled", ["--trainer.callbacks+=lightning_pose.callbacks.CompiledInference"]),
    ):
        out = tmp_path / name
        with monkeypatch.context() as patch:
            patch.setattr(torch, "compile", counting_compile)
            cli = main(["predict", *common, f"--trainer.callbacks.output_dir={out}", *extra])
        results[name] = np.load(out / "predictions.npz")
        assert "forward" not in vars(cli.model.trunk)  # eager again after predict
    assert calls == [2, 1]  # every batch went through the compiled trunk
    assert list(results["compiled"]["names"]) == ["f0.jpg", "f1.jpg", "f2.jpg"]
    np.testing.assert_allclose(
        results["compiled"]["keypoints_px"], results["eager"]["keypoints_px"], atol=1e-3, rtol=0
    )


def test_callback_compiles_outside_fit_only_and_undoes_on_exception() -> None:
    model = TwoNets(["net"])
    callback = CompiledInference()
    fitting = SimpleNamespace(state=SimpleNamespace(fn="fit"))
    callback.on_validation_start(fitting, model)  # fit's validations see changing weights
    assert "forward" not in vars(model.net)
    validating = SimpleNamespace(state=SimpleNamespace(fn="validate"))
    callback.on_validation_start(validating, model)
    assert "forward" in vars(model.net)
    callback.on_exception(validating, model, RuntimeError("interrupted"))
    assert "forward" not in vars(model.net)
    callback.on_predict_start(SimpleNamespace(state=SimpleNamespace(fn="predict")), model)
    callback.on_predict_end(None, model)
    assert "forward" not in vars(model.net)
