"""DINO loss: cross-entropy between the student's crop distributions and the teacher's centred targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _stack(x: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A list of (B, K) tensors or one (C, B, K) tensor as (C, B, K) float32."""
    x = torch.stack(list(x)) if isinstance(x, (list, tuple)) else x
    if x.dim() != 3:
        raise ValueError(f"expected (crops, batch, prototypes) or a list of (batch, prototypes), got {tuple(x.shape)}")
    return x.float()


class DINOLoss(nn.Module):
    """Mean over (student crop, teacher crop) pairs and images of -sum_k t_k log softmax(s / student_temp)_k."""

    def __init__(self, student_temp: float = 0.1):
        super().__init__()
        self.student_temp = student_temp

    def forward(self, student_logits, teacher_probs, ignore_diagonal: bool = True) -> torch.Tensor:
        """student_logits (S, B, K) or S x (B, K); teacher_probs (T, B, K) or T x (B, K) -> scalar.

        Student crop i and teacher crop i are the same view for i < T (put the global crops first, locals after):
        with `ignore_diagonal` those same-view pairs are left out, as DINOv3 does for the global crops.
        """
        s, t = _stack(student_logits), _stack(teacher_probs)
        if s.shape[1:] != t.shape[1:]:
            raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} differ in batch or prototypes")
        with torch.autocast(s.device.type, enabled=False):  # fp32 even inside a bf16 autocast region
            log_p = F.log_softmax(s / self.student_temp, dim=-1)
            ce = -torch.einsum("sbk,tbk->st", log_p, t) / s.shape[1]  # (S, T): mean over images per pair
        if ignore_diagonal:
            keep = ~torch.eye(s.shape[0], t.shape[0], dtype=torch.bool, device=ce.device)
            ce = ce[keep]
        if ce.numel() == 0:
            raise ValueError("no (student, teacher) crop pair left: one crop each and ignore_diagonal=True")
        return ce.mean()
