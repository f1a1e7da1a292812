"""Multi-head self-attention with RoPE on patch tokens and the DINOv3 masked key bias."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgedino.models.rope import apply_rope


class MaskedBiasLinear(nn.Linear):
    """qkv projection whose bias is multiplied by a stored 0/1 mask (DINOv3 zeroes the key bias).

    The key bias cancels in softmax, so DINOv3 trains without it; the mask is kept in the weights
    (`bias_mask`) to load and save the official layout unchanged.
    """

    def __init__(self, dim: int, bias: bool = True):
        super().__init__(dim, 3 * dim, bias=bias)
        if bias:
            mask = torch.ones(3 * dim)
            mask[dim : 2 * dim] = 0
            self.register_buffer("bias_mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_mask if self.bias is not None else None
        return F.linear(x, self.weight, bias)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, mask_k_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = MaskedBiasLinear(dim, qkv_bias) if mask_k_bias else nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, head_dim)
        if rope is not None:
            q, k = self._rope(q, rope), self._rope(k, rope)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))

    @staticmethod
    def _rope(t: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        """Rotate the patch tokens only; CLS and registers (the prefix) carry no position."""
        sin, cos = rope
        prefix = t.shape[-2] - sin.shape[-2]
        rotated = apply_rope(t[:, :, prefix:].float(), sin, cos).to(t.dtype)
        return torch.cat([t[:, :, :prefix], rotated], dim=-2)
