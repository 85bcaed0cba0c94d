"""``last.ckpt`` that holds the latest *finite* training state, for ``fit --ckpt_path last``;
saved on SIGTERM and Ctrl-C too.

Lightning's monitored ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only in a
step where it also saved a top-k checkpoint, i.e. when the monitored metric improved (a run
that ended at step 30 left ``last.ckpt`` at step 10), and at the end of training only if it
never wrote one. :class:`LatestCheckpoint` is a separate, unmonitored checkpoint callback that
rewrites ``last.ckpt`` after every validation, at every training epoch's end, at the end of
training (``max_steps``/``max_time``/``max_epochs``), optionally every N optimiser steps, and
when the fit is asked to stop by a signal:

* **SIGTERM** (a scheduler's stop, ``scancel``, ``kill``): recorded by this callback's handler;
  at the end of the current training step ``last.ckpt`` is saved at that step, and Lightning
  stops the fit with its ``SIGTERMException`` whose exit status is set to 143 (Lightning's is
  0, so a scheduler took the job for completed).
* **Ctrl-C** (SIGINT): the same, exit status 130; a second Ctrl-C stops at once (Lightning's
  ``KeyboardInterrupt`` handling, no save).
* **Under several processes** (DDP) the processes agree to stop at the end of one training
  step: each step ends with an all-reduce of the signals received (one integer), so a signal
  that reached one process (``kill``) or every process at different moments (SLURM) stops
  all of them after the same step, all save together, and all exit 143. Lightning's own
  SIGTERM handler (replaced here while training) broadcasts from *inside the signal handler*,
  which under gloo mismatches the collective the process was in and crashed the fit
  (``gloo::EnforceNotMet``, exit 1, nothing saved; ``tests/test_ddp.py``).

A state with a NaN or infinite weight is never written (:func:`finite_state`): the previous
``last.ckpt`` stays. Every checkpoint is written atomically
(:class:`lightning_pose.runs.checkpoints.AtomicCheckpointIO`).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_warn

from lightning_pose.runs.checkpoints import non_finite_tensors


def exit_status(signum: int) -> int:
    """The shell's exit status for a process ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


def finite_state(pl_module: pl.LightningModule) -> list[str]:
    """Names of ``pl_module``'s parameters and buffers holding a NaN or an infinity."""
    state = {**dict(pl_module.named_parameters()), **dict(pl_module.named_buffers())}
    return non_finite_tensors(state)


class LatestCheckpoint(ModelCheckpoint):
    """Keeps ``<dirpath>/last.ckpt`` the latest finite training state (see the module
    docstring).

    Args:
        dirpath: folder of the checkpoint; None = ``<log dir>/checkpoints`` (as
            ``ModelCheckpoint``).
        every_n_train_steps: also save every N optimiser steps (mid-epoch), so a killed run
            loses at most N steps; None = only after validations, epochs, at the end and on a
            stop signal.
    """

    def __init__(self, dirpath: str | None = None, every_n_train_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,  # always last.ckpt, also when resuming into its folder
        )
        self._stop_signal: int | None = None
        self._previous_sigint = None

    def _save_latest(self, trainer: pl.Trainer) -> None:
        # skips fast_dev_run, sanity checks, non-fit stages and a step already saved
        if self._should_skip_saving_checkpoint(trainer):
            return
        bad = finite_state(trainer.lightning_module)
        if bad:
            rank_zero_warn(
                f"step {trainer.global_step}: the model has non-finite weights ({bad[0]}, "
                f"{len(bad)} tensors in all); last.ckpt is not overwritten "
                f"(it stays at step {self._last_global_step_saved})"
            )
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # --- stop signals -------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM and SIGINT: record the signal, nothing else (no collective, no I/O inside a
        signal handler); :meth:`_agree_to_stop` acts on it at the end of the step."""
        if signum == signal.SIGINT and self._stop_signal is not None:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        if self._stop_signal is None:
            self._stop_signal = signum

    def _install_handlers(self, trainer: pl.Trainer, sigterm: bool) -> None:
        """Our SIGINT handler and, with ``sigterm``, our SIGTERM one in place of Lightning's.
        Lightning registers its SIGTERM handler after ``on_fit_start`` and its teardown
        restores the handler it found then, so ours is installed only after that (installed
        earlier, it would be what Lightning restores, outliving the fit)."""
        self._trainer = trainer
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) != self._on_signal:
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_signal)
        if sigterm:
            signal.signal(signal.SIGTERM, self._on_signal)

    def _agree_to_stop(self, trainer: pl.Trainer) -> bool:
        """At the end of a training step, on every process: did any process receive a stop
        signal? If so every process takes it (the first one's number) and sets Lightning's
        ``received_sigterm``, so that its loops stop after this step on every process."""
        signum = self._stop_signal or 0
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            flag = torch.tensor([signum], device=trainer.strategy.root_device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if not signum:
            return False
        if self._stop_signal is None:
            self._stop_signal = signum
        if not trainer.received_sigterm:
            rank_zero_info(
                f"\n{signal.Signals(signum).name}: saving last.ckpt at step "
                f"{trainer.global_step}, then stopping"
                + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else "")
            )
        trainer._signal_connector.received_sigterm = True
        return True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_signal = None
        self._install_handlers(trainer, sigterm=False)

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install_handlers(trainer, sigterm=True)  # Lightning's is registered by now

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install_handlers(trainer, sigterm=True)

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and (
            threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_sigint()

    # --- when to save -------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._agree_to_stop(trainer):  # the step is complete: what a resume continues from
            self._save_latest(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """A fit stopped by SIGTERM or Ctrl-C (Lightning's ``SIGTERMException``, a
        ``SystemExit``): save the step reached if that was not done at the end of its batch
        (a stop during validation), and give the exception the signal's exit status (Lightning
        leaves it 0, "completed" to a scheduler)."""
        self._restore_sigint()
        if not isinstance(exception, SIGTERMException):
            return
        self._save_latest(trainer)
        signum = self._stop_signal if self._stop_signal is not None else int(signal.SIGTERM)
        exception.code = exit_status(signum)
        path = self.last_model_path
        where = f"{path} holds step {self._last_global_step_saved}" if path else "nothing saved"
        rank_zero_info(
            f"stopped by {signal.Signals(signum).name} at step {trainer.global_step}: {where}; "
            "continue with `fit ... --ckpt_path last`"
        )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_latest(trainer)


def best_and_last(trainer: pl.Trainer) -> tuple[Path | None, Path | None]:
    """The best checkpoint (of the first monitored ``ModelCheckpoint``) and ``last.ckpt`` (of
    :class:`LatestCheckpoint`, else any checkpoint callback's last) this fit wrote."""
    best = last = None
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        if best is None and callback.monitor is not None and callback.best_model_path:
            best = Path(callback.best_model_path)
        if callback.last_model_path and (last is None or isinstance(callback, LatestCheckpoint)):
            last = Path(callback.last_model_path)
    return best, last
