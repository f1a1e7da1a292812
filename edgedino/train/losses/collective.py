"""Collectives the losses need, no-ops in a single process: sums, maxima and a gather that carries gradients."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when torch.distributed has a process group, i.e. under torchrun."""
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of `x` over every process (in place when distributed; `x` itself otherwise)."""
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def all_reduce_max(x: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of `x` over every process."""
    if is_distributed():
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return x


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 (row counts may differ per process); backward sums every process's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, counts: list[int], start: int) -> torch.Tensor:
        padded = x.new_zeros((max(counts), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        ctx.start, ctx.rows = start, x.shape[0]
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.start + ctx.rows], None, None


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every process's rows concatenated in rank order, and the index where this process's rows start.

    Gradients reach the rows of the process that owns them, summed over every process's loss: with DDP's gradient
    average this equals the single-process gradient of the mean loss on the concatenated batch.
    """
    if not is_distributed():
        return x, 0
    rank = dist.get_rank()
    counts = torch.zeros(dist.get_world_size(), dtype=torch.long, device=x.device)
    counts[rank] = x.shape[0]
    dist.all_reduce(counts)
    counts = counts.tolist()
    start = sum(counts[:rank])
    return _GatherRows.apply(x, counts, start), start
