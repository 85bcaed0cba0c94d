from lightning_pose.callbacks.budget_schedule import BudgetSchedule
from lightning_pose.callbacks.checkpoint import LatestCheckpoint
from lightning_pose.callbacks.compiled_inference import CompiledInference
from lightning_pose.callbacks.evaluation_files import (
    ErrorStatisticsWriter,
    PDJCurveWriter,
    PerImageScoresWriter,
)
from lightning_pose.callbacks.memory_format import ChannelsLast
from lightning_pose.callbacks.metrics_table import MetricsTableWriter
from lightning_pose.callbacks.prediction_writer import PredictionWriter
from lightning_pose.callbacks.wall_clock import WallClock
from lightning_pose.callbacks.wandb_panels import WandbValidationPanels

__all__ = [
    "BudgetSchedule",
    "ChannelsLast",
    "CompiledInference",
    "ErrorStatisticsWriter",
    "LatestCheckpoint",
    "MetricsTableWriter",
    "PDJCurveWriter",
    "PerImageScoresWriter",
    "PredictionWriter",
    "WallClock",
    "WandbValidationPanels",
]
