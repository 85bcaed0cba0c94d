"""``lightning-pose fit-cascade``: fit the stages of a DeepPose cascade one after another
(DeepPose §3.2).

    lightning-pose fit-cascade --depth 3 -c conf/lspet.yaml \\
        -c conf/model/deeppose_cascade.yaml [--trainer.max_time=00:00:25:00 ...]

Runs ``fit`` for stage s = start..depth with ``--model.init_args.num_stages=s`` and, for
s >= 2, ``--model.init_args.init_checkpoint=<best checkpoint of stage s-1>``; every other
argument goes to each ``fit`` unchanged (so each stage gets the same budget). ``--start 2
--init_checkpoint X.ckpt`` continues from an existing stage-1 (``DeepPose``) checkpoint.
"""

from __future__ import annotations

import argparse

from lightning_pose.callbacks.checkpoint import best_and_last
from lightning_pose.cli import main as cli_main
from lightning_pose.runtime.wandb_mode import finish_wandb_run


def fit_cascade(
    depth: int, cli_args: list[str], start: int = 1, init_checkpoint: str | None = None
) -> list[str]:
    """Fit stages ``start..depth``; returns the checkpoint used for each trained stage.

    Raises:
        ValueError: bad ``depth``/``start``, or ``start >= 2`` without ``init_checkpoint``.
        RuntimeError: a stage's fit wrote no checkpoint.
    """
    if not 1 <= start <= depth:
        raise ValueError(f"--start must be in [1, --depth={depth}], got {start}")
    if start >= 2 and init_checkpoint is None:
        raise ValueError("--start >= 2 needs --init_checkpoint (the stages before it)")
    checkpoints: list[str] = []
    previous = init_checkpoint
    for s in range(start, depth + 1):
        args = ["fit", *cli_args, f"--model.init_args.num_stages={s}"]
        if s >= 2:
            args.append(f"--model.init_args.init_checkpoint={previous}")
        cli = cli_main(args)
        finish_wandb_run()  # one W&B run per stage
        best, last = best_and_last(cli.trainer)
        previous = str(best or last or "")
        if not previous:
            raise RuntimeError(f"stage {s}: fit wrote no checkpoint (is checkpointing disabled?)")
        checkpoints.append(previous)
        print(f"stage {s}: {previous}", flush=True)
    return checkpoints


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The command's own options, and the rest (every stage's ``fit`` arguments). Raises
    SystemExit (argparse's message, exit 2) on bad ones."""
    parser = argparse.ArgumentParser(
        prog="lightning-pose fit-cascade", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--depth", type=int, required=True, help="cascade depth S")
    parser.add_argument("--start", type=int, default=1, help="first stage to train")
    parser.add_argument("--init_checkpoint", default=None, help="checkpoint of stages < start")
    return parser.parse_known_args(argv)


def main(argv: list[str]) -> int:
    """``lightning-pose fit-cascade ARGS``: fit the stages (:func:`fit_cascade`); returns 0."""
    options, rest = parse(argv)
    fit_cascade(options.depth, rest, options.start, options.init_checkpoint)
    return 0
