"""``python -m lightning_pose fit|validate|test|predict ...`` (LightningCLI, :mod:`.cli`) and
``python -m lightning_pose sweep <sweep.yaml> [-- extra args]`` (the offline sweep runner,
:mod:`.sweep`).

Exit status: 0 when the command completed; 143 when a fit was stopped by SIGTERM, 130 by
Ctrl-C (after saving ``last.ckpt``: :class:`lightning_pose.callbacks.LatestCheckpoint`); 1 on
an error."""

import signal
import sys


def run(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["sweep"]:
        from lightning_pose.sweep import main as sweep_main

        return sweep_main(args[1:])
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from lightning_pose.cli import main
    from lightning_pose.wandb_mode import finish_wandb_run

    try:
        main(argv)  # None: LightningCLI reads sys.argv itself
    except SIGTERMException as stop:
        # Lightning's SIGTERM exit has no status (0: "completed" to a scheduler); a fit that
        # was stopped by a signal did not complete (LatestCheckpoint saved its last.ckpt)
        finish_wandb_run(exit_code=1)
        return stop.code if isinstance(stop.code, int) and stop.code else 128 + signal.SIGTERM
    finish_wandb_run()
    return 0


if __name__ == "__main__":
    sys.exit(run())
