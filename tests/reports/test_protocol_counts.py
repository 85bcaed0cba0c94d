"""``lightning-pose report protocol-counts`` on the real annotation files: the table of
``docs/RESULTS.md`` ("Evaluation protocol") and ``docs/results/HISTORY.md`` ("What each metric
counts"), as recorded at ``db221ed``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_pose.reports import protocol_counts

RECORDED = """\
| dataset, split | rule | images | labelled joints | PDJ: images / joints | PCKh joints | PCP limbs |
|---|---|---:|---:|---:|---:|---:|
| lspet val | labelled (now) | 900 | 11088 | 635 / 8291 | 9245 | 7188 |
| lspet val | visible (before) | 900 | 11088 | 635 / 8291 | 9245 | 7188 |
| lsp test | labelled (now) | 1000 | 14000 | 1000 / 14000 | 14000 | 9998 |
| lsp test | visible (before) | 1000 | 12946 | 800 / 10714 | 12857 | 8736 |
| flic test | labelled (now) | 1016 | 11176 | 1016 / 11176 | 0 | 5080 |
| flic test | visible (before) | 1016 | 11176 | 1016 / 11176 | 0 | 5080 |
"""  # noqa: E501


def test_the_recorded_table(shared_data: Path, capsys: pytest.CaptureFixture) -> None:
    assert protocol_counts.main([str(shared_data)]) == RECORDED
    assert capsys.readouterr().out == RECORDED


def test_a_missing_data_root_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        protocol_counts.main([str(tmp_path / "nowhere")])
