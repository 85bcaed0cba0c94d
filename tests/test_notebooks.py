"""The notebooks run top to bottom (code cells executed in order, matplotlib off-screen)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LIGHTNING_POSE_DATA_ROOT", str(shared_data))
    cells = json.loads(path.read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}:{cell['id']}", "exec"), namespace)
    import matplotlib.pyplot as plt

    # What the exploration notebook produced: 16 training samples, 8 drawn crops, and the box
    # codec's round trip back to the labels.
    assert len(namespace["train"]) == 16 and len(namespace["val"]) == 16
    assert len(namespace["fig"].axes) >= 1
    assert 0 <= namespace["error"] < 1e-3
    assert plt.get_fignums(), "the notebook drew no figure"
    plt.close("all")
