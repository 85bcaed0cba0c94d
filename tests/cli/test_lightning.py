"""The CLI end to end on tiny data: fit, validate, test, predict, --print_config."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lightning_pose.cli import main
from lightning_pose.data.skeleton import LSP_SKELETON
from tests.conftest import (
    TINY_SAMPLES,
    model_config_stacks,
    stack_args,
    stack_id,
    write_image,
)

REPO = Path(__file__).resolve().parents[2]
DATA_CONFIGS = sorted((REPO / "conf").glob("*.yaml"))
MODEL_CONFIGS = model_config_stacks()

# Small and fast: a ResNet-18 at 64 px unless the model file fixes its own input size.
FAST = [
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    f"--data.max_samples={TINY_SAMPLES}",
    "--data.batch_size=2",
    "--data.num_workers=0",
]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configs' relative paths (runs/, outputs/) land in the test's folder."""
    monkeypatch.chdir(tmp_path)


def run(args: list[str]):
    return main(args)


def expected_model_class(config: Path) -> str:
    """The class_path a config selects: its own, else the CLI's default (DeepPose)."""
    model = yaml.safe_load(config.read_text()).get("model")
    return model["class_path"] if model else "lightning_pose.models.DeepPose"


def assert_fit_produced_a_validation(cli, config: Path) -> None:
    """A fast_dev_run trained one step and validated: finite loss and metrics were logged."""
    module, name = expected_model_class(config).rsplit(".", 1)
    assert type(cli.model) is getattr(importlib.import_module(module), name)
    assert cli.trainer.global_step == 1
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    for key in ("train/loss", "val/loss", "val/pdj@0.2", "val/pcp@0.5"):
        assert key in metrics and np.isfinite(metrics[key]), f"{key} missing: {sorted(metrics)}"
        if key.startswith("val/pdj") or key.startswith("val/pcp"):
            assert 0.0 <= metrics[key] <= 1.0


@pytest.mark.parametrize("config", DATA_CONFIGS, ids=lambda p: p.stem)
def test_fast_dev_run_each_dataset_config(
    config: Path, tiny_root: Path, shared_data: Path, tmp_path: Path
) -> None:
    root = shared_data if config.stem.startswith("coco") else tiny_root  # real COCO images
    cli = run(
        [
            "fit",
            "-c",
            str(config),
            *FAST,
            f"--data.root={root}",
            "--data.input_size=64",
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
            "--model.trunk=lightning_pose.models.ResNetTrunk",
        ]
    )
    assert_fit_produced_a_validation(cli, config)
    assert cli.model.skeleton == cli.datamodule.skeleton  # linked from the data


