"""The model and data module exactly as the CLI configures them, with a checkpoint's weights:
what ``export``, ``lightning-pose report errors`` and ``bench/latency.py`` evaluate."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

from lightning_pose.cli.lightning import main as cli_main
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.models.base import PoseEstimator
from lightning_pose.runtime.checkpoints import check_checkpoint_fits, read_state_dict

REPO = Path(__file__).resolve().parents[2]  # lightning_pose/cli/configured.py
LSPET_CONFIG = REPO / "conf" / "lspet.yaml"


def configured_model(
    configs: Sequence[str | Path],
    overrides: Sequence[str] = (),
    ckpt: str | Path | None = None,
    ckpt_key: str = "--ckpt",
) -> tuple[PoseEstimator, PoseDataModule]:
    """The model and data module that ``fit -c CONFIG ... OVERRIDES`` would build (on the CPU,
    no logger; nothing is trained, no data is read), with ``ckpt``'s weights where given.

    Args:
        configs: config files, in order (``-c`` each).
        overrides: further CLI arguments (``--data.root=...``), after the configs.
        ckpt: a checkpoint whose ``state_dict`` fits the configured model; None: the
            configured initialisation.
        ckpt_key: the option that named ``ckpt``, for the error messages.

    Returns:
        The model, in the mode the CLI leaves it (training), and the data module (not set up).

    Raises:
        FileNotFoundError, ValueError: ``ckpt`` is missing, unreadable or was trained for
            another skeleton or input size
            (:func:`lightning_pose.runtime.checkpoints.check_checkpoint_fits`).
        SystemExit: the CLI refused a config or override (jsonargparse's message).
    """
    cli_args = [a for c in configs for a in ("-c", str(c))]
    cli_args += ["--trainer.logger=false", "--trainer.accelerator=cpu", "--trainer.devices=1"]
    with mock.patch.object(sys, "argv", sys.argv[:1]):  # LightningCLI warns of other argv
        cli = cli_main([*cli_args, *overrides], run=False)
    model, datamodule = cli.model, cli.datamodule
    if ckpt is not None:
        check_checkpoint_fits(ckpt, datamodule.skeleton, datamodule.input_size)
        model.load_state_dict(read_state_dict(ckpt, key=ckpt_key))
    return model, datamodule


def lspet_model(
    variant: str | Path,
    overrides: Sequence[str] = (),
    ckpt: str | Path | None = None,
    data_root: str | Path | None = None,
) -> tuple[PoseEstimator, PoseDataModule]:
    """:func:`configured_model` of ``conf/lspet.yaml`` + the model config ``variant``, loading
    in the main process (``data.num_workers=0``), from ``data_root`` (default: as the CLI
    resolves ``data.root``), then ``overrides``; the model in eval mode. Raises as
    :func:`configured_model`."""
    fixed = ["--data.num_workers=0"]
    if data_root is not None:
        fixed.append(f"--data.root={data_root}")
    model, datamodule = configured_model([LSPET_CONFIG, variant], [*fixed, *overrides], ckpt)
    return model.eval(), datamodule
