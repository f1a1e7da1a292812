"""Multi-head self-attention with RoPE on patch tokens and the DINOv3 masked key bias, and its deploy form."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgedino.models.rope import apply_rope, apply_rope_deployed


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

    @torch.no_grad()
    def deploy(self) -> DeployAttention:
        """The same attention as separate q, k, v linears (the key bias, zero after its mask, dropped)."""
        C = self.proj.in_features
        bias = self.qkv.bias
        masked = hasattr(self.qkv, "bias_mask")
        parts = []
        for i in range(3):
            part_bias = None if bias is None or (i == 1 and masked) else bias[i * C:(i + 1) * C]
            linear = nn.Linear(C, C, bias=part_bias is not None)
            linear.weight.copy_(self.qkv.weight[i * C:(i + 1) * C])
            if part_bias is not None:
                linear.bias.copy_(part_bias)
            parts.append(linear)
        return DeployAttention(*parts, self.proj, self.num_heads)


class DeployAttention(nn.Module):
    """Attention in the form runtimes run fast: three linears (no qkv split), RoPE on every token and head at once
    from the tables RopeEmbedding.freeze() makes (no token split/concat), one fused attention op."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear, proj: nn.Linear, num_heads: int):
        super().__init__()
        self.q, self.k, self.v, self.proj = q, k, v, proj
        self.num_heads = num_heads

    def _heads(self, t: Tensor) -> Tensor:
        B, N, C = t.shape
        return t.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        B, N, C = x.shape
        q, k = self.q(x), self.k(x)
        if rope is not None:
            sin, cos = rope
            q, k = apply_rope_deployed(q, sin, cos, self.num_heads), apply_rope_deployed(k, sin, cos, self.num_heads)
        x = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(self.v(x)))
        return self.proj(x.transpose(1, 2).reshape(B, N, C))
