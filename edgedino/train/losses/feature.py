"""Feature targets for distillation: the student's CLS and patch tokens match the teacher's, whatever the grids.

Used when the teacher ships without DINO/iBOT heads (the released DINOv3 checkpoints): the student's tokens, through
a learned projection when the widths differ, match the teacher's with cosine distance + smooth-L1, and the teacher's
patch grid is first brought onto the student's (ConvNeXt is stride 32, the ViTs stride 16, a 2x teacher twice the
grid): each student patch gets the mean of the teacher patches it covers, bicubic when the grids do not nest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgedino.train.losses.gram import resize_grid


def projection(student_dim: int, teacher_dim: int) -> nn.Module:
    """A learned linear map student width -> teacher width; the identity when they are equal."""
    return nn.Identity() if student_dim == teacher_dim else nn.Linear(student_dim, teacher_dim)


def align_grid(patches: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Teacher grid (N, h, w, D) on the student grid (N, h2, w2, D): the mean over covered patches when h2 | h, w2 | w.

    A student patch at stride 32 covers exactly 2 x 2 teacher patches at stride 16 (4 x 4 for a 2x teacher), and
    the mean of their centres is its centre: the area mean is the aligned target. Other ratios fall back to bicubic.
    """
    if patches.dim() != 4:
        raise ValueError(f"expected a patch grid (N, h, w, D), got {tuple(patches.shape)}")
    h, w = patches.shape[1:3]
    h2, w2 = size_hw
    if (h, w) == (h2, w2):
        return patches
    if h % h2 or w % w2:
        return resize_grid(patches, (h2, w2))
    grid = patches.permute(0, 3, 1, 2)
    pooled = F.avg_pool2d(grid.float(), kernel_size=(h // h2, w // w2))
    return pooled.permute(0, 2, 3, 1).to(patches.dtype)


def match_loss(student: torch.Tensor, teacher: torch.Tensor, cosine: float, smooth_l1: float) -> torch.Tensor:
    """cosine * mean(1 - cos(s, t)) + smooth_l1 * mean(smooth-L1(s, t)) over tokens; zero when s == t."""
    if student.shape != teacher.shape:
        raise ValueError(f"student tokens {tuple(student.shape)} and teacher tokens {tuple(teacher.shape)} differ "
                         "(project the student and align the teacher grid first)")
    with torch.autocast(student.device.type, enabled=False):  # fp32 distances inside a bf16 autocast region
        s, t = student.float().flatten(0, -2), teacher.float().flatten(0, -2)
        loss = s.new_zeros(())
        if cosine:
            loss = loss + cosine * (1 - F.cosine_similarity(s, t, dim=-1, eps=1e-6)).mean()
        if smooth_l1:
            loss = loss + smooth_l1 * F.smooth_l1_loss(s, t)
        return loss


def feature_loss(student_cls: torch.Tensor, student_patches: torch.Tensor, teacher_cls: torch.Tensor,
                 teacher_patches: torch.Tensor, cosine: float = 1.0, smooth_l1: float = 1.0) -> dict[str, torch.Tensor]:
    """{"cls", "patch"}: projected student tokens (N, D), (N, h, w, D) against the teacher's, its grid aligned."""
    target = align_grid(teacher_patches, tuple(student_patches.shape[1:3]))
    return {"cls": match_loss(student_cls, teacher_cls, cosine, smooth_l1),
            "patch": match_loss(student_patches, target, cosine, smooth_l1)}


@torch.no_grad()
def patch_cosine(student_patches: torch.Tensor, teacher_patches: torch.Tensor) -> float:
    """Mean cosine between projected student patch tokens and the teacher's, aligned to the student grid."""
    target = align_grid(teacher_patches, tuple(student_patches.shape[1:3]))
    return float(F.cosine_similarity(student_patches.float(), target.float(), dim=-1).mean())
