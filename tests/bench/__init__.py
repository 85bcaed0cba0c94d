"""Tests of the ``bench/`` scripts (``bench/reproduce/`` in ``tests/bench/reproduce/``).

``bench/`` is not a package: :func:`load` imports a script from its path with its folder first
on ``sys.path``, as ``python bench/X.py`` runs it (a profiling script imports its siblings:
``flops`` imports ``throughput``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    """The script ``bench/<name>.py`` (``name`` may name a subfolder: ``reproduce/budget``),
    imported as the module ``bench_<stem>``."""
    path = BENCH / f"{name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
