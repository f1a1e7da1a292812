"""Gram anchoring (DINOv3): keep the student's patch-to-patch similarities close to a frozen Gram teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(N, P, D) or a grid (N, h, w, D) as (N, P, D) float32."""
    if x.dim() == 4:
        x = x.flatten(1, 2)
    if x.dim() != 3:
        raise ValueError(f"expected patch tokens (N, P, D) or (N, h, w, D), got {tuple(x.shape)}")
    return x.float()


def gram_loss(student_patches: torch.Tensor, teacher_patches: torch.Tensor) -> torch.Tensor:
    """MSE between per-image Gram matrices of L2-normalised patch features; zero when the features agree."""
    s, t = _tokens(student_patches), _tokens(teacher_patches)
    if s.shape[:2] != t.shape[:2]:
        raise ValueError(f"student {tuple(s.shape)} and Gram teacher {tuple(t.shape)} differ in images or patches "
                         "(resize the teacher's grid with resize_grid)")
    with torch.autocast(s.device.type, enabled=False):  # fp32 Gram matrices even inside a bf16 autocast region
        s, t = F.normalize(s, dim=-1), F.normalize(t, dim=-1)
        return F.mse_loss(s @ s.transpose(1, 2), t @ t.transpose(1, 2))


def resize_grid(patches: torch.Tensor, size_hw: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Patch grid (N, h, w, D) resampled to (N, h2, w2, D), bicubic (the Gram teacher's grid onto the student's:
    official without antialiasing)."""
    if patches.dim() != 4:
        raise ValueError(f"expected a patch grid (N, h, w, D), got {tuple(patches.shape)}")
    if tuple(patches.shape[1:3]) == tuple(size_hw):
        return patches
    grid = patches.permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(size_hw), mode="bicubic", align_corners=False, antialias=antialias)
    return grid.permute(0, 2, 3, 1).to(patches.dtype)
