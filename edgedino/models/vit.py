"""DINOv3 vision transformer: patch embedding, CLS + register tokens, RoPE blocks, one final norm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgedino.models.attention import DeployAttention
from edgedino.models.backbone import Backbone
from edgedino.models.block import Block, LayerScale
from edgedino.models.config import ViTConfig
from edgedino.models.rope import RopeEmbedding


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, h, w, D)


class VisionTransformer(Backbone):
    def __init__(self, cfg: ViTConfig, drop_path: float = 0.0):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if cfg.n_registers:
            self.storage_tokens = nn.Parameter(torch.zeros(1, cfg.n_registers, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        self.rope_embed = RopeEmbedding(cfg.head_dim, cfg.rope_base, cfg.rope_rescale)
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.ffn, cfg.ffn_hidden, cfg.layer_norm_eps, cfg.layerscale_init,
                  cfg.qkv_bias, cfg.mask_k_bias, drop_path)
            for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.cls_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if cfg.untie_cls_norm else None
        self.local_cls_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps) if cfg.local_cls_norm else None
        self.reset_parameters()

    def _reset_extra(self, gen: torch.Generator | None) -> None:
        nn.init.normal_(self.cls_token, std=0.02, generator=gen)
        if self.cfg.n_registers:
            nn.init.normal_(self.storage_tokens, std=0.02, generator=gen)
        nn.init.zeros_(self.mask_token)
        for m in self.modules():
            if isinstance(m, LayerScale):
                nn.init.constant_(m.gamma, self.cfg.layerscale_init)

    def _tokens(self, x: Tensor, masks: Tensor | None) -> tuple[Tensor, int, int]:
        """[CLS, registers, patches] with masked patches replaced by the mask token (iBOT)."""
        x = self.patch_embed(x)
        B, h, w, _ = x.shape
        x = x.flatten(1, 2)
        if masks is not None:
            x = torch.where(masks.reshape(B, -1, 1), self.mask_token.to(x.dtype)[None], x)
        # 0 * mask_token keeps it in the graph so distributed training sees a gradient for it.
        prefix = [self.cls_token + 0 * self.mask_token[None]]
        if self.cfg.n_registers:
            prefix.append(self.storage_tokens)
        return torch.cat([p.expand(B, -1, -1) for p in prefix] + [x], dim=1), h, w

    def _norm(self, x: Tensor, local: bool = False) -> Tensor:
        """The final norm; CLS + registers get their own norm when untied (cls_norm), or, for local crops in
        training, local_cls_norm (as the official model does for the crops it is given as local)."""
        if local and self.training and self.local_cls_norm is not None:
            prefix_norm = self.local_cls_norm
        elif self.cls_norm is not None:
            prefix_norm = self.cls_norm
        else:
            return self.norm(x)
        p = 1 + self.cfg.n_registers
        return torch.cat([prefix_norm(x[:, :p]), self.norm(x[:, p:])], dim=1)

    def _split(self, x: Tensor, h: int, w: int) -> dict[str, Tensor]:
        p = 1 + self.cfg.n_registers
        return {"cls": x[:, 0], "registers": x[:, 1:p], "patch_tokens": x[:, p:].reshape(x.shape[0], h, w, -1)}

    def forward_features(self, x: Tensor, masks: Tensor | None = None, local: bool = False) -> dict[str, Tensor]:
        self.grid(x.shape[-2], x.shape[-1])
        x, h, w = self._tokens(x, masks)
        for blk in self.blocks:  # in training each block draws its own RoPE rescale, as the official model does
            x = blk(x, self.rope_embed(h, w))
        return self._split(self._norm(x, local), h, w)

    def get_intermediate_layers(self, x: Tensor, n: int | Sequence[int] = 1, norm: bool = True) -> list[dict]:
        """Outputs of the last `n` blocks (or of the blocks listed in `n`), each as forward_features returns."""
        self.grid(x.shape[-2], x.shape[-1])
        take = range(len(self.blocks) - n, len(self.blocks)) if isinstance(n, int) else n
        x, h, w = self._tokens(x, None)
        rope = self.rope_embed(h, w)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x, rope)
            if i in take:
                outs.append(self._split(self._norm(x) if norm else x, h, w))
        return outs

    def norm_consumers(self) -> list[tuple[str, list[str]]]:
        """Each LayerNorm whose output feeds only linear layers, with those layers (by name): the pairs along
        which a per-channel scale moves exactly from one to the other (SmoothQuant). Deployed, attention's input
        feeds q, k and v; in training, the one qkv."""
        ffn_in = ["fc1"] if self.cfg.ffn == "mlp" else ["w1", "w2"]
        return [pair for i, blk in enumerate(self.blocks)
                for attn_in in [("q", "k", "v") if isinstance(blk.attn, DeployAttention) else ("qkv",)]
                for pair in ((f"blocks.{i}.norm1", [f"blocks.{i}.attn.{n}" for n in attn_in]),
                             (f"blocks.{i}.norm2", [f"blocks.{i}.mlp.{n}" for n in ffn_in]))]

    def deploy(self, imgsz: tuple[int, int]) -> VisionTransformer:
        """Eval mode for one size: RoPE tables as constants for all tokens and heads, LayerScale folded into the
        preceding linears, qkv as three linears (DeployAttention)."""
        super().deploy(imgsz)
        self.rope_embed.freeze(*self.grid(*imgsz), 1 + self.cfg.n_registers, self.cfg.num_heads)
        for blk in self.blocks:
            blk.fold_layerscale()
            if not isinstance(blk.attn, DeployAttention):
                blk.attn = blk.attn.deploy()
        return self
