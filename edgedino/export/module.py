"""The graph every target converts: a deployed backbone with named outputs and an optional uint8 input."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgedino.models import Backbone
from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD


class ExportModule(nn.Module):
    """x -> (cls, patch_tokens[, registers][, logits]) for one fixed input size.

    With input_format="uint8" the input is (B, H, W, 3) RGB 0-255 and normalisation is part of the graph,
    so a device feeds camera frames as they are. With a task head (edgedino.heads.Head) its logits are one
    more output: (B, C) for classify, (B, h, w, C) at the patch grid for segment.
    """

    def __init__(self, backbone: Backbone, imgsz: tuple[int, int], input_format: str = "float32",
                 batch: int = 1, mean=IMAGENET_MEAN, std=IMAGENET_STD, head: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone.deploy(imgsz)
        self.head = head.eval() if head is not None else None
        self.imgsz = imgsz
        self.input_format = input_format
        self.batch = batch
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1) * 255)
        self.eval()

    @property
    def output_names(self) -> tuple[str, ...]:
        names = ("cls", "patch_tokens", "registers") if self.backbone.num_registers else ("cls", "patch_tokens")
        return names + ("logits",) if self.head is not None else names

    def output_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Every output's shape at this module's input size."""
        shapes = self.backbone.output_shapes(*self.imgsz, batch)
        if self.head is not None:
            shapes["logits"] = self.head.output_shape(batch, self.backbone.grid(*self.imgsz))
        return {name: shapes[name] for name in self.output_names}

    def input_shape(self, batch: int | None = None) -> tuple[int, ...]:
        batch = batch or self.batch
        h, w = self.imgsz
        return (batch, h, w, 3) if self.input_format == "uint8" else (batch, 3, h, w)

    def example(self, batch: int | None = None) -> Tensor:
        if self.input_format == "uint8":
            return torch.randint(0, 256, self.input_shape(batch), dtype=torch.uint8)
        return torch.randn(self.input_shape(batch))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if self.input_format == "uint8":
            x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std
        out = self.backbone.forward_features(x)
        if self.head is not None:
            out["logits"] = self.head(out["cls"], out["patch_tokens"])
        return tuple(out[name] for name in self.output_names)
