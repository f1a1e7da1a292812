"""The one interface every edgedino backbone has, so export, runtime, bench and track never special-case."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgedino.errors import InputSizeError
from edgedino.models.config import ModelConfig

OUTPUT_NAMES = ("cls", "registers", "patch_tokens")


class Backbone(nn.Module):
    """Base class: `forward_features(x)` -> {"cls": (B, D), "registers": (B, R, D), "patch_tokens": (B, h, w, D)}."""

    cfg: ModelConfig
    source = None  # where the weights came from (edgedino.checkpoints.Source), set by load_backbone

    @property
    def stride(self) -> int:
        """Input pixels per output patch along each side (16 for ViT/16, 32 for ConvNeXt)."""
        return self.cfg.stride

    @property
    def patch_size(self) -> int:
        return self.cfg.stride

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def num_registers(self) -> int:
        return getattr(self.cfg, "n_registers", 0)

    def grid(self, h: int, w: int) -> tuple[int, int]:
        """Patch grid for an h x w input; an InputSizeError if a side is not a multiple of the stride."""
        s = self.stride
        if h % s or w % s:
            raise InputSizeError(f"input size {h}x{w} is not a multiple of the stride {s} of {self.cfg.name}")
        return h // s, w // s

    def output_shapes(self, h: int, w: int, batch: int = 1) -> dict[str, tuple[int, ...]]:
        gh, gw = self.grid(h, w)
        d = self.embed_dim
        return {"cls": (batch, d), "registers": (batch, self.num_registers, d), "patch_tokens": (batch, gh, gw, d)}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_features(x)

    def forward_features(self, x: Tensor, masks: Tensor | None = None, local: bool = False) -> dict[str, Tensor]:
        """The named outputs; `masks` (B, h*w) swaps patches for the mask token (iBOT, ViT only), `local` marks
        local crops in training (a ViT with an untied local CLS norm applies it; others ignore it)."""
        raise NotImplementedError

    def norm_consumers(self) -> list[tuple[str, list[str]]]:
        """(LayerNorm name, names of the layers its output feeds and nothing else), for SmoothQuant's exact
        rescaling; each family lists its own."""
        return []

    def deploy(self, imgsz: tuple[int, int]) -> Backbone:
        """Eval mode, fixed to one input size, in the form exporters convert (constant tables, folded scales).

        Changes the weights in place (LayerScale folded into the preceding linear): deploy a copy to keep training.
        """
        self.eval()
        self.grid(*imgsz)
        self.deployed_for = tuple(imgsz)
        return self

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> Backbone:
        """Random init as in training from scratch (truncated normal linears/convs, unit norms)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02, generator=gen)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()
        self._reset_extra(gen)
        return self

    def _reset_extra(self, gen: torch.Generator | None) -> None:
        """Family-specific parameters (tokens, LayerScale)."""
