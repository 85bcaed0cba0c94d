"""A one-node SLURM for the session (``slurm/one_node.sh``), a fresh clone of the repository
that submits the project's own ``slurm/*.sbatch`` to it, and tiny generated data. Skipped with
the reason where SLURM or root is missing, failed instead where ``LIGHTNING_POSE_REQUIRE_SLURM``
is set (``.ci/run``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_lspet
from tests.slurm.cluster import REQUIRE_ENV, OneNodeSlurm, fresh_clone, unavailable


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneNodeSlurm]:
    why = unavailable()
    if why is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{why}; {REQUIRE_ENV} is set")
        pytest.skip(why)
    cluster = OneNodeSlurm(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this work (``tests.slurm.cluster.fresh_clone``) with generated LSPet
    data (30 images) in ``data/`` beside it."""
    base = tmp_path_factory.mktemp("clone")
    write_lspet(base / "data" / "lspet", 30)
    return fresh_clone(base / "repo")
