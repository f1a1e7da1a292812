"""DINO projection head: MLP -> bottleneck -> L2 normalisation -> linear prototype scores (the K outputs).

The key layout is the official one (`mlp.0`, `mlp.2`, ..., `last_layer.weight`), so an official training
checkpoint's `dino_head.` and `ibot_head.` load as they are. The official DINOv3 head ends in an unconstrained
linear layer; `norm_last_layer` also row-normalises it (DINOv1's weight norm with g = 1), which bounds the scores
to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadShape:
    """A head's sizes: prototypes (K), hidden width, bottleneck, number of linear layers in the MLP."""

    out_dim: int = 65536
    hidden: int = 2048
    bottleneck: int = 256
    layers: int = 3

    @classmethod
    def read(cls, sd: dict[str, torch.Tensor], prefix: str) -> HeadShape | None:
        """The sizes of the head stored under `prefix` (e.g. "dino_head."), or None when there is none."""
        last = sd.get(f"{prefix}last_layer.weight")
        linears = sorted(int(k[len(prefix) + 4:].split(".")[0]) for k in sd
                         if k.startswith(f"{prefix}mlp.") and k.endswith(".weight"))
        if last is None or not linears:
            return None
        hidden = sd[f"{prefix}mlp.{linears[0]}.weight"].shape[0]
        return cls(int(last.shape[0]), int(hidden), int(last.shape[1]), len(linears))


def _mlp(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """`layers` linear layers with GELU between them, ending at `out_dim` (the bottleneck)."""
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        mods.append(nn.Linear(a, b))
        if i < layers - 1:
            mods.append(nn.GELU())
    return nn.Sequential(*mods)


class DINOHead(nn.Module):
    """Prototype scores for the DINO (CLS) and iBOT (patch) losses."""

    def __init__(self, in_dim: int, shape: HeadShape | None = None, norm_last_layer: bool = False):
        super().__init__()
        shape = shape or HeadShape()
        if shape.layers < 1 or min(shape.out_dim, shape.hidden, shape.bottleneck) < 1:
            raise ValueError(f"DINOHead needs at least 1 layer and positive sizes, got {shape}")
        self.shape, self.norm_last_layer = shape, norm_last_layer
        self.mlp = _mlp(in_dim, shape.hidden, shape.bottleneck, shape.layers)
        self.last_layer = nn.Linear(shape.bottleneck, shape.out_dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal (std 0.02) weights and zero biases, the last layer included (the official init)."""
        for m in [*self.mlp, self.last_layer]:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (..., in_dim) -> prototype scores (..., out_dim)."""
        z = F.normalize(self.mlp(x), dim=-1, eps=1e-6 if x.dtype == torch.float16 else 1e-12)
        w = self.last_layer.weight
        return F.linear(z, F.normalize(w, dim=-1) if self.norm_last_layer else w)
