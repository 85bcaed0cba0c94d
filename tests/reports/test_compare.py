"""``lightning-pose report compare``: the table of same-budget runs from their summary line and
validation ``metrics.csv`` (known answers), and a run whose metrics lack a column."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_pose.reports import compare

HEADER = (
    "epoch,step,val/pdj@0.05,val/pdj@0.1,val/pdj@0.2,val/pckh@0.5,val/pcp@0.5,"
    "val/count/images,val/count/pdj,val/count/pckh,val/count/pcp"
)


def write_run(folder: Path, rows: list[str], extra_header: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("\n".join([HEADER + extra_header, *rows]) + "\n")
    return folder


def test_table_of_two_runs_with_the_last_values_and_the_coarse_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    one = write_run(
        tmp_path / "a",
        ["0,9,0.01,0.02,0.03,0.04,0.05,900,8291,9245,7188",  # an earlier validation
         "0,19,0.1,0.2,0.3,0.4,0.5,900,8291,9245,7188"],
    )  # fmt: skip
    two = write_run(
        tmp_path / "b",
        ["0,19,0.125,0.25,0.375,0.5,0.0625,900,8291,9245,7188,0.05,0.1,0.2"],
        ",val/stage1/pdj@0.05,val/stage1/pdj@0.1,val/stage1/pdj@0.2",
    )
    summary = tmp_path / "summary.tsv"
    summary.write_text(
        f"deeppose\tabc1234\t640\t1201\t95\t{one}\t-c conf/model/deeppose.yaml\n"
        f"tompson\tabc1234\t512\t1199\t97\t{two}\t-c conf/model/tompson.yaml\n"
    )
    text = compare.main([str(summary)])
    assert capsys.readouterr().out == text
    assert text.splitlines() == [
        "| run | commit | steps | fit s | pdj@0.05 | pdj@0.1 | pdj@0.2 | pckh@0.5 | pcp@0.5 "
        "| coarse pdj@0.05 / 0.1 / 0.2 | images / joints (PDJ, PCKh) / limbs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| deeppose | abc1234 | 640 | 1201 | 10.0 | 20.0 | 30.0 | 40.0 | 50.0 |  "
        "| 900 / 8291 / 9245 / 7188 |",
        "| tompson | abc1234 | 512 | 1199 | 12.5 | 25.0 | 37.5 | 50.0 | 6.2 | 5.0 / 10.0 / 20.0 "
        "| 900 / 8291 / 9245 / 7188 |",
    ]


def test_a_run_without_a_metric_is_refused_naming_its_file(tmp_path: Path) -> None:
    run = tmp_path / "a"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,step,val/pdj@0.2\n0,19,0.3\n")
    summary = tmp_path / "summary.tsv"
    summary.write_text(f"deeppose\tabc1234\t640\t1201\t95\t{run}\targs\n")
    with pytest.raises(ValueError, match=r"a/metrics.csv \(run deeppose of .*summary.tsv\)"):
        compare.table(summary)
