from lightning_pose.data.annotations import DatasetError, PoseAnnotations, PoseReader
from lightning_pose.data.coco import COCOKeypoints
from lightning_pose.data.datamodule import PoseDataModule
from lightning_pose.data.dataset import PoseDataset, PoseSample
from lightning_pose.data.mpii import MPIIKeypoints
from lightning_pose.data.predict_source import PredictSource
from lightning_pose.data.readers import FLIC, LSP, LSPet

__all__ = [
    "COCOKeypoints",
    "FLIC",
    "LSP",
    "DatasetError",
    "LSPet",
    "MPIIKeypoints",
    "PoseAnnotations",
    "PoseDataModule",
    "PoseDataset",
    "PoseReader",
    "PoseSample",
    "PredictSource",
]
