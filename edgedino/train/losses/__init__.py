"""DINOv3 losses: DINO with Sinkhorn-Knopp centering, iBOT, KoLeo and Gram anchoring; correct under torchrun."""

from edgedino.train.losses.dino import DINOLoss
from edgedino.train.losses.gram import gram_loss, resize_grid
from edgedino.train.losses.ibot import IBOTLoss
from edgedino.train.losses.koleo import koleo_loss
from edgedino.train.losses.sinkhorn import sinkhorn_knopp

__all__ = ["DINOLoss", "IBOTLoss", "gram_loss", "koleo_loss", "resize_grid", "sinkhorn_knopp"]
