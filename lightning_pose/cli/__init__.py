"""The command line and its tools: LightningCLI's fit/validate/test/predict
(:mod:`.lightning`), the main job (:mod:`.budget`), the cascade's stage-by-stage fit
(:mod:`.fit_cascade`), the offline sweep runner (:mod:`.sweep`, :mod:`.sweep_config`), ONNX
export and inference (:mod:`.export`, :mod:`.onnx_inference`), the reports (:mod:`.report`),
and the configured model with a checkpoint's weights (:mod:`.configured`)."""

from lightning_pose.cli.lightning import PoseLightningCLI, main

__all__ = ["PoseLightningCLI", "main"]
