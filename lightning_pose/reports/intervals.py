"""``lightning-pose report intervals``: the markdown table of runs evaluated on the same
images, each metric with its 95 % bootstrap interval over images and each run's paired
difference to a baseline (:func:`lightning_pose.reports.tables.comparison_table`).

    lightning-pose report intervals fp32=RUN_A/per_image_val.csv \
        bf16=RUN_B/per_image_val.csv --baseline fp32 \
        [--keys pdj@0.2/limb_joints pdj@0.2 pckh@0.5 pcp@0.5 mean_error_px] [--resamples 9999]

A label given several files, comma-separated (``s4=seed0/per_image_val.csv,seed1/...``), is
one setting trained with several seeds, pooled (:func:`lightning_pose.reports.tables.
pool_seeds`): each image's scores summed over the seeds, so the interval covers the images and
the seeds' mean, not the spread between seeds (report that beside). A multi-stage model's
earlier stages are in ``per_image_val_stage<s>.csv`` beside its ``per_image_val.csv``.

A run's ``per_image_val.csv`` comes from its validation with
``--trainer.callbacks+=lightning_pose.callbacks.PerImageScoresWriter`` (``fit`` writes it at
every validation, ``validate`` once).
"""

from __future__ import annotations

import argparse
import sys

from lightning_pose.metrics.intervals import RESAMPLES
from lightning_pose.reports.tables import comparison_table, pool_seeds, read_per_image

KEYS = ["pdj@0.2/limb_joints", "pdj@0.2", "pckh@0.5", "pcp@0.5", "mean_error_px"]


def labelled_lists(
    parser: argparse.ArgumentParser, values: list[str], item: str
) -> dict[str, list[str]]:
    """``LABEL=A[,B...]`` arguments -> label -> [A, B, ...] (several: a setting's seeds);
    ``parser.error`` (exit 2) naming the argument where one has no label or nothing after it."""
    out = {}
    for value in values:
        label, sep, items = value.partition("=")
        if not sep or not label or not items:
            parser.error(f"expected LABEL={item}[,another seed's,...], got {value!r}")
        out[label] = items.split(",")
    return out


def main(argv: list[str] | None = None) -> str:
    """Print the table (stdout) and return it. Raises SystemExit (argparse's message, exit 2)
    on bad arguments; FileNotFoundError, ValueError: a per-image file that is missing or
    malformed (:func:`lightning_pose.reports.tables.read_per_image`)."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose report intervals", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "runs", nargs="+", help="LABEL=path/to/per_image_<split>.csv[,another seed's,...]"
    )
    parser.add_argument("--baseline", help="the label the others are compared with")
    parser.add_argument("--keys", nargs="+", default=KEYS)
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    args = parser.parse_args(argv)
    runs = {}
    for label, paths in labelled_lists(parser, args.runs, "path/to/per_image_<split>.csv").items():
        files = [read_per_image(p) for p in paths]
        runs[label] = files[0] if len(files) == 1 else pool_seeds(files)
    table = comparison_table(runs, args.keys, args.baseline, resamples=args.resamples)
    sys.stdout.write(table)
    return table
