"""Multiply-accumulate count of one forward pass, measured by PyTorch's FLOP counter."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from edgedino.models.backbone import Backbone


@torch.no_grad()
def count_macs(model: Backbone, imgsz: tuple[int, int], batch: int = 1) -> int:
    """MACs (FLOPs / 2) of matmuls, convolutions and attention for a (batch, C, h, w) input."""
    model.grid(*imgsz)
    x = torch.zeros(batch, model.cfg.in_chans, *imgsz, device=next(model.parameters()).device)
    # The math kernel spells attention as matmuls, which the counter sees; fused CPU kernels it misses.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model.forward_features(x)
    return counter.get_total_flops() // 2
