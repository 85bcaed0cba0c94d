"""The command line and its tools: LightningCLI's fit/validate/test/predict
(:mod:`.lightning`), the main job (:mod:`.train`), the offline sweep runner (:mod:`.sweep`,
:mod:`.sweep_config`), the cascade trainer (:mod:`.train_cascade`) and ONNX export and
inference (:mod:`.export`, :mod:`.onnx_inference`)."""

from lightning_pose.cli.lightning import PoseLightningCLI, main

__all__ = ["PoseLightningCLI", "main"]
