"""Task heads on frozen backbones: classification and segmentation, trained on cached features (torch side)."""

from edgedino.heads.fit import FitConfig, FitResult, fit_head
from edgedino.heads.head import KINDS, Head, HeadConfig
from edgedino.heads.store import BackboneRecord, HeadFile, backbone_for, load_head, save_head
from edgedino.heads.train import TrainConfig

__all__ = ["KINDS", "BackboneRecord", "FitConfig", "FitResult", "Head", "HeadConfig", "HeadFile", "TrainConfig",
           "backbone_for", "fit_head", "load_head", "save_head"]
