"""``python -m lightning_pose fit|validate|test|predict ...`` (LightningCLI, :mod:`.cli`) and
``python -m lightning_pose sweep <sweep.yaml> [-- extra args]`` (the offline sweep runner,
:mod:`.sweep`)."""

import sys


def run(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["sweep"]:
        from lightning_pose.sweep import main as sweep_main

        return sweep_main(args[1:])
    from lightning_pose.cli import main
    from lightning_pose.wandb_mode import finish_wandb_run

    main(argv)  # None: LightningCLI reads sys.argv itself
    finish_wandb_run()
    return 0


if __name__ == "__main__":
    sys.exit(run())
