"""``lightning-pose report <kind> ...``: the tables of ``docs/RESULTS.md`` from finished runs
or from the data, one module of :mod:`lightning_pose.reports` each (its ``main(argv)``).

    lightning-pose report intervals fp32=RUN_A/per_image_val.csv bf16=RUN_B/... --baseline fp32
    lightning-pose report compare [runs/compare/summary.tsv]
    lightning-pose report errors --variant conf/model/heatmap_budget.yaml --ckpt last.ckpt
    lightning-pose report protocol-counts [DATA_ROOT]
    lightning-pose report mean-pose [DATA_ROOT]

``lightning-pose report <kind> --help`` tells one kind's options.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

KINDS = {
    "intervals": "runs on the same images: each metric's 95 % bootstrap interval and the "
    "paired difference to a baseline (per_image_val.csv files)",
    "compare": "the same-CPU-budget comparison of the families "
    "(runs/compare/summary.tsv of bench/reproduce/compare_lspet.sh)",
    "errors": "a checkpoint's misses on LSPet validation: left/right swaps against the rest",
    "protocol-counts": "the images, joints and limbs each metric counts on each evaluation split",
    "mean-pose": "the floor: the mean training pose predicted for every LSPet validation image",
}


def usage() -> str:
    width = max(map(len, KINDS))
    lines = [f"  {kind:<{width}}  {text}" for kind, text in KINDS.items()]
    return (
        "usage: lightning-pose report <kind> [options]\n\nkinds:\n"
        + "\n".join(lines)
        + "\n\n`lightning-pose report <kind> --help` tells one kind's options.\n"
    )


def report_main(kind: str) -> Callable[[list[str]], object]:
    """The ``main(argv)`` of ``kind``'s module (imported now: ``errors`` imports the CLI)."""
    if kind == "intervals":
        from lightning_pose.reports.intervals import main
    elif kind == "compare":
        from lightning_pose.reports.compare import main
    elif kind == "errors":
        from lightning_pose.reports.errors import main
    elif kind == "protocol-counts":
        from lightning_pose.reports.protocol_counts import main
    elif kind == "mean-pose":
        from lightning_pose.reports.mean_pose import main
    else:
        raise ValueError(f"unknown report kind {kind!r}, expected one of {', '.join(KINDS)}")
    return main


def main(argv: Sequence[str]) -> int:
    """Run the report ``argv[0]`` with the rest of ``argv``; returns the exit status: 0 when it
    ran, 2 (with the usage on stderr) for no kind or an unknown one; ``--help`` prints the usage
    (0). A report's own bad arguments exit 2 through argparse (SystemExit)."""
    args = list(argv)
    if args and args[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0
    if not args or args[0] not in KINDS:
        given = f"unknown kind {args[0]!r}; " if args else ""
        print(f"lightning-pose report: {given}expected one of {', '.join(KINDS)}", file=sys.stderr)
        print(usage(), end="", file=sys.stderr)
        return 2
    report_main(args[0])(args[1:])
    return 0
