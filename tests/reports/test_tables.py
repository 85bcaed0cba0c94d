"""Reports read from run folders (:mod:`lightning_pose.reports.tables`): the declarations and
per-image scores a run recorded, comparison tables with bootstrap intervals, a sweep's results
table (columns from the declarations, units, intervals, seeds pooled)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.callbacks.metrics_table import format_value
from lightning_pose.metrics.declaration import DECLARATIONS_FILE
from lightning_pose.metrics.intervals import paired_difference_interval, ratio_interval
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.reports.tables import (
    comparison_table,
    pool_seeds,
    read_declarations,
    read_per_image,
    result_keys,
    write_results,
)

# --- a run's declarations and per-image scores ----------------------------------------------


def write_declarations(folder) -> None:
    """What MetricsTableWriter records beside a run's per-image file: the LSP protocol's
    declarations with the mean joint error."""
    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    record = {"stages": 1, "declarations": [d.to_dict() for d in protocol.declarations()]}
    (folder / DECLARATIONS_FILE).write_text(json.dumps(record))


def write_scores(path, index, values, counts, limb=None) -> None:
    write_declarations(path.parent)
    header = "index,pdj@0.2,count/pdj,mean_error_px,count/mean_error_px"
    header += ",pdj@0.2/limb_joints,count/pdj/limb_joints" if limb is not None else ""
    rows = [header]
    for i, (v, c) in enumerate(zip(values, counts, strict=True)):
        row = f"{index[i]},{'' if c == 0 else v},{c},{10 + v},{c}"
        row += f",{limb[0][i]},{limb[1][i]}" if limb is not None else ""
        rows.append(row)
    path.write_text("\n".join(rows) + "\n")


def test_read_declarations_round_trip_and_a_folder_without(tmp_path: Path) -> None:
    write_declarations(tmp_path)
    declarations, stages = read_declarations(tmp_path)
    protocol = EvaluationProtocol(extra_metrics=["lightning_pose.metrics.MeanJointError"])
    assert declarations == protocol.declarations() and stages == 1
    assert read_declarations(tmp_path / "elsewhere") == ([], 1)


def test_read_per_image_pairs_each_key_with_its_count(tmp_path) -> None:
    path = tmp_path / "per_image_val.csv"
    write_scores(path, [3, 7, 9], [0.5, 0.0, 0.25], [4, 0, 8], limb=([1.0, 0.0, 0.5], [2, 0, 6]))
    scores = read_per_image(path)
    assert scores.index.tolist() == [3, 7, 9]
    sums, counts = scores.sums("pdj@0.2")
    assert sums.tolist() == [2.0, 0.0, 2.0] and counts.tolist() == [4, 0, 8]
    sums, counts = scores.sums("pdj@0.2/limb_joints")  # its own count column
    assert sums.tolist() == [2.0, 0.0, 3.0] and counts.tolist() == [2, 0, 6]
    with pytest.raises(KeyError, match="no per-image column 'pckh@0.5'"):
        scores.sums("pckh@0.5")
    (tmp_path / "bad.csv").write_text("index,pdj@0.2\n1,0.5\n")
    with pytest.raises(ValueError, match="'pdj@0.2' has no count column 'count/pdj'"):
        read_per_image(tmp_path / "bad.csv")
    (tmp_path / "odd.csv").write_text("index,oks_like@0.5,count/oks_like\n1,0.5,2\n")
    with pytest.raises(ValueError, match="'oks_like@0.5' is no declared metric's"):
        read_per_image(tmp_path / "odd.csv")
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "per_image_val.csv").write_text(path.read_text())
    with pytest.raises(ValueError, match="no metric_declarations.json beside it"):
        read_per_image(tmp_path / "alone" / "per_image_val.csv")
    assert scores.units == {"pdj@0.2": "fraction", "mean_error_px": "px",
                            "pdj@0.2/limb_joints": "fraction"}  # fmt: skip


def test_comparison_table_states_values_differences_and_verdicts(tmp_path) -> None:
    rng = np.random.default_rng(0)
    counts = np.full(400, 14)
    hits_a = rng.binomial(14, 0.3, size=400)
    hits_b = np.minimum(hits_a + (rng.random(400) < 0.5) * 2, 14)  # clearly better
    index = np.arange(400) * 10 + 9
    write_scores(tmp_path / "a.csv", index, hits_a / 14, counts)
    write_scores(tmp_path / "b.csv", index, hits_b / 14, counts)
    runs = {"a": read_per_image(tmp_path / "a.csv"), "b": read_per_image(tmp_path / "b.csv")}
    table = comparison_table(runs, ["pdj@0.2", "mean_error_px"], baseline="a", resamples=999)
    a = ratio_interval(hits_a, counts, resamples=999)
    assert f"| a | {a.percent()} |" in table
    difference = paired_difference_interval(hits_b, counts, hits_a, counts, resamples=999)
    assert f"| b | {difference.percent_difference()} **effect** |" in table
    assert "400 evaluated samples" in table
    # the mean error is in pixels (here 10 + the fraction: b - a = the PDJ difference / 100)
    assert "| +0.07 [+0.06, +0.08] **effect** |" in table
    write_scores(tmp_path / "c.csv", index[::-1], hits_a / 14, counts)
    with pytest.raises(ValueError, match="different samples"):
        comparison_table(runs | {"c": read_per_image(tmp_path / "c.csv")}, ["pdj@0.2"])
    with pytest.raises(ValueError, match="baseline 'z' is not one of"):
        comparison_table(runs, ["pdj@0.2"], baseline="z")


def test_pool_seeds_adds_each_samples_sums_and_counts(tmp_path) -> None:
    paths = [tmp_path / f"seed{s}" / "per_image_val.csv" for s in (0, 1)]
    for path in paths:
        path.parent.mkdir()
    write_scores(paths[0], [3, 7, 9], [0.5, 0.0, 0.25], [4, 0, 8])
    write_scores(paths[1], [3, 7, 9], [1.0, 0.5, 0.0], [4, 2, 8])
    pooled = pool_seeds([read_per_image(p) for p in paths])
    sums, counts = pooled.sums("pdj@0.2")
    assert sums.tolist() == [6.0, 1.0, 2.0] and counts.tolist() == [8, 2, 16]
    assert pooled.values["pdj@0.2"].tolist() == [0.75, 0.5, 0.125]
    # the pooled ratio is the seeds' hits over their counts: (2+0+2 + 4+1+0) / (12 + 14)
    assert ratio_interval(sums, counts).estimate == pytest.approx(9 / 26)
    write_scores(tmp_path / "other.csv", [3, 7, 8], [0.5, 0.0, 0.25], [4, 0, 8])
    with pytest.raises(ValueError, match="different samples"):
        pool_seeds([read_per_image(paths[0]), read_per_image(tmp_path / "other.csv")])
    with pytest.raises(ValueError, match="no runs"):
        pool_seeds([])


# --- a sweep's results table -----------------------------------------------------------------


MEAN_ERROR = ("lightning_pose.metrics.MeanJointError",)


def test_result_keys_from_the_declarations() -> None:
    """Every declared metric's pooled keys, then each stage's keys of the sweep metric's
    metric: PDJ for ``val/pdj@0.2`` (the table as before), the mean error for its key."""
    declared = EvaluationProtocol(pdj_thresholds=(0.1, 0.2), extra_metrics=MEAN_ERROR)
    declarations = declared.declarations()
    pooled = ["val/pdj@0.1", "val/pdj@0.2", "val/pckh@0.5", "val/pcp@0.5"]
    pooled += ["val/pck_bbox@0.05", "val/pck_bbox@0.1", "val/pck_bbox@0.2"]
    pooled += ["val/oks_ap", "val/oks_ap50", "val/oks_ap75", "val/oks_ar", "val/mean_error_px"]
    assert result_keys(declarations, 1, "val/pdj@0.2") == pooled
    assert result_keys(declarations, 2, "val/pdj@0.2") == pooled + [
        "val/stage1/pdj@0.1",
        "val/stage1/pdj@0.2",
        "val/stage2/pdj@0.1",
        "val/stage2/pdj@0.2",
    ]
    assert result_keys(declarations, 2, "val/mean_error_px")[-2:] == [
        "val/stage1/mean_error_px",
        "val/stage2/mean_error_px",
    ]
    assert result_keys([], 2, "val/pdj@0.2") == []  # a trial without declarations


def test_results_table_units_and_a_goal_against_the_declared_direction(tmp_path: Path) -> None:
    results = tmp_path / "trial_001" / "version_0"
    results.mkdir(parents=True)
    declarations = EvaluationProtocol(extra_metrics=MEAN_ERROR).declarations()
    record = {"stages": 1, "declarations": [d.to_dict() for d in declarations]}
    (results / "metric_declarations.json").write_text(json.dumps(record))
    config = {"metric": {"name": "val/mean_error_px", "goal": "maximize"}, "parameters": {}}
    row = {"trial": "trial_001", "status": "ok", "seconds": 1.0, "results": str(results)}
    row |= {"val/mean_error_px": 12.25, "val/pdj@0.2": 0.5}
    write_results(tmp_path, [row], [], config)
    lines = (tmp_path / "results.md").read_text().splitlines()
    assert lines[0] == "| trial | status | val/mean_error_px | val/pdj@0.2 | seconds | results |"
    assert lines[2] == f"| trial_001 | ok | 12.2 | 50.0 | 1.0 | {results} |"
    assert lines[-1] == (
        "warning: the sweep's metric.goal is maximize, but mean joint error "
        "(val/mean_error_px) declares lower is better."
    )


def test_results_state_each_trials_interval_and_its_difference_to_the_first(
    tmp_path: Path,
) -> None:
    """With every trial's per_image_val.csv, results.md gives the sweep metric's bootstrap
    interval per trial and the paired difference to trial 1; without one it says why."""
    rng = np.random.default_rng(0)
    counts = np.full(300, 14)
    hits = [rng.binomial(14, 0.3, size=300)]
    hits.append(np.minimum(hits[0] + 2 * (rng.random(300) < 0.5), 14))  # trial 2 better
    config = {"metric": {"name": "val/pdj@0.2", "goal": "maximize"}, "parameters": {}}
    rows = []
    for t, h in enumerate(hits, 1):
        results = tmp_path / f"trial_00{t}"
        results.mkdir()
        write_scores(results / "per_image_val.csv", np.arange(300), h / 14, counts)
        rows.append({"trial": f"trial_00{t}", "status": "ok", "seconds": 1.0,
                     "results": str(results), "val/pdj@0.2": h.sum() / counts.sum()})  # fmt: skip
    write_results(tmp_path, rows, [], config)
    text = (tmp_path / "results.md").read_text()
    assert f"| trial_001 | {ratio_interval(hits[0], counts).percent()} |" in text
    difference = paired_difference_interval(hits[1], counts, hits[0], counts)
    assert f"| trial_002 | {difference.percent_difference()} **effect** |" in text
    assert text.rstrip().endswith("best (maximize val/pdj@0.2): trial_002")

    (tmp_path / "trial_002" / "per_image_val.csv").unlink()
    write_results(tmp_path, rows, [], config)
    text = (tmp_path / "results.md").read_text()
    assert "No intervals: no per_image_val.csv for trial_002" in text


def test_a_seeded_sweep_pools_each_settings_seeds(tmp_path: Path) -> None:
    """A ``seed_everything`` parameter: results.md gives each setting's seeds and their range,
    then the setting's pooled interval and its paired difference to the first setting."""
    rng = np.random.default_rng(1)
    counts = np.full(200, 14)
    config = {"metric": {"name": "val/pdj@0.2", "goal": "maximize"}}
    parameters = ["model.init_args.pooling", "seed_everything"]
    hits: dict[str, list[np.ndarray]] = {"max": [], "avg": []}
    rows = []
    for t, (pooling, seed) in enumerate([(p, s) for p in ("max", "avg") for s in (0, 1, 2)], 1):
        p = 0.3 if pooling == "max" else 0.4
        h = rng.binomial(14, p, size=200)
        hits[pooling].append(h)
        results = tmp_path / f"trial_{t:03d}"
        results.mkdir()
        write_scores(results / "per_image_val.csv", np.arange(200), h / 14, counts)
        rows.append({"trial": results.name, "status": "ok", "seconds": 1.0,
                     "results": str(results), "model.init_args.pooling": pooling,
                     "seed_everything": seed, "val/pdj@0.2": h.sum() / counts.sum()})  # fmt: skip
    write_results(tmp_path, rows, parameters, config)
    text = (tmp_path / "results.md").read_text()
    each = ", ".join(format_value(h.sum() / counts.sum()) for h in hits["max"])
    assert f"| pooling=max | 3 | {each} |" in text
    pooled = {k: np.sum(v, axis=0) for k, v in hits.items()}
    assert f"| pooling=max | {ratio_interval(pooled['max'], 3 * counts).percent()} |" in text
    gain = paired_difference_interval(pooled["avg"], 3 * counts, pooled["max"], 3 * counts)
    assert gain.low > 0
    assert f"| pooling=avg | {gain.percent_difference()} **effect** |" in text
