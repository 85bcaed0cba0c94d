from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.dataset import PoseDataset, PoseSample
from lightning_pose.data.readers import DatasetError, PoseAnnotations

__all__ = ["DatasetError", "PoseAnnotations", "PoseDataModule", "PoseDataset", "PoseSample"]
