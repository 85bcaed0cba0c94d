"""W&B's mode is decided without the network or a login prompt, WANDB_MODE wins, and only
``fit`` starts a W&B run (validate, test, predict keep their other loggers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from lightning_pose.cli import main
from lightning_pose.runtime.wandb_mode import has_api_key, wandb_mode
from tests.conftest import tiny_args

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No WANDB_MODE, no API key in the environment, an empty home (no ~/.netrc)."""
    for key in ("WANDB_MODE", "WANDB_API_KEY", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def never_reached(host: str) -> bool:
    raise AssertionError(f"the network was probed ({host})")


def test_without_an_api_key_runs_are_offline(no_login: Path) -> None:
    assert not has_api_key()
    assert wandb_mode(reachable=never_reached) == "offline"


def test_wandb_mode_wins(no_login: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(reachable=never_reached) is None  # wandb.init reads WANDB_MODE itself


def test_with_a_key_online_only_when_the_server_answers(
    no_login: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_login / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    (no_login / ".netrc").chmod(0o600)
    assert has_api_key()
    assert wandb_mode(reachable=lambda host: host == "api.wandb.ai") is None  # online
    assert wandb_mode(reachable=lambda host: False) == "offline"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert not has_api_key()  # the key is for another host


def cli_args(subcommand: str, tiny_root: Path) -> list[str]:
    return [
        subcommand,
        "-c",
        str(REPO / "conf" / "lspet.yaml"),
        *tiny_args(tiny_root),
    ]


@pytest.mark.parametrize("subcommand", ["validate", "predict"])
def test_evaluation_subcommands_start_no_wandb_run(
    subcommand: str, tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    wandb.finish()  # none left over from an earlier test in this process
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")  # were a run started, it would write files
    cli = main(cli_args(subcommand, tiny_root))
    (logger,) = cli.trainer.loggers
    assert isinstance(logger, CSVLogger)  # the dataset config's other logger, kept
    assert wandb.run is None and not (tmp_path / "runs" / "wandb").exists()


def test_fit_without_a_login_logs_offline(
    no_login: Path, tiny_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(no_login)
    cli = main(cli_args("fit", tiny_root)[1:], run=False)  # no subcommand: as fit, not run
    (wandb_logger,) = [lg for lg in cli.trainer.loggers if isinstance(lg, WandbLogger)]
    assert wandb_logger._wandb_init["mode"] == "offline"


def test_wandb_mode_overrides_an_offline_config(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``offline: true`` would set WANDB_MODE=dryrun itself; WANDB_MODE=disabled wins."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    override = tmp_path / "offline.yaml"
    override.write_text(
        "trainer:\n  logger:\n    - class_path: pytorch_lightning.loggers.WandbLogger\n"
        "      init_args:\n        offline: true\n"
    )
    cli = main([*cli_args("fit", tiny_root)[1:], "-c", str(override)], run=False)
    (wandb_logger,) = cli.trainer.loggers
    assert not wandb_logger._offline and wandb_logger._wandb_init.get("mode") is None
