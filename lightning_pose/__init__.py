"""Reproducible ConvNet pose estimators (DeepPose, Tompson et al. 2015, Li & Chan 2014)."""

__version__ = "0.1.0"
