from lightning_pose.callbacks.prediction_writer import PredictionWriter

__all__ = ["PredictionWriter"]
