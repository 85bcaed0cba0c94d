"""bench/frozen_share.py: the frozen layers' forward is what the trunk computes up to its last
frozen block (a known answer), and a short run of the script on tiny data reports shares that
agree with its own counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_pose.models import EfficientNetLite0Trunk
from tests.bench import load
from tests.conftest import tiny_args

frozen_share = load("frozen_share")


def test_frozen_forward_is_the_trunks_stride_4_map_when_two_blocks_are_frozen() -> None:
    torch.manual_seed(0)
    trunk = EfficientNetLite0Trunk(pretrained=False, frozen_blocks=2, pyramid_only=True).eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        frozen = frozen_share.frozen_forward(trunk, image)
        stride4 = trunk(trunk.normalise(image), pyramid=True)[0]
    assert frozen.shape == (2, 24, 16, 16)
    torch.testing.assert_close(frozen, stride4, atol=0, rtol=0)
    with pytest.raises(ValueError, match="no frozen layers"):
        frozen_share.frozen_forward(EfficientNetLite0Trunk(pretrained=False), image)


def test_script_on_tiny_data(tiny_root: Path, tmp_path: Path) -> None:
    output = tmp_path / "frozen_share.md"
    overrides = [a for a in tiny_args(tiny_root) if "ResNetTrunk" not in a]
    row = frozen_share.main(
        ["--seconds", "0.3", "--repeats", "1", "--threads", "1", "--precision", "32-true",
         "--data-root", str(tiny_root), "--output", str(output), "--", *overrides,
         "--data.cache_images=false"]
    )  # fmt: skip
    assert row["frozen_blocks"] == 2 and row["input"] == 64
    assert 0 < row["frozen_gflop"] < row["step_gflop"]
    assert row["flop_share"] == pytest.approx(row["frozen_gflop"] / row["step_gflop"])
    # the time share is the measured rates' ratio; 0.3 s timings on a loaded machine cannot
    # promise it below 1 (the FLOP share above is the load-free statement)
    rates = {k: sum(row[k]) / len(row[k]) for k in ("step_rates", "frozen_rates")}
    assert all(r > 0 for k in rates for r in row[k]), rates
    assert row["time_share"] == pytest.approx(rates["step_rates"] / rates["frozen_rates"])
    assert "| heatmap_budget | 64 | 2 | 32-true | 2 |" in output.read_text()
