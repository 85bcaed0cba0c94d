"""A config file's ``config:`` include becomes a ``-c`` of its own, before the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightning_pose.cli.config_includes import included_configs, with_included_configs


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_includes_come_first_resolved_from_the_including_file(tmp_path: Path) -> None:
    base = write(tmp_path / "shared" / "base.yaml", "seed_everything: 1\n")
    trainer = write(tmp_path / "shared" / "trainer.yaml", "config: base.yaml\ntrainer: {}\n")
    dataset = write(tmp_path / "lsp.yaml", "config: shared/trainer.yaml\ndata: {}\n")
    model = write(tmp_path / "model.yaml", "model: {}\n")
    args = ["fit", "-c", str(dataset), "--config", str(model), "--trainer.max_epochs=3"]
    assert with_included_configs(args) == [
        "fit",
        *("-c", str(base), "-c", str(trainer), "-c", str(dataset)),
        *("--config", str(model)),
        "--trainer.max_epochs=3",
    ]
    assert included_configs(dataset) == [base, trainer]
    assert with_included_configs([f"--config={dataset}"]) == [
        *("-c", str(base), "-c", str(trainer)),
        f"--config={dataset}",
    ]


def test_an_absolute_include_is_taken_as_given(tmp_path: Path) -> None:
    shared = write(tmp_path / "elsewhere" / "trainer.yaml", "trainer: {}\n")
    dataset = write(tmp_path / "conf" / "lsp.yaml", f"config: {shared}\n")
    assert included_configs(dataset) == [shared]


@pytest.mark.parametrize(
    "value",
    [
        "{'trainer': {'max_epochs': 3}}",  # a config string, not a file
        "missing.yaml",  # jsonargparse reports it
    ],
)
def test_arguments_without_an_include_are_unchanged(tmp_path: Path, value: str) -> None:
    plain = write(tmp_path / "plain.yaml", "trainer: {max_epochs: 1}\n")
    not_yaml = write(tmp_path / "bad.yaml", "trainer: [unclosed\n")
    args = ["fit", "-c", str(plain), "-c", str(not_yaml), "-c", value]
    assert with_included_configs(args) == args
    assert with_included_configs(["fit", "-c"]) == ["fit", "-c"]  # no value: the parser's error


def test_a_cycle_is_refused_naming_the_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "config: b.yaml\n")
    b = write(tmp_path / "b.yaml", "config: a.yaml\n")
    chain = re.escape(f"{a} -> {b} -> {a}")
    with pytest.raises(ValueError, match=rf"config files include each other: {chain}"):
        with_included_configs(["-c", str(a)])
