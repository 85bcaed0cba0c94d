"""LatestCheckpoint: ``last.ckpt`` holds the final state of a fit, not the last improvement."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
import yaml

from lightning_pose.callbacks.checkpoint import best_and_last
from lightning_pose.cli import main
from lightning_pose.runtime.checkpoints import AtomicCheckpointIO
from tests.conftest import tiny_args, write_lspet

REPO = Path(__file__).resolve().parents[2]


def test_last_ckpt_is_the_final_step_with_the_dataset_configs_callbacks(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    cli = main(
        [
            "fit",
            "-c",
            str(REPO / "conf" / "lspet.yaml"),
            *tiny_args(tiny_root, max_samples=None),
            "--trainer.devices=1",
            "--trainer.max_steps=7",  # ends between two validations (steps 3 and 6)
            "--trainer.val_check_interval=3",
            "--trainer.limit_val_batches=1",
        ]
    )
    assert cli.trainer.global_step == 7
    # the fit's SIGTERM and Ctrl-C handlers end with it
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    best, last = best_and_last(cli.trainer)
    assert best is not None and best.name.startswith("best-")
    assert last is not None and last.name == "last.ckpt" and last.parent == best.parent
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 7
    assert torch.load(best, map_location="cpu", weights_only=True)["global_step"] in (3, 6)
    # the same weights as the model at the end of the fit
    final = cli.model.state_dict()
    assert all(torch.equal(state["state_dict"][k], v) for k, v in final.items())
    assert sorted(p.name for p in last.parent.iterdir()) == sorted({best.name, "last.ckpt"})


# --- the best-model record survives any kill and resume ------------------------------------
BEST_STEPS = 4  # validations at steps 2 and 4; last.ckpt after every step


class Killed(BaseException):
    """A kill at a checkpoint write: nothing written after it, as SIGKILL (every write is
    atomic, so what a SIGKILL leaves on disk is what was written before it)."""


def every_step_config(tmp_path: Path) -> Path:
    """conf/lspet.yaml with ``LatestCheckpoint(every_n_train_steps=1)`` in the shared trainer
    file it includes, as docs/CLUSTER.md recommends for a cluster."""
    config = yaml.safe_load((REPO / "conf" / "lspet.yaml").read_text())
    config["evaluation"] = str(REPO / "conf" / "shared" / "evaluation.yaml")
    shared = yaml.safe_load((REPO / "conf" / "shared" / "trainer.yaml").read_text())
    for callback in shared["trainer"]["callbacks"]:
        if callback["class_path"].endswith("LatestCheckpoint"):
            callback["init_args"] = {"every_n_train_steps": 1}
    (tmp_path / "trainer.yaml").write_text(yaml.safe_dump(shared))
    config["config"] = "trainer.yaml"  # relative to the file below, as in conf/
    path = tmp_path / "every_step.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def every_step_args(config: Path, root: Path) -> list[str]:
    return [
        "fit",
        "-c",
        str(config),
        f"--data.root={root}",
        "--data.input_size=32",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--model.trunk=lightning_pose.models.ResNetTrunk",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        f"--trainer.max_steps={BEST_STEPS}",
        "--trainer.val_check_interval=2",
        "--trainer.enable_progress_bar=false",
        "--seed_everything=0",
    ]


def best_record(run: Path) -> tuple[str, float, int, list[str]]:
    """From the run's final last.ckpt: the monitored checkpoint's best file name, its score,
    the step that file holds, and every checkpoint file in the folder."""
    folder = run / "checkpoints"
    state = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == BEST_STEPS
    (record,) = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint{")]
    assert record["best_model_path"], f"no best-model record in last.ckpt: {record}"
    best = Path(record["best_model_path"])
    step = torch.load(folder / best.name, map_location="cpu", weights_only=True)["global_step"]
    files = sorted(p.name for p in folder.iterdir())
    return best.name, float(record["best_model_score"]), step, files


def test_the_best_record_survives_a_kill_at_every_checkpoint_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    write_lspet(root / "lspet", 30)
    config = every_step_config(tmp_path)
    writes = []
    save = AtomicCheckpointIO.save_checkpoint

    def counting_save(self, checkpoint, path, storage_options=None):
        if len(writes) == kill_at:
            raise Killed(f"write {kill_at} ({Path(path).name})")
        writes.append(Path(path).name)
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", counting_save)
    kill_at = -1
    (tmp_path / "reference").mkdir()
    monkeypatch.chdir(tmp_path / "reference")
    main(every_step_args(config, root))
    expected = best_record(tmp_path / "reference" / "runs" / "lspet" / "version_0")
    names = list(writes)
    assert names.count("last.ckpt") == BEST_STEPS and len(names) > BEST_STEPS, names

    for k in range(1, len(names)):
        writes.clear()
        kill_at = k
        cwd = tmp_path / f"killed_at_{k}"
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        with pytest.raises(Killed):
            main(every_step_args(config, root))
        kill_at = -1
        main([*every_step_args(config, root), "--ckpt_path", "last"])
        name, score, step, files = best_record(cwd / "runs" / "lspet" / "version_0")
        context = f"killed before write {k} of {names}"
        assert (name, step, files) == (expected[0], expected[2], expected[3]), context
        torch.testing.assert_close(score, expected[1], rtol=1e-5, atol=1e-7, msg=context)
