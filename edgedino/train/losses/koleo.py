"""KoLeo regulariser: pushes each feature away from its nearest neighbour so the batch spreads over the sphere."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgedino.train.losses.collective import gather_rows


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over this process's rows of -log(distance to the nearest other row), on L2-normalised x (N, D).

    Under torch.distributed the neighbours are searched among every process's rows; the mean of the processes'
    losses equals the single-process loss on the concatenated batch, and so do the DDP-averaged gradients.
    """
    if x.dim() != 2:
        raise ValueError(f"KoLeo expects (N, D) features, got {tuple(x.shape)}")
    with torch.autocast(x.device.type, enabled=False):  # fp32 neighbour search even inside bf16 autocast
        return _koleo(F.normalize(x.float(), dim=-1, eps=eps), eps)


def _koleo(x: torch.Tensor, eps: float) -> torch.Tensor:
    """KoLeo of rows already L2-normalised."""
    everyone, start = gather_rows(x)
    if everyone.shape[0] < 2:
        raise ValueError("KoLeo needs at least 2 samples in the (global) batch")
    rows = torch.arange(x.shape[0], device=x.device)
    with torch.no_grad():
        dots = x @ everyone.t()
        dots[rows, start + rows] = float("-inf")
        nearest = dots.argmax(dim=1)
    distance = torch.linalg.vector_norm(x - everyone[nearest] + eps, dim=-1)
    return -torch.log(distance + eps).mean()
