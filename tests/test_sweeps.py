"""Every W&B sweep builds a command line that the CLI accepts (checked with --print_config)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lightning_pose.cli import main
from lightning_pose.train_cascade import parse

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted(
    p for p in (REPO / "sweeps").glob("*.yaml") if "command" in yaml.safe_load(p.read_text())
)


def sweep_command(path: Path, pick: int) -> tuple[str, list[str]]:
    """The module and arguments a W&B agent would run for the ``pick``-th value of each
    parameter (``${env}`` dropped, ``${args}`` expanded as ``--key=value``)."""
    sweep = yaml.safe_load(path.read_text())
    args = [f"--{k}={v['values'][pick % len(v['values'])]}" for k, v in sweep["parameters"].items()]
    command = sweep["command"]
    assert command[:3] == ["${env}", "python", "-m"] and command[-1] == "${args}"
    return command[3], [str(REPO / a) if a.endswith(".yaml") else a for a in command[4:-1]] + args


def test_there_are_sweeps() -> None:
    assert {p.stem for p in SWEEPS} >= {"deeppose_pooling", "cascade_depth"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
@pytest.mark.parametrize("pick", [0, 1])
def test_sweep_command_parses(path: Path, pick: int, capsys: pytest.CaptureFixture) -> None:
    module, args = sweep_command(path, pick)
    if module == "lightning_pose.train_cascade":
        ns, args = parse(args[1:] if args[0] == "fit" else args)
        assert ns.depth in (1, 2, 3)
        args = ["fit", *args, f"--model.init_args.num_stages={ns.depth}"]
    else:
        assert module == "lightning_pose"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    sweep = yaml.safe_load(path.read_text())
    for key, spec in sweep["parameters"].items():
        if key == "depth":
            continue
        node = printed
        for part in key.split("."):
            node = node[part]
        assert node == spec["values"][pick % len(spec["values"])]
    assert printed["trainer"]["logger"][1]["init_args"]["offline"] is False
