"""The notebooks run top to bottom on tiny generated artefacts (code cells executed in order in
one namespace, as a kernel would; figures are matplotlib objects, nothing is shown)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.plots.curves import save_pdj_curves
from lightning_pose.reports.tables import write_results

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def run_notebook(path: Path) -> dict:
    namespace: dict = {}
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}:{cell['id']}", "exec"), namespace)
    return namespace


def test_every_notebook_is_tested() -> None:
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == {
        "explore_data.ipynb",
        "sweep_results.ipynb",
    }


def test_explore_data(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LIGHTNING_POSE_DATA_ROOT", str(tiny_root))
    ns = run_notebook(NOTEBOOKS / "explore_data.ipynb")
    # the generated LSPet: 24 images, every 10th validation; max_samples=16
    assert len(ns["train"]) == 16 and len(ns["val"]) == 2
    assert len([ax for ax in ns["fig"].axes if ax.images]) == 8  # 8 drawn crops
    assert len(ns["visibility"].axes[0].patches) == 2 * 14  # labelled and visible, per joint
    assert 0 <= ns["error"] < 1e-3


def write_sweep(out: Path) -> None:
    """A runner's folder for a depth sweep: two trials with results, one failed."""
    config = {
        "method": "grid",
        "metric": {"name": "val/pdj@0.2", "goal": "maximize"},
        "parameters": {"depth": {"values": [1, 2, 3]}},
    }
    out.mkdir()
    (out / "sweep.yaml").write_text(json.dumps(config))  # JSON is YAML
    thresholds = np.linspace(0, 0.5, 11)
    rows = []
    for depth in (1, 2):
        results = out / f"trial_00{depth}" / "version_0"
        curves = {s: np.clip(thresholds * (2 + s), 0, 1) for s in range(1, depth + 1)}
        save_pdj_curves(results / "val_pdj_curve", thresholds, curves)
        metrics = {"val/pdj@0.2": 0.3 + 0.1 * depth, "val/pckh@0.5": 0.5}
        (results / "val_metrics.json").write_text(json.dumps(metrics))
        (results / "val_metrics.md").write_text(f"| stage | pdj@0.2 |\n| {depth} | 1 |\n")
        row = {"trial": f"trial_00{depth}", "status": "ok", "depth": depth, **metrics}
        rows.append(row | {"results": str(results), "seconds": 1.0})
    failed = out / "trial_003"
    failed.mkdir()
    rows.append(
        {"trial": "trial_003", "status": "failed: exit 1", "depth": 3, "results": str(failed)}
    )
    write_results(out, rows, ["depth"], config)


def test_sweep_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    write_sweep(tmp_path / "sweep")
    monkeypatch.setenv("LIGHTNING_POSE_SWEEP_DIR", str(tmp_path / "sweep"))
    ns = run_notebook(NOTEBOOKS / "sweep_results.ipynb")
    assert [r["status"] for r in ns["rows"]] == ["ok", "ok", "failed: exit 1"]
    assert ns["metric"] == "val/pdj@0.2"
    bars, curves = ns["comparison"].axes
    np.testing.assert_allclose([p.get_width() for p in bars.patches], [40, 50], rtol=0, atol=1e-9)
    assert len(curves.lines) == 2  # the final stage of each successful trial
    assert sorted(ns["curves"]) == ["trial_001", "trial_002"]
    assert [len(ax.lines) for ax in ns["stages"].axes if ax.lines] == [1, 2]  # stages per trial
    assert ns["metrics"]["trial_002"]["val/pdj@0.2"] == pytest.approx(0.5, abs=1e-12)
    assert ns["metrics"]["trial_003"] == {}
