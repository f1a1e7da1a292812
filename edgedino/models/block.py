"""Pre-norm transformer block with LayerScale and stochastic depth."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgedino.models.attention import Attention
from edgedino.models.mlp import FFN_LAYERS


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


@torch.no_grad()
def fold_scale(linear: nn.Linear, gamma: torch.Tensor) -> None:
    """(x W^T + b) * g  ->  x (g W)^T + g b: a per-channel scale after a linear layer folded into it."""
    linear.weight.mul_(gamma[:, None])
    if linear.bias is not None:
        linear.bias.mul_(gamma)


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Drop the whole residual branch per sample with probability p (stochastic depth)."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn: str,
        ffn_hidden: int,
        eps: float,
        layerscale: float | None,
        qkv_bias: bool = True,
        mask_k_bias: bool = True,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias, mask_k_bias)
        self.ls1 = LayerScale(dim, layerscale) if layerscale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FFN_LAYERS[ffn](dim, ffn_hidden)
        self.ls2 = LayerScale(dim, layerscale) if layerscale else nn.Identity()
        self.drop_path = drop_path
        self.checkpointing = False  # training: recompute this block's activations in the backward pass

    def fold_layerscale(self) -> None:
        """Deploy form: LayerScale folded into the attention projection and the last FFN layer."""
        for ls, linear in ((self.ls1, self.attn.proj), (self.ls2, list(self.mlp.children())[-1])):
            if isinstance(ls, LayerScale):
                fold_scale(linear, ls.gamma)
        self.ls1, self.ls2 = nn.Identity(), nn.Identity()

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        if self.checkpointing and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(self._residual, x, rope, use_reentrant=False)
        return self._residual(x, rope)

    def _residual(self, x: Tensor, rope: tuple[Tensor, Tensor] | None) -> Tensor:
        x = x + drop_path(self.ls1(self.attn(self.norm1(x), rope)), self.drop_path, self.training)
        return x + drop_path(self.ls2(self.mlp(self.norm2(x))), self.drop_path, self.training)
