"""MetricDeclaration: the keys a declaration makes, its direction, its JSON round trip, and
finding the declaration of a logged key."""

from __future__ import annotations

import json

import pytest

from lightning_pose.metrics.declaration import MetricDeclaration, find_declaration

PDJ = MetricDeclaration("pdj", "PDJ", True, (0.05, 0.2), counts="joints", groups="joint")
ERROR = MetricDeclaration("mean_error_px", "mean joint error", False, unit="px", groups="joint")
OKS = MetricDeclaration("oks_ap", "OKS AP", True, logs_count=False, extra_keys=("oks_ap50",))


def test_keys_known_answers() -> None:
    assert PDJ.keys() == ("pdj@0.05", "pdj@0.2")
    assert ERROR.keys() == ("mean_error_px",)
    assert OKS.keys() == ("oks_ap", "oks_ap50")
    assert PDJ.group_keys(["wrist", "neck"]) == (
        "pdj@0.05/wrist",
        "pdj@0.05/neck",
        "pdj@0.2/wrist",
        "pdj@0.2/neck",
    )
    assert OKS.group_keys(["wrist"]) == ()  # no groups declared


@pytest.mark.parametrize(
    ("declaration", "value", "than", "expected"),
    [(PDJ, 0.6, 0.5, True), (PDJ, 0.5, 0.6, False), (PDJ, 0.5, 0.5, False),
     (ERROR, 3.0, 4.0, True), (ERROR, 4.0, 3.0, False), (ERROR, 3.0, 3.0, False)],
)  # fmt: skip
def test_better_follows_the_declared_direction(
    declaration: MetricDeclaration, value: float, than: float, expected: bool
) -> None:
    assert declaration.better(value, than) is expected


@pytest.mark.parametrize("declaration", [PDJ, ERROR, OKS])
def test_json_round_trip(declaration: MetricDeclaration) -> None:
    record = json.loads(json.dumps(declaration.to_dict()))
    assert MetricDeclaration.from_dict(record) == declaration


def test_find_declaration_pooled_group_and_stage_keys_only() -> None:
    declared = [PDJ, ERROR, OKS]
    prefixes = ["val/", "val/stage1/"]
    assert find_declaration("val/pdj@0.2", declared, prefixes) is PDJ
    assert find_declaration("val/pdj@0.2/wrist", declared, prefixes) is PDJ
    assert find_declaration("val/stage1/mean_error_px", declared, prefixes) is ERROR
    assert find_declaration("val/oks_ap50", declared, prefixes) is OKS
    assert find_declaration("val/pdj@0.1", declared, prefixes) is None  # not a threshold
    assert find_declaration("val/loss", declared, prefixes) is None
    assert find_declaration("test/pdj@0.2", declared, prefixes) is None  # another split
    assert find_declaration("val/pdj@0.25", declared, prefixes) is None  # no prefix match
