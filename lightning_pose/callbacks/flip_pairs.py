"""Records the flip pairs a fit trains with among the run's hyperparameters (``hparams.yaml``
of a ``CSVLogger``, a W&B run's config), beside the checkpoint's skeleton record."""

from __future__ import annotations

import pytorch_lightning as pl


class FlipPairsRecord(pl.Callback):
    """At the start of ``fit``, logs ``{"flip_pairs": [[left, right], ...]}`` (joint names,
    ``Skeleton.flip_pair_names``; ``[]`` for none) to every logger as a hyperparameter, after
    the Trainer has logged the model's and the data's. Loggers write it where they keep
    hyperparameters (``CSVLogger``: ``<run>/hparams.yaml``)."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pairs = pl_module.skeleton.flip_pair_names()
        for logger in trainer.loggers:
            logger.log_hyperparams({"flip_pairs": pairs})
            logger.save()
