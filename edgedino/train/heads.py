"""DINO projection head: MLP -> bottleneck -> L2 normalisation -> unit-norm prototypes (the K output scores)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
    """Scores in [-1, 1] against `out_dim` prototypes; used for the DINO (CLS) and iBOT (patch) losses.

    The prototypes are weight-normalised with the norm frozen at 1 (DINO's `weight_g = 1`), written here as
    an explicit row normalisation: same function, plain state dict, nothing deprecated.
    """

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden: int = 2048, bottleneck: int = 256, layers: int = 3):
        super().__init__()
        if layers < 1:
            raise ValueError(f"DINOHead needs at least 1 layer, got {layers}")
        self.mlp = _mlp(in_dim, hidden, bottleneck, layers)
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal (std 0.02) MLP weights and zero biases as DINO; prototypes like nn.Linear's default."""
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.kaiming_uniform_(self.prototypes, a=5**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (..., in_dim) -> prototype scores (..., out_dim)."""
        z = F.normalize(self.mlp(x), dim=-1, eps=1e-6 if x.dtype == torch.float16 else 1e-12)
        return F.linear(z, F.normalize(self.prototypes, dim=-1))