@pytest.mark.parametrize("stack", MODEL_CONFIGS, ids=stack_id)
def test_fast_dev_run_each_model_config(
    stack: tuple[Path, ...], tiny_root: Path, tmp_path: Path
) -> None:
    config = stack[0]
    cli = run(
        [
            "fit",
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *stack_args(stack),
            *FAST,
            f"--data.root={tiny_root}",
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert_fit_produced_a_validation(cli, config)
    # What CompiledInference compiles: named submodules of this model.
    names = cli.model.inference_modules()
    assert names
    for name in names:
        assert isinstance(cli.model.get_submodule(name), torch.nn.Module)


@pytest.mark.parametrize("stack", [(c,) for c in DATA_CONFIGS] + MODEL_CONFIGS, ids=stack_id)
@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_print_config(
    stack: tuple[Path, ...], subcommand: str, capsys: pytest.CaptureFixture
) -> None:
    config = stack[0]
    base = [] if config.parent.name == "conf" else ["-c", str(REPO / "conf" / "lspet.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        run([subcommand, *base, *stack_args(stack), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == expected_model_class(config)
    readers = ("LSPet", "LSP", "FLIC", "COCOKeypoints")
    assert printed["data"]["dataset"]["class_path"] in [f"lightning_pose.data.{r}" for r in readers]
    assert printed["evaluation"]["pdj_thresholds"] == [0.05, 0.1, 0.2]
    # linked values are not config keys
    assert "skeleton" not in printed["model"]["init_args"]
    assert "evaluation" not in printed["model"]["init_args"]


def printed_config(args: list[str], capsys: pytest.CaptureFixture) -> dict:
    """What ``--print_config`` prints for ``args`` (it exits 0)."""
    with pytest.raises(SystemExit) as exit_info:
        run([*args, "--print_config"])
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def class_names(entries: list[dict]) -> list[str]:
    return [entry["class_path"].rsplit(".", 1)[1] for entry in entries]


SHARED_TRAINER = yaml.safe_load((REPO / "conf" / "shared" / "trainer.yaml").read_text())["trainer"]


@pytest.mark.parametrize("name", ["lsp", "lspet", "flic"])
def test_a_dataset_config_is_the_shared_trainer_and_what_differs(
    name: str, capsys: pytest.CaptureFixture
) -> None:
    """conf/<name>.yaml includes conf/shared/trainer.yaml: the merged config has the shared
    trainer values and callbacks, the dataset's loggers, and its PredictionWriter last."""
    printed = printed_config(["fit", "-c", str(REPO / "conf" / f"{name}.yaml")], capsys)
    trainer = printed["trainer"]
    for key in ("max_epochs", "accelerator", "devices", "precision", "log_every_n_steps"):
        assert trainer[key] == SHARED_TRAINER[key] and trainer[key] is not None, key
    assert trainer["val_check_interval"] == 0.25
    shared = class_names(SHARED_TRAINER["callbacks"])
    assert class_names(trainer["callbacks"]) == [*shared, "PredictionWriter"]
    assert trainer["callbacks"][-1]["init_args"]["output_dir"] == f"outputs/predict/{name}"
    assert trainer["callbacks"][0]["init_args"]["monitor"] == "val/pdj@0.2"
    loggers = dict(zip(class_names(trainer["logger"]), trainer["logger"], strict=True))
    assert loggers["CSVLogger"]["init_args"]["name"] == name
    assert loggers["WandbLogger"]["init_args"]["group"] == name
    assert "config" not in printed  # the include is resolved, not printed


def test_coco_mini_replaces_the_shared_callbacks(capsys: pytest.CaptureFixture) -> None:
    printed = printed_config(["fit", "-c", str(REPO / "conf" / "coco_mini.yaml")], capsys)
    trainer = printed["trainer"]
    assert trainer["max_epochs"] is None and trainer["max_steps"] == 600
    assert trainer["val_check_interval"] is None  # validation after each epoch, not 4 times
    assert (trainer["precision"], trainer["accelerator"]) == ("32-true", "auto")  # shared
    assert class_names(trainer["callbacks"]) == [
        "ModelCheckpoint",
        "LatestCheckpoint",
        "MetricsTableWriter",
        "PredictionWriter",
    ]
    assert trainer["callbacks"][0]["init_args"]["monitor"] == "val/oks_ap"
    assert class_names(trainer["logger"]) == ["CSVLogger"]


def test_model_configs_and_the_command_line_win_over_the_shared_trainer(
    capsys: pytest.CaptureFixture,
) -> None:
    args = [
        "fit",
        *("-c", str(REPO / "conf" / "lspet.yaml")),
        *("-c", str(REPO / "conf" / "model" / "heatmap_budget.yaml")),
        "--trainer.max_steps=7",
        "--trainer.log_every_n_steps=1",
        "--trainer.callbacks.output_dir=mine",
    ]
    trainer = printed_config(args, capsys)["trainer"]
    assert (trainer["precision"], trainer["val_check_interval"]) == ("auto", 1.0)  # the model's
    assert (trainer["max_steps"], trainer["log_every_n_steps"]) == (7, 1)  # the command line's
    assert trainer["max_epochs"] == 100  # the shared file's, given by no later source
    assert trainer["callbacks"][-1]["init_args"]["output_dir"] == "mine"


def test_evaluation_thresholds_reach_the_model(tiny_root: Path, tmp_path: Path) -> None:
    cli = main(
        [
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *FAST,
            f"--data.root={tiny_root}",
            "--data.input_size=64",
            "--model.trunk=lightning_pose.models.ResNetTrunk",
            "--evaluation.pdj_thresholds=[0.3]",
            "--evaluation.pcp_thresholds=[0.25, 0.5]",
        ],
        run=False,
    )
    assert cli.model.evaluation.pdj_thresholds == (0.3,)
    metrics = cli.model.stage_metrics["val"][0]
    assert metrics["pdj"].thresholds == (0.3,) and metrics["pcp"].thresholds == (0.25, 0.5)


@pytest.mark.parametrize(("stages", "factor"), [(2, 2), (1, 1)])
def test_the_cascade_config_gets_its_highres_view_without_a_data_key(
    tiny_root: Path, stages: int, factor: int
) -> None:
    """deeppose_cascade.yaml has no data.highres_factor: the data follows the model's."""
    cascade = REPO / "conf" / "model" / "deeppose_cascade.yaml"
    assert "data" not in yaml.safe_load(cascade.read_text())
    cli = main(
        ["-c", str(REPO / "conf" / "lspet.yaml"), "-c", str(cascade), *FAST,
         f"--data.root={tiny_root}", "--model.trunk=lightning_pose.models.ResNetTrunk",
         f"--model.init_args.num_stages={stages}"],
        run=False,
    )  # fmt: skip
    assert cli.model.image_hr_factor == factor and cli.datamodule.highres_factor == factor


def test_fit_then_predict_folder_writes_npz(tiny_root: Path, tmp_path: Path) -> None:
    common = [
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *FAST,
        f"--data.root={tiny_root}",
        "--data.input_size=64",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    run(
        [
            "fit",
            *common,
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
        ]
    )
    ckpts = sorted(tmp_path.rglob("last.ckpt"))
    assert ckpts, "fit must write last.ckpt"
    # plain types only: the whole checkpoint loads with weights_only=True, and it records what
    # the weights mean (the skeleton and the evaluation protocol)
    checkpoint = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    assert checkpoint["pose"]["skeleton"]["joints"] == list(LSP_SKELETON.joints)
    assert checkpoint["pose"]["evaluation"]["pdj_thresholds"] == [0.05, 0.1, 0.2]
    folder = tmp_path / "unlabelled"
    sizes = [(50, 30), (31, 77), (64, 64)]
    for k, (w, h) in enumerate(sizes):
        write_image(folder / f"frame{k}.png", w, h, seed=k)
    out = tmp_path / "pred"
    run(
        [
            "predict",
            *common,
            f"--data.predict.image_dir={folder}",
            f"--ckpt_path={ckpts[0]}",
            "--trainer.callbacks+=lightning_pose.callbacks.PredictionWriter",
            f"--trainer.callbacks.output_dir={out}",
            "--trainer.callbacks.draw_overlays=true",
        ]
    )
    result = np.load(out / "predictions.npz")
    assert list(result["names"]) == ["frame0.png", "frame1.png", "frame2.png"]
    assert result["keypoints_px"].shape == (3, 14, 2)
    assert np.isfinite(result["keypoints_px"]).all()
    assert sorted(p.name for p in (out / "overlays").iterdir()) == [
        "frame0.png",
        "frame1.png",
        "frame2.png",
    ]
