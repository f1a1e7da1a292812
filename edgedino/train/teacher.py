"""The frozen distillation teacher: a backbone from anything load_backbone reads, with its DINO/iBOT heads if any."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from edgedino.errors import CheckpointError, ConfigError
from edgedino.models import Backbone
from edgedino.train.ema import frozen_copy
from edgedino.train.projection_heads import DINOHead, HeadShape
from edgedino.train.run_state import require_finite


class Teacher(nn.Module):
    """Frozen backbone (+ DINO head, + iBOT head when the checkpoint has a separate one)."""

    def __init__(self, backbone: Backbone, dino_head: DINOHead | None = None, ibot_head: DINOHead | None = None):
        super().__init__()
        self.backbone, self.dino_head, self.ibot_head = backbone, dino_head, ibot_head

    @property
    def has_heads(self) -> bool:
        return self.dino_head is not None

    def patch_head(self) -> nn.Module:
        return self.ibot_head if self.ibot_head is not None else self.dino_head


def _head(sd: dict[str, torch.Tensor], prefix: str, in_dim: int, norm_last_layer: bool) -> DINOHead | None:
    """The head stored under `prefix` in a training checkpoint's teacher, with its own sizes, or None."""
    shape = HeadShape.read(sd, prefix)
    if shape is None:
        return None
    head = DINOHead(in_dim, shape, norm_last_layer)
    try:
        head.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"the teacher's {prefix.rstrip('.')} does not fit a DINO head: {first}") from None
    return head


def read_heads(path: str | Path | None, in_dim: int) -> tuple[DINOHead | None, DINOHead | None]:
    """(DINO head, iBOT head) of a training checkpoint's teacher, each with its own sizes and maths (official:
    a free last layer; edgedino: as its config says); (None, None) for a backbone file."""
    from edgedino.checkpoints import read_teacher

    if path is None:
        return None, None
    found = read_teacher(path, parts=("dino_head.", "ibot_head."))
    if found is None:
        return None, None
    sd, config = found
    norm = bool((config or {}).get("heads", {}).get("norm_last_layer", False))
    return _head(sd, "dino_head.", in_dim, norm), _head(sd, "ibot_head.", in_dim, norm)


def load_teacher(weights: str | None, model: str | None, targets: str, device: str,
                 seed: int = 0) -> tuple[Teacher, str]:
    """The frozen teacher and the targets it will give ("heads" or "features"), said on stderr.

    Without weights the teacher is random from `seed` (smoke tests): the same teacher again on --resume."""
    from edgedino.checkpoints import RandomWeightsWarning, load_backbone

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        backbone = load_backbone(weights, model or (None if weights else "vitl16"))
    if weights is None:
        print(f"note: no --teacher-weights: the teacher ({backbone.cfg.name}) has random weights", file=sys.stderr)
    require_finite(backbone, f"the teacher {weights}")
    dino, ibot = read_heads(weights, backbone.embed_dim) if targets != "features" else (None, None)
    for head in (dino, ibot):
        if head is not None:
            require_finite(head, f"the teacher {weights}")
    teacher = frozen_copy(Teacher(backbone, dino, ibot)).to(device)
    if targets == "heads" and not teacher.has_heads:
        raise ConfigError(f"distill.targets=heads, but the teacher {weights} has no DINO head (a backbone file, "
                          "e.g. a released DINOv3 checkpoint): use targets=features or a training checkpoint")
    kind = "heads" if teacher.has_heads else "features"
    if kind == "heads":
        print("targets: the teacher's DINO/iBOT heads (Sinkhorn-centred prototype scores) -> students' DINO, iBOT "
              "and KoLeo losses", file=sys.stderr)
    else:
        why = "" if targets == "features" else "the teacher has no DINO/iBOT heads, so "
        print(f"targets: {why}feature targets: students match the teacher's CLS and patch tokens (cosine + "
              "smooth-L1 through a learned projection, teacher grid aligned to the student's) plus KoLeo",
              file=sys.stderr)
    return teacher, kind
