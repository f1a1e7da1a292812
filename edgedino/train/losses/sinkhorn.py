"""Sinkhorn-Knopp centering of teacher scores (DINOv3): a balanced assignment of samples to prototypes."""

from __future__ import annotations

import torch

from edgedino.train.losses.collective import all_reduce_max, all_reduce_sum


@torch.no_grad()
def sinkhorn_knopp(teacher_logits: torch.Tensor, temperature: float, iterations: int = 3) -> torch.Tensor:
    """Teacher targets (B, K): each row a distribution, each prototype used about equally over the GLOBAL batch.

    Alternates prototype (row of Q) and sample (column of Q) normalisation; sums run over every process when
    torch.distributed is initialised, so N processes give the same targets as one process on the whole batch.
    Ends on the sample step: every returned row sums to exactly 1, every column to about B_total / K.
    """
    logits = teacher_logits.float() / temperature
    top = logits.max() if logits.numel() else logits.new_tensor(float("-inf"))
    q = torch.exp(logits - all_reduce_max(top.clone())).t()  # (K, B); the shift cancels in the first division
    prototypes = q.shape[0]
    samples = all_reduce_sum(q.new_tensor(float(q.shape[1])))
    tiny = torch.finfo(q.dtype).tiny
    q /= all_reduce_sum(q.sum()).clamp_min(tiny)
    for _ in range(iterations):
        q /= all_reduce_sum(q.sum(dim=1, keepdim=True)).clamp_min(tiny)
        q /= prototypes
        q /= q.sum(dim=0, keepdim=True).clamp_min(tiny)
        q /= samples
    return (q * samples).t()
