"""The command line: ``lightning-pose <subcommand> ...`` (the console script) or
``python -m lightning_pose <subcommand> ...``.

* ``fit | validate | test | predict``: LightningCLI (:mod:`.cli.lightning`);
* ``budget [--budget-min M] [--steps N]``: the main job, fit the best CPU recipe for a
  wall-clock budget, then validate and predict with overlays (:mod:`.cli.budget`;
  ``make train``);
* ``fit-cascade --depth S <fit args>``: fit a DeepPose cascade's stages one after another
  (:mod:`.cli.fit_cascade`);
* ``sweep <sweep.yaml> [-- extra args]``: the offline sweep runner (:mod:`.cli.sweep`);
* ``export -c ... --ckpt_path ... --format onnx OUT.onnx``: ONNX export (:mod:`.cli.export`);
* ``convert lspet|lsp|flic ROOT OUT.json``: a dataset as COCO keypoint JSON
  (:mod:`.data.convert`);
* ``report <kind> ...``: the results tables (intervals, comparisons, error types, protocol
  counts, the mean-pose floor) from runs or data (:mod:`.cli.report`).

``lightning-pose --help`` lists them all; ``lightning-pose <subcommand> --help`` tells one.

Exit status: 0 when the command completed; 2 for bad input (a config value, a file, a path:
:func:`user_error`), printed as one message naming the file or key and what was expected
(``LIGHTNING_POSE_TRACEBACK=1`` prints the traceback too); 143 when a fit was stopped by
SIGTERM, 130 by Ctrl-C (after saving ``last.ckpt``:
:class:`lightning_pose.callbacks.LatestCheckpoint`); 1 on any other error, with its traceback.
"""

import os
import signal
import sys
import traceback
from pathlib import Path

TRACEBACK_ENV = "LIGHTNING_POSE_TRACEBACK"  # set (to anything but 0/empty): bad input's traceback
PACKAGE = Path(__file__).resolve().parent
# What the package raises, with a message naming the file or key, for bad input: its own
# errors (lightning_pose.data.DatasetError, VideoError, SweepError are ValueErrors) and a file
# or folder that is missing, of the wrong kind or not permitted.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)

SUBCOMMANDS = {
    "fit": "train a model (python -m lightning_pose fit -c conf/lspet.yaml -c conf/model/X.yaml)",
    "validate": "evaluate a checkpoint on the validation split (--ckpt_path)",
    "test": "evaluate a checkpoint on the test split (--ckpt_path)",
    "predict": "predict images (data.predict.image_dir), a video (data.predict.video), or the test "
    "split, from a checkpoint (--ckpt_path) or an exported ONNX file (--onnx)",
    "budget": "the main job (make train): fit the best CPU recipe for a wall-clock budget, "
    "validate, predict a handful of validation images with overlays",
    "fit-cascade": "fit a DeepPose cascade's stages one after another: fit-cascade --depth S "
    "-c ... (each stage with the same fit arguments)",
    "sweep": "run a hyperparameter sweep offline: sweep <sweep.yaml> [-- extra args]",
    "export": "export a checkpoint to ONNX: export -c ... --ckpt_path X --format onnx OUT.onnx",
    "convert": "write LSPet, LSP or FLIC as COCO keypoint JSON: convert lspet ROOT OUT.json",
    "report": "print a results table: report intervals|compare|errors|protocol-counts|mean-pose "
    "...",
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()]
    return (
        "usage: lightning-pose <subcommand> [options]   (or: python -m lightning_pose ...)\n\n"
        "Classic 2D pose estimators (DeepPose and its cascade, Tompson et al. 2015 heat-maps, "
        "Li & Chan 2014 multi-task) in PyTorch Lightning.\n\nsubcommands:\n"
        + "\n".join(lines)
        + "\n\n`lightning-pose <subcommand> --help` tells one subcommand's options.\n"
    )


def user_error(error: BaseException) -> bool:
    """Is ``error`` bad input, to be told as one message? One of :data:`USER_ERRORS` raised by
    the package's own code (the innermost frame of its traceback is in ``lightning_pose``): a
    check that names what it refused. The same types raised inside a library (NumPy, torch,
    Lightning) are internal errors and keep their traceback."""
    if not isinstance(error, USER_ERRORS):
        return False
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None:
        return False
    return Path(frame.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def run(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``); returns the exit status (see the module
    docstring). Bad input (:func:`user_error`) is printed as one line on stderr, exit 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(args, argv)
    except Exception as error:
        if not user_error(error):
            raise
        if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            traceback.print_exc()
        command = f"lightning-pose {args[0]}" if args else "lightning-pose"
        print(f"{command}: error: {error}", file=sys.stderr)
        print(f"(set {TRACEBACK_ENV}=1 to see where it was raised)", file=sys.stderr)
        return 2


def _dispatch(args: list[str], argv: list[str] | None) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "sweep":
        from lightning_pose.cli.sweep import main as sweep_main

        return sweep_main(args[1:])
    if args[0] == "export":
        from lightning_pose.cli.export import main as export_main

        export_main(args[1:])
        return 0
    if args[0] == "convert":
        from lightning_pose.data.convert import main as convert_main

        convert_main(args[1:])
        return 0
    if args[0] == "report":
        from lightning_pose.cli.report import main as report_main

        return report_main(args[1:])
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from lightning_pose.runtime.wandb_mode import finish_wandb_run

    try:
        if args[0] == "budget":
            from lightning_pose.cli.budget import main as budget_main

            return budget_main(args[1:])
        if args[0] == "fit-cascade":
            from lightning_pose.cli.fit_cascade import main as fit_cascade_main

            return fit_cascade_main(args[1:])
        from lightning_pose.cli import main

        main(argv)  # None: LightningCLI reads sys.argv itself
    except SIGTERMException as stop:
        # Lightning's SIGTERM exit has no status (0: "completed" to a scheduler); a fit that
        # was stopped by a signal did not complete (LatestCheckpoint saved its last.ckpt)
        finish_wandb_run(exit_code=1)
        return stop.code if isinstance(stop.code, int) and stop.code else 128 + signal.SIGTERM
    finish_wandb_run()
    return 0


def main() -> None:
    """The ``lightning-pose`` console script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
