"""Exponential moving average of the student's weights: the teacher DINO learns from."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, over parameters matched by name."""
    t_params = dict(teacher.named_parameters())
    pairs = [(t_params[n], p) for n, p in student.named_parameters() if n in t_params]
    if len(pairs) != len(t_params):
        missing = sorted(set(t_params) - {n for n, _ in student.named_parameters()})
        raise ValueError(f"teacher parameters without a student counterpart: {missing[:3]}")
    ts = [t for t, _ in pairs]
    torch._foreach_mul_(ts, momentum)
    torch._foreach_add_(ts, [p.detach() for _, p in pairs], alpha=1.0 - momentum)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode that takes no gradient (the EMA teacher, the Gram teacher)."""
    import copy

    twin = copy.deepcopy(module).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin
