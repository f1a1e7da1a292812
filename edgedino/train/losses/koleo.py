"""KoLeo regulariser: pushes each feature away from its nearest neighbour so the batch spreads over the sphere."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgedino.train.losses.collective import gather_rows


def koleo_loss(x: torch.Tensor, group: int = 0, eps: float = 1e-8) -> torch.Tensor:
    """Mean over this process's rows of -log(distance to the nearest other row of its group), on L2-normalised
    x (N, D).

    group 0: the group is this process's rows (the official default: its strength depends on the per-process
    batch, not on how many processes there are). group G > 0: the global batch (every process's rows in rank order)
    cut into consecutive groups of G rows (official koleo_distributed_loss_group_size, 16 in high-res adaptation);
    a run with G = the per-process batch gives the same loss on any number of processes.
    """
    if x.dim() != 2:
        raise ValueError(f"KoLeo expects (N, D) features, got {tuple(x.shape)}")
    with torch.autocast(x.device.type, enabled=False):  # fp32 neighbour search even inside bf16 autocast
        return _koleo(F.normalize(x.float(), dim=-1, eps=eps), group, eps)


def _koleo(x: torch.Tensor, group: int, eps: float) -> torch.Tensor:
    """KoLeo of rows already L2-normalised."""
    everyone, start = gather_rows(x) if group > 0 else (x, 0)
    rows = torch.arange(x.shape[0], device=x.device)
    with torch.no_grad():
        dots = x @ everyone.t()
        dots[rows, start + rows] = float("-inf")
        alone = x.shape[0] < 2
        if group > 0:
            mine = (start + rows) // group
            theirs = torch.arange(everyone.shape[0], device=x.device) // group
            dots[mine[:, None] != theirs[None, :]] = float("-inf")
            alone = bool((torch.bincount(theirs)[mine] < 2).any())
        if alone:  # from the shapes, not the values: NaN features are the loss's to report, not a count error
            raise ValueError(f"KoLeo needs at least 2 samples per neighbour set (group {group or 'per process'}, "
                             f"{x.shape[0]} rows here)")
        nearest = dots.argmax(dim=1)
    distance = torch.linalg.vector_norm(x - everyone[nearest] + eps, dim=-1)
    return -torch.log(distance + eps).mean()
