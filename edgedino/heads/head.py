"""Task heads on a frozen backbone: linear or MLP, for image classification or per-patch segmentation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgedino.errors import ConfigError
from edgedino.runtime.task_head import TASKS, HeadInfo

KINDS = ("linear", "mlp")
CLIP = 6.0  # standardised head inputs are clipped to +-CLIP


@dataclass(frozen=True)
class HeadConfig:
    """What a head is: its task, kind, input width (the backbone's D) and classes."""

    task: str  # "classify" or "segment"
    kind: str  # "linear" or "mlp"
    dim: int  # backbone embedding width D
    classes: tuple[str, ...]
    hidden: int = 256  # MLP hidden width

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r} (tasks: {', '.join(TASKS)})")
        if self.kind not in KINDS:
            raise ConfigError(f"unknown head {self.kind!r} (heads: {', '.join(KINDS)})")
        if len(self.classes) < 2:
            raise ConfigError(f"a head needs at least 2 classes, got {len(self.classes)}")

    @property
    def in_dim(self) -> int:
        """classify reads [cls; mean of the patch tokens] (2D); segment reads each patch token (D)."""
        return 2 * self.dim if self.task == "classify" else self.dim

    def info(self) -> HeadInfo:
        return HeadInfo(self.task, self.classes, self.kind)


class Head(nn.Module):
    """Backbone outputs -> logits: classify (B, C); segment (B, h, w, C) at the patch grid, channels last.

    The inputs are standardised with the training set's per-dimension mean and std (buffers), as a
    BatchNorm in eval mode would, so one learning rate suits every backbone, and clipped to +-CLIP std: features
    far outside the training distribution (calibration photos for a digits head) cannot dominate the logits,
    and an int8 export's per-tensor scale for the head's input stays fine enough for every dimension.
    """

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        n = len(cfg.classes)
        self.register_buffer("mean", torch.zeros(cfg.in_dim))
        self.register_buffer("std", torch.ones(cfg.in_dim))
        if cfg.kind == "linear":
            self.net = nn.Linear(cfg.in_dim, n)
        else:
            self.net = nn.Sequential(nn.Linear(cfg.in_dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, n))

    @staticmethod
    def inputs(task: str, cls: Tensor, patch_tokens: Tensor) -> Tensor:
        """What a head of `task` reads from the backbone outputs (also what the feature cache stores)."""
        if task == "classify":
            return torch.cat([cls, patch_tokens.mean(dim=(1, 2))], dim=-1)
        return patch_tokens

    def logits(self, x: Tensor) -> Tensor:
        """Logits from head inputs (as `inputs` returns them)."""
        return self.net(((x - self.mean) / self.std).clamp(-CLIP, CLIP))

    def forward(self, cls: Tensor, patch_tokens: Tensor) -> Tensor:
        return self.logits(self.inputs(self.cfg.task, cls, patch_tokens))

    def output_shape(self, batch: int, grid: tuple[int, int]) -> tuple[int, ...]:
        n = len(self.cfg.classes)
        return (batch, n) if self.cfg.task == "classify" else (batch, *grid, n)

    @torch.no_grad()
    def set_standardisation(self, x: Tensor) -> None:
        """Mean and std of the training inputs (any leading shape, last axis = in_dim).

        Each std is floored at a tenth of the dimensions' RMS std: a dimension that barely varies (the CLS token
        of a random backbone, collapsed channels) carries no information, and dividing by its tiny std would blow
        a quantized artifact's rounding errors in it up into the logits.
        """
        flat = x.reshape(-1, x.shape[-1]).float()
        std = flat.std(0)
        self.mean.copy_(flat.mean(0))
        self.std.copy_(std.clamp_min(max(0.1 * float(std.pow(2).mean().sqrt()), 1e-6)))
