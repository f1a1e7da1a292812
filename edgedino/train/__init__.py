"""DINOv3 training pieces: multi-crop, iBOT masking, DINO head and the losses (see losses/)."""

from edgedino.train.augment import MultiCrop, MultiCropConfig
from edgedino.train.losses import DINOLoss, IBOTLoss, gram_loss, koleo_loss, resize_grid, sinkhorn_knopp
from edgedino.train.masking import BlockMasking, masks_for_batch
from edgedino.train.projection_heads import DINOHead

__all__ = ["BlockMasking", "DINOHead", "DINOLoss", "IBOTLoss", "MultiCrop", "MultiCropConfig", "gram_loss",
           "koleo_loss", "masks_for_batch", "resize_grid", "sinkhorn_knopp"]
