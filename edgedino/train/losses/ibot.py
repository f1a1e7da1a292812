"""iBOT loss: the student predicts the teacher's targets for the patches it could not see."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class IBOTLoss(nn.Module):
    """Masked-patch cross-entropy, each image weighted by 1 / its masked count (DINOv2/v3 normalisation)."""

    def __init__(self, student_temp: float = 0.1):
        super().__init__()
        self.student_temp = student_temp

    def forward(self, student_patch_logits: torch.Tensor, teacher_probs: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """student_patch_logits, teacher_probs (M, K) for the masked patches in `mask[mask]` order; mask (N, h*w).

        Returns (1/N) sum_images mean_{its masked patches} CE: an image with 3 masked patches weighs as much as
        one with 100, and unmasked images count in N with zero loss (as in DINOv2/v3).
        """
        mask = mask.flatten(1).bool()
        masked = int(mask.sum())
        if student_patch_logits.shape[0] != masked or teacher_probs.shape != student_patch_logits.shape:
            raise ValueError(f"mask has {masked} masked patches but student {tuple(student_patch_logits.shape)}, "
                             f"teacher {tuple(teacher_probs.shape)}")
        log_p = F.log_softmax(student_patch_logits.float() / self.student_temp, dim=-1)
        ce = -(teacher_probs.float() * log_p).sum(dim=-1)
        per_image = mask.sum(dim=1, keepdim=True).clamp_min(1).float()
        weights = (1.0 / per_image).expand_as(mask)[mask]
        return (ce * weights).sum() / mask.shape[0]
