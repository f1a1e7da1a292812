"""Axial rotary position embedding for patch tokens, as in DINOv3.

Patch-centre coordinates are normalised per axis to [-1, 1]; each head's channels are split into
rotation pairs whose periods grow geometrically from 1 to `base`. Tables are cached per grid size;
`freeze(h, w, prefix, heads)` turns them into constants for export (no `If`/`Tile` ops in the graph) in the
deploy layout: one row per token (identity rows for the prefix) and one column per channel of all heads, with
the rotate-half sign folded into sin, so a runtime rotates with one reverse and two multiply-adds.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from edgedino.errors import InputSizeError


def rotate_half(x: Tensor) -> Tensor:
    """[a, b] -> [-b, a] over the last dim: the 90-degree turn that pairs channel i with i + D/2."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rope(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate `x` (..., N, D) by the angles whose sin/cos are (N, D)."""
    return x * cos + rotate_half(x) * sin


def swap_halves(x: Tensor, heads: int) -> Tensor:
    """[a, b] -> [b, a] within each head of (..., heads * head_dim): rotate_half without its sign or a concat."""
    shape = x.shape
    return x.reshape(*shape[:-1], heads, 2, shape[-1] // heads // 2).flip(-2).reshape(shape)


def apply_rope_deployed(x: Tensor, sin: Tensor, cos: Tensor, heads: int) -> Tensor:
    """apply_rope over all tokens and heads of (B, N, heads * head_dim), with freeze()'s sign-folded tables."""
    return x * cos + swap_halves(x, heads) * sin


def rope_periods(head_dim: int, base: float) -> Tensor:
    """Rotation periods base ** (4 i / head_dim), i < head_dim / 4: from 1 up towards `base` patches."""
    exponents = 2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2)
    return base**exponents


class RopeEmbedding(nn.Module):
    """sin/cos tables (N_patches, head_dim) for an h x w patch grid."""

    def __init__(self, head_dim: int, base: float = 100.0, rescale: float | None = None):
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"RoPE needs a head dim divisible by 4, got {head_dim}")
        self.rescale = rescale
        self.register_buffer("periods", rope_periods(head_dim, base), persistent=True)
        self._cache: dict = {}
        self.frozen_hw: tuple[int, int] | None = None

    def _tables(self, h: int, w: int, rescale: Tensor | None = None) -> tuple[Tensor, Tensor]:
        dev = self.periods.device
        ch = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        cw = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        coords = torch.stack(torch.meshgrid(ch, cw, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0
        if rescale is not None:
            coords = coords * rescale
        angles = 2 * math.pi * coords[:, :, None] / self.periods.float()[None, None, :]
        angles = angles.flatten(1, 2).tile(2)  # (N, D): [y-angles, x-angles] twice
        return angles.sin(), angles.cos()

    def forward(self, h: int, w: int) -> tuple[Tensor, Tensor]:
        if self.frozen_hw is not None:
            if (h, w) != self.frozen_hw:
                raise InputSizeError(f"deployed for a {self.frozen_hw} patch grid, got {(h, w)}")
            return self.frozen_sin, self.frozen_cos
        if self.training and self.rescale is not None:
            log_s = math.log(self.rescale)
            scale = torch.empty(1, device=self.periods.device).uniform_(-log_s, log_s).exp()
            return self._tables(h, w, scale)
        key = (h, w, self.periods.device, self.periods._version)
        if key not in self._cache:
            self._cache = {key: self._tables(h, w)}
        return self._cache[key]

    def freeze(self, h: int, w: int, prefix: int, heads: int) -> None:
        """Precompute the tables for one grid as constant (prefix + h * w, heads * head_dim) buffers (the deploy
        form, see apply_rope_deployed): cos 1 and sin 0 on the prefix rows, sin negated where rotate_half negates."""
        sin, cos = self._tables(h, w)
        half = sin.shape[-1] // 2
        sin = torch.cat([-sin[:, :half], sin[:, half:]], dim=-1)
        self.register_buffer("frozen_sin", torch.cat([sin.new_zeros(prefix, sin.shape[-1]), sin]).tile(heads),
                             persistent=False)
        self.register_buffer("frozen_cos", torch.cat([cos.new_ones(prefix, cos.shape[-1]), cos]).tile(heads),
                             persistent=False)
        self.frozen_hw = (h, w)
