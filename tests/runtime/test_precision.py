"""``trainer.precision: auto`` (lightning_pose/runtime/precision.py): the CPU's bf16 detection,
and the CLI choosing, logging and recording the precision on a tiny real fit."""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch
import yaml

from lightning_pose.cli import main
from lightning_pose.runtime import precision
from lightning_pose.runtime.precision import PrecisionChoice, choose_precision, native_bf16_flag
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]
# torch.cpu.get_capabilities() of the 2-core AMD EPYC (Zen 4) of docs/RESULTS.md, abridged,
# and of an AVX2-only CPU (the other machines this package runs on) and an Intel Sapphire Rapids.
ZEN4 = {"cpu_name": "AMD EPYC", "avx2": True, "avx512_f": True, "avx512_bf16": True,
        "amx_bf16": False, "amx_tile": False, "architecture": "x86_64"}  # fmt: skip
AVX2_ONLY = {"cpu_name": "AMD EPYC", "avx2": True, "avx512_f": False, "avx512_bf16": False,
             "amx_bf16": False, "architecture": "x86_64"}  # fmt: skip
SAPPHIRE_RAPIDS = {"cpu_name": "Intel Xeon Platinum 8480+", "avx512_bf16": True,
                   "amx_bf16": True, "architecture": "x86_64"}  # fmt: skip
ARM64 = {"cpu_name": "Neoverse-V1", "bf16": True, "sve_bf16": True, "architecture": "aarch64"}


@pytest.mark.parametrize(
    "capabilities, flag",
    [(ZEN4, "avx512_bf16"), (AVX2_ONLY, None), (SAPPHIRE_RAPIDS, "amx_bf16"), (ARM64, None),
     ({}, None)],
    ids=["zen4", "avx2-only", "sapphire-rapids", "arm64", "empty"],
)  # fmt: skip
def test_native_bf16_flag(capabilities: dict, flag: str | None) -> None:
    assert native_bf16_flag(MappingProxyType(capabilities)) == flag


def test_choose_precision_on_the_cpu() -> None:
    assert choose_precision("cpu", ZEN4) == PrecisionChoice(
        "bf16-mixed", "CPU has native bf16 (avx512_bf16; AMD EPYC)"
    )
    assert choose_precision("cpu", AVX2_ONLY) == PrecisionChoice(
        "32-true", "CPU has no native bf16 (no amx_bf16 or avx512_bf16; AMD EPYC)"
    )
    assert choose_precision("mps", ZEN4).precision == "32-true"


def test_choose_precision_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    for supported, expected in ((True, "bf16-mixed"), (False, "32-true")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        for accelerator in ("gpu", "cuda", "auto"):
            assert choose_precision(accelerator, AVX2_ONLY).precision == expected
    assert choose_precision("cpu", AVX2_ONLY).precision == "32-true"  # the CPU, not the GPU


def recipe(root: Path) -> list[str]:
    """The budget recipe on LSPet, made tiny: a ResNet-18 trunk at 64 px, 4 images a split."""
    return [
        "-c", str(REPO / "conf" / "lspet.yaml"),
        "-c", str(REPO / "conf" / "model" / "heatmap_budget.yaml"),
        *tiny_args(root),
        "--data.cache_images=false",
    ]  # fmt: skip


def fit_tiny(root: Path, run_dir: Path, *extra: str):
    """One training step of the budget recipe (a ResNet-18 trunk at 64 px); writes the run's
    config.yaml and last.ckpt."""
    return main(
        [
            "fit",
            *recipe(root),
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0",
            f"--trainer.logger.init_args.save_dir={run_dir}",
            f"--trainer.default_root_dir={run_dir}",
            *extra,
        ]
    )  # fmt: skip


@pytest.mark.parametrize("capabilities, expected", [(ZEN4, "bf16-mixed"), (AVX2_ONLY, "32-true")])
def test_budget_recipe_picks_and_records_the_precision(
    capabilities: dict,
    expected: str,
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: MappingProxyType(capabilities))
    with caplog.at_level(logging.INFO):
        cli = fit_tiny(tiny_root, tmp_path / "runs")
    assert cli.trainer.precision == expected
    assert cli.trainer.global_step == 1
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision ")]
    assert lines == [choose_precision("cpu", capabilities).log_line()]
    # the run's config.yaml records the choice, not "auto"
    (config_file,) = (tmp_path / "runs").rglob("config.yaml")
    assert yaml.safe_load(config_file.read_text())["trainer"]["precision"] == expected
    # so does the checkpoint; its weights are fp32 under bf16-mixed too
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["pose"]["compute"] == {
        "precision": expected,
        "accelerator": "cpu",
        "cpu": "AMD EPYC",
        "cpu_native_bf16": native_bf16_flag(MappingProxyType(capabilities)),
        "cuda_device": None,
    }
    dtypes = {t.dtype for t in checkpoint["state_dict"].values() if t.is_floating_point()}
    assert dtypes == {torch.float32}
    # validate and predict through the recipe (whose precision is auto), as the main job
    # does: fp32 whatever fit picked, said in the log and in val_metrics.md
    caplog.clear()
    with caplog.at_level(logging.INFO):
        validated = main(
            [
                "validate",
                *recipe(tiny_root),
                "--trainer.limit_val_batches=1",
                "--trainer.logger=false",
                f"--trainer.default_root_dir={tmp_path / 'validate'}",
                f"--ckpt_path={ckpt}",
            ]
        )  # fmt: skip
    assert validated.trainer.precision == "32-true"
    assert [r.getMessage() for r in caplog.records if "precision" in r.getMessage()] == [
        "evaluation precision 32-true: validate runs in fp32; trainer.precision: auto picks "
        "bf16 for training speed only (ask for another with --trainer.precision, e.g. bf16-mixed)"
    ]
    (table,) = (tmp_path / "validate").rglob("val_metrics.md")
    assert "; evaluated in precision 32-true\n" in table.read_text().splitlines(True)[0]
    assert torch.isfinite(torch.tensor(float(validated.trainer.callback_metrics["val/loss"])))
    predicted = main(
        [
            "predict",
            *recipe(tiny_root),
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path / 'predict'}",
            f"--trainer.callbacks.output_dir={tmp_path / 'predict'}",
            f"--ckpt_path={ckpt}",
        ]
    )
    assert predicted.trainer.precision == "32-true"
    result = np.load(tmp_path / "predict" / "predictions.npz")
    assert result["keypoints_px"].dtype == np.float32 and result["scores"].dtype == np.float32
    assert result["keypoints_px"].shape == (2, 14, 2)  # the 2 validation images of 24
    assert np.isfinite(result["keypoints_px"]).all()


