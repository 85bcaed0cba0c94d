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

**The best-model record survives any kill.** ``last.ckpt`` carries the monitored
``ModelCheckpoint``'s record (best file, best score). A step that is followed by a validation is
saved only after that validation (``every_n_train_steps`` would otherwise write it just before,
without the record, and Lightning's resume skips a validation whose step is saved: the record
of that validation was lost and a worse model was later called best). A resume from
``last.ckpt`` removes the checkpoint files the killed run wrote after it (a ``best-*.ckpt``
written before the kill reached ``last.ckpt``): the resumed run writes them again, under the
same names. ``tests/callbacks/test_checkpoint.py`` kills a run at every checkpoint write and
compares the best file and score with an uninterrupted run.

**A diverged state is never kept as the latest.** Not written: a state with a NaN or infinite
weight (:func:`finite_state`), a state whose validation loss is not finite, and, once a
training loss is not finite or exceeds ``max_loss_factor`` x the first step's loss, every later
state. The loss of a state is known one step after it is saved (the next step's forward), so
the previous ``last.ckpt`` is kept as a hard link (``last.ckpt.previous``, no copy) until the
next step's loss vouches for the new one; a loss out of bounds puts it back. Stale temporary
files of a killed save (``.<name>.*.tmp``) are removed when a fit starts. Every checkpoint is
written atomically (:class:`lightning_pose.runtime.checkpoints.AtomicCheckpointIO`).
"""

from __future__ import annotations

import math
import os
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

from lightning_pose.runtime.checkpoints import non_finite_tensors
from lightning_pose.runtime.files import remove_stale_temporaries
from lightning_pose.runtime.slurm import requeue_job, take_over_requeue

PREVIOUS_SUFFIX = ".previous"  # last.ckpt.previous: the state before the latest, until vouched


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
        max_loss_factor: a training loss above this factor times the run's first-step loss
            marks the fit as diverged: the state before it stays ``last.ckpt`` and no later
            state is written (a warning names the step). None: only non-finite losses and
            weights count.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_train_steps: int | None = None,
        max_loss_factor: float | None = 1e4,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,  # always last.ckpt, also when resuming into its folder
        )
        if max_loss_factor is not None and not max_loss_factor > 1:
            raise ValueError(
                f"LatestCheckpoint.max_loss_factor: expected > 1, got {max_loss_factor}"
            )
        self.max_loss_factor = max_loss_factor
        self._stop_signal: int | None = None
        self._previous_sigint = None
        # SLURM's requeue signal, taken over from Lightning (lightning_pose.runtime.slurm)
        self._requeue_signal: int | None = None
        self._requeue_requested = self._requeue_agreed = False
        self._previous_requeue_handler = None
        self._stage: str | None = None
        self._first_loss: float | None = None  # the run's first training loss (kept on resume)
        self._diverged_at: int | None = None  # the first state whose loss was out of bounds
        self._previous_step: int | None = None  # the step last.ckpt.previous holds

    def _save_latest(self, trainer: pl.Trainer) -> None:
        # skips fast_dev_run, sanity checks, non-fit stages and a step already saved
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        """Every write of ``last.ckpt`` (Lightning's ``every_n_train_steps`` path too): refused
        for a diverged or non-finite state; the file it replaces is kept as
        ``last.ckpt.previous`` until the new state's loss is known."""
        if self._diverged_at is not None:
            return  # warned when it diverged
        bad = finite_state(trainer.lightning_module)
        if bad:
            rank_zero_warn(
                f"step {trainer.global_step}: the model has non-finite weights ({bad[0]}, "
                f"{len(bad)} tensors in all); last.ckpt is not overwritten "
                f"(it stays at step {self._last_global_step_saved})"
            )
            return
        last = self._last_path()
        if trainer.is_global_zero and last is not None and last.is_file():
            self._previous_step = self._keep_previous(last)
        super()._save_last_checkpoint(trainer, monitor_candidates)

    def _last_path(self) -> Path | None:
        return None if self.dirpath is None else Path(self.dirpath) / "last.ckpt"

    def _keep_previous(self, last: Path) -> int | None:
        """Hard-link ``last`` to ``last.ckpt.previous`` (atomically); its step, None where the
        filesystem has no hard links."""
        previous = last.with_name(last.name + PREVIOUS_SUFFIX)
        staging = last.with_name(f".{last.name}.{os.getpid()}.link.tmp")
        try:
            if not (previous.is_file() and os.path.samefile(previous, last)):
                staging.unlink(missing_ok=True)
                os.link(last, staging)
                os.replace(staging, previous)
        except OSError:
            return None
        finally:
            staging.unlink(missing_ok=True)
        return self._last_global_step_saved

    # --- divergence ---------------------------------------------------------------------
    def _loss_out_of_bounds(self, trainer: pl.Trainer, outputs) -> float | None:
        """The step's training loss (the largest over the processes) where it is not finite
        or above ``max_loss_factor`` x the first step's; else None."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return None
        value = loss.detach().float().reshape(-1)[:1].nan_to_num(nan=math.inf)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            value = value.to(trainer.strategy.root_device)
            dist.all_reduce(value, op=dist.ReduceOp.MAX)  # every process takes one decision
        value = float(value.item())
        if self._first_loss is None and math.isfinite(value):
            self._first_loss = abs(value)
        bound = math.inf
        if self.max_loss_factor is not None and self._first_loss:
            bound = self.max_loss_factor * self._first_loss
        return value if not value <= bound else None

    def _diverged(self, trainer: pl.Trainer, state_step: int, why: str) -> None:
        """The state after ``state_step`` steps diverged (``why``): if ``last.ckpt`` holds it,
        put the previous one back (or remove it where there is none); write nothing more."""
        if self._diverged_at is not None:
            return
        self._diverged_at = state_step
        last = self._last_path()
        kept = self._last_global_step_saved
        if last is not None and kept == state_step and kept > 0:
            previous = last.with_name(last.name + PREVIOUS_SUFFIX)
            if self._previous_step is not None and previous.is_file():
                if trainer.is_global_zero:
                    os.replace(previous, last)
                kept = self._last_global_step_saved = self._previous_step
            else:
                if trainer.is_global_zero:
                    last.unlink(missing_ok=True)
                kept, self.last_model_path = 0, ""
        where = f"last.ckpt holds step {kept}" if kept else "no last.ckpt is kept"
        rank_zero_warn(
            f"the fit diverged at step {state_step} ({why}): {where}, the last state before "
            "it; no later state is saved. Lower the learning rate or raise the warm-up"
        )

    # --- stop signals -------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM, SIGINT and SLURM's requeue signal: record the signal, nothing else (no
        collective, no I/O inside a signal handler); :meth:`_agree_to_stop` acts on it at the
        end of the step."""
        if signum == self._requeue_signal:
            self._requeue_requested = True
            return
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
        requeue = self._requeue_signal
        if requeue is not None and signal.getsignal(requeue) != self._on_signal:
            self._previous_requeue_handler = signal.signal(requeue, self._on_signal)
        if sigterm:
            signal.signal(signal.SIGTERM, self._on_signal)

    def _agree_to_stop(self, trainer: pl.Trainer) -> bool:
        """At the end of a training step, on every process: did any process receive a stop
        signal? If so every process takes it (the first one's number) and sets Lightning's
        ``received_sigterm``, so that its loops stop after this step on every process. SLURM's
        requeue signal stops them too: :meth:`on_exception` then saves and requeues the job
        (also where a stop signal came as well; the exit status is then the stop signal's)."""
        signum, requeue = self._stop_signal or 0, int(self._requeue_requested)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            flag = torch.tensor([signum, requeue], device=trainer.strategy.root_device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum, requeue = (int(v) for v in flag.tolist())
        if requeue and self._requeue_signal is not None:
            signum, self._requeue_agreed = signum or self._requeue_signal, True
        if not signum:
            return False
        if self._stop_signal is None:
            self._stop_signal = signum
        if not trainer.received_sigterm:
            then = "requeueing the SLURM job and stopping" if self._requeue_agreed else "stopping"
            rank_zero_info(
                f"\n{signal.Signals(signum).name}: saving last.ckpt at step "
                f"{trainer.global_step}, then {then}"
                + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else "")
            )
        trainer._signal_connector.received_sigterm = True
        return True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_signal = None
        self._diverged_at = self._previous_step = None
        self._requeue_requested = self._requeue_agreed = False
        self._requeue_signal = take_over_requeue(trainer)  # before Lightning's handlers
        self._install_handlers(trainer, sigterm=False)

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install_handlers(trainer, sigterm=True)  # Lightning's is registered by now

    def _restore_sigint(self) -> None:
        """The SIGINT (and SLURM requeue signal) handlers found before the fit."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
        if self._previous_requeue_handler is not None and self._requeue_signal is not None:
            signal.signal(self._requeue_signal, self._previous_requeue_handler)
            self._previous_requeue_handler = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_sigint()
        last = self._last_path()
        if stage == "fit" and trainer.is_global_zero and last is not None:
            last.with_name(last.name + PREVIOUS_SUFFIX).unlink(missing_ok=True)

    # --- start-up: stale files, the record of a resumed run -----------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """As ``ModelCheckpoint``'s (resolves ``dirpath``); a fit then removes the temporary
        files that a kill during a save left in it."""
        super().setup(trainer, pl_module, stage)
        self._stage = stage
        if stage == "fit" and trainer.is_global_zero and self.dirpath is not None:
            remove_stale_temporaries(Path(self.dirpath))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "first_loss": self._first_loss}

    def load_state_dict(self, state_dict: dict) -> None:
        """A fit's bookkeeping; ``validate``, ``test`` and ``predict`` save nothing and take
        none of it (Lightning's "dirpath has changed" warning was about a folder they never
        write)."""
        if self._stage not in (None, "fit"):
            return
        super().load_state_dict(state_dict)
        self._first_loss = state_dict.get("first_loss")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install_handlers(trainer, sigterm=True)
        if trainer.is_global_zero:
            self._remove_orphans(trainer)

    def _remove_orphans(self, trainer: pl.Trainer) -> None:
        """Resuming from this callback's ``last.ckpt``: remove the checkpoints in its folder
        that no checkpoint callback's restored record knows and that hold a later step (the
        killed run wrote them after ``last.ckpt``; this run writes them again)."""
        last = self._last_path()
        if trainer.ckpt_path is None or last is None or not last.is_file():
            return
        if Path(trainer.ckpt_path).resolve() != last.resolve():
            return
        known = {last.resolve()}
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint):
                paths = [callback.best_model_path, callback.last_model_path]
                paths += [callback.kth_best_model_path, *callback.best_k_models]
                known |= {Path(p).resolve() for p in paths if p}
        for path in sorted(last.parent.glob("*.ckpt")):
            if path.resolve() in known:
                continue
            try:
                step = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                step = step.get("global_step") if isinstance(step, dict) else None
            except Exception:  # not a checkpoint of ours: left alone
                continue
            if isinstance(step, int) and step > trainer.global_step:
                path.unlink()
                rank_zero_info(
                    f"resume: removed {path} (step {step}), written by the interrupted run "
                    f"after {last.name} (step {trainer.global_step}); this run writes it again"
                )

    # --- when to save -------------------------------------------------------------------
    def _validates_now(self, trainer: pl.Trainer) -> bool:
        """Does a validation follow this training step (asked at its end)? Lightning's own
        test, which its loop applies right after ``on_train_batch_end``."""
        loop = trainer.fit_loop.epoch_loop
        fetcher = trainer.fit_loop._data_fetcher
        return bool(
            trainer.enable_validation
            and fetcher is not None
            and not loop._skip_next_val
            and loop._should_check_val_fx(fetcher)
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # this step's loss is that of the state before it: it vouches for that state or not
        loss = self._loss_out_of_bounds(trainer, outputs)
        if loss is not None:
            bound = (
                ""
                if not math.isfinite(loss)
                else f" > {self.max_loss_factor:g} x {self._first_loss:.4g}"
            )
            self._diverged(trainer, trainer.global_step - 1, f"training loss {loss:.4g}{bound}")
        stop = self._agree_to_stop(trainer)
        if self._validates_now(trainer):
            return  # saved after the validation, with its best-model record (module docstring)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if stop:  # the step is complete: what a resume continues from
            self._save_latest(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """A fit stopped by SIGTERM or Ctrl-C (Lightning's ``SIGTERMException``, a
        ``SystemExit``): save the step reached if that was not done at the end of its batch
        (a stop during validation), and give the exception the signal's exit status (Lightning
        leaves it 0, "completed" to a scheduler)."""
        self._restore_sigint()
        self._stage = trainer.state.fn.value if trainer.state.fn is not None else self._stage
        if isinstance(exception, FloatingPointError) and self._stage == "fit":
            # the non-finite loss of the current state (PoseEstimator.on_before_backward)
            self._diverged(trainer, trainer.global_step, f"{exception}".split(":")[0])
        if not isinstance(exception, SIGTERMException):
            return
        signum = self._stop_signal if self._stop_signal is not None else int(signal.SIGTERM)
        exception.code = exit_status(signum)
        name = signal.Signals(signum).name
        if self._stage != "fit":  # validate, test, predict: they save no checkpoint
            rank_zero_info(
                f"stopped by {name} during {self._stage} of {trainer.ckpt_path or 'the model'}: "
                f"its {self._stage} results were not written (files are written whole or not "
                f"at all; the checkpoint is unchanged); run {self._stage} again"
            )
            return
        self._save_latest(trainer)
        last = self._last_path()
        if last is not None and last.is_file():
            where = f"{last} holds step {self._last_global_step_saved}"
            advice = "continue with `fit ... --ckpt_path last`"
        else:
            where = "no last.ckpt was saved"
            advice = "run fit again"
        if self._requeue_agreed and trainer.is_global_zero:  # SLURM's time-limit warning
            if where.startswith("no "):
                advice = "the SLURM job is not requeued, it has nothing to resume; " + advice
            else:  # after the save: the requeued job resumes from it
                requeued, what = requeue_job()
                advice = f"{what}: its `--ckpt_path last` resumes" if requeued else what
        rank_zero_info(f"stopped by {name} at step {trainer.global_step}: {where}; {advice}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stage == "fit" and not trainer.sanity_checking:
            loss = trainer.callback_metrics.get("val/loss")
            if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
                self._diverged(trainer, trainer.global_step, f"validation loss {loss.item()}")
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