def test_explicit_precision_wins_over_auto(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: MappingProxyType(ZEN4))
    cli = main(
        [
            *recipe(tiny_root),
            "--trainer.precision=32-true",
            "--trainer.logger=false",
        ],
        run=False,
    )  # fmt: skip
    assert cli.trainer.precision == "32-true"
    assert cli.config.trainer.precision == "32-true"


def test_evaluation_precision_is_fp32_for_auto_and_keeps_an_explicit_value() -> None:
    """``auto`` is a training speed lever: fp32 at evaluation; a precision the command names
    is the user's choice."""
    for subcommand in precision.EVALUATION_SUBCOMMANDS:
        choice = precision.evaluation_precision("auto", subcommand)
        assert choice.precision == "32-true"
        assert choice.reason.startswith(f"{subcommand} runs in fp32")
        for given in ("bf16-mixed", "32-true", "16-mixed"):
            assert precision.evaluation_precision(given, subcommand) == PrecisionChoice(
                given, f"{subcommand}: trainer.precision as given"
            )


def test_auto_is_the_budget_recipes_only() -> None:
    """The budget recipes (the heat-map one and the SimCC head on it) ask for ``auto``; the
    dataset configs (and so every other model config, none of which sets it) keep fp32, whose
    accuracy is the one measured."""
    budget_recipes = {"heatmap_budget", "simcc_budget"}
    for name in budget_recipes:
        recipe = yaml.safe_load((REPO / "conf" / "model" / f"{name}.yaml").read_text())
        assert recipe["trainer"]["precision"] == precision.AUTO, name
    shared = yaml.safe_load((REPO / "conf" / "shared" / "trainer.yaml").read_text())
    assert shared["trainer"]["precision"] == "32-true"  # what every dataset config includes
    for config in sorted((REPO / "conf").glob("*.yaml")):
        assert "precision" not in yaml.safe_load(config.read_text())["trainer"], config
    for config in sorted((REPO / "conf" / "model").glob("*.yaml")):
        if config.stem not in budget_recipes:
            assert "precision" not in (yaml.safe_load(config.read_text()).get("trainer") or {})


def test_precision_rejects_unknown_values(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["-c", str(REPO / "conf" / "lspet.yaml"), "--trainer.precision=automatic"], run=False)
    assert "trainer.precision" in capsys.readouterr().err


def test_validation_inside_a_bf16_fit_runs_in_fp32(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validation that fit runs between training steps scores in fp32 under a bf16-mixed
    fit: its logged values equal a standalone fp32 ``validate`` of the same weights, and differ
    from a ``validate`` the user asks to run in bf16 (the control that shows the comparison can
    fail). The best checkpoint and val_metrics.md are chosen and written from fp32 scores."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: MappingProxyType(ZEN4))
    # validation after the one step: the weights it scores are last.ckpt's
    fit = fit_tiny(tiny_root, tmp_path / "runs", "--trainer.val_check_interval=1")
    assert fit.trainer.precision == "bf16-mixed"
    in_fit = {k: float(v) for k, v in fit.trainer.callback_metrics.items() if k.startswith("val/")}
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    (table,) = (tmp_path / "runs").rglob("val_metrics.md")
    header = table.read_text().splitlines()[0]
    assert header.endswith("; evaluated in precision 32-true (training in bf16-mixed)")

    def validate(*extra: str) -> dict[str, float]:
        cli = main(
            ["validate", *recipe(tiny_root), "--trainer.limit_val_batches=1",
             "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path / 'v'}",
             f"--ckpt_path={ckpt}", *extra]
        )  # fmt: skip
        return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k in in_fit}

    fp32 = validate()
    assert sorted(fp32) == sorted(in_fit) and "val/loss" in fp32
    for key, value in in_fit.items():
        assert value == pytest.approx(fp32[key], rel=1e-5, abs=1e-7), key
    bf16 = validate("--trainer.precision=bf16-mixed")
    assert bf16["val/loss"] != pytest.approx(fp32["val/loss"], rel=1e-5)
