"""The frozen distillation teacher: a backbone from anything load_backbone reads, with its DINO/iBOT heads if any."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgedino.errors import CheckpointError, ConfigError
from edgedino.models import Backbone
from edgedino.train.checkpoint import require_finite
from edgedino.train.ema import frozen_copy
from edgedino.train.heads import DINOHead


@dataclass(frozen=True)
class HeadShape:
    """DINOHead sizes read off a checkpoint's tensors."""

    out_dim: int
    hidden: int
    bottleneck: int
    layers: int


class Teacher(nn.Module):
    """Frozen backbone (+ DINO head, + iBOT head when the checkpoint has a separate one)."""

    def __init__(self, backbone: Backbone, dino_head: nn.Module | None = None, ibot_head: nn.Module | None = None):
        super().__init__()
        self.backbone, self.dino_head, self.ibot_head = backbone, dino_head, ibot_head

    @property
    def has_heads(self) -> bool:
        return self.dino_head is not None

    def patch_head(self) -> nn.Module:
        return self.ibot_head if self.ibot_head is not None else self.dino_head

    def head_shape(self) -> HeadShape:
        return head_shape({f"dino_head.{k}": v for k, v in self.dino_head.state_dict().items()}, "dino_head.")


def head_shape(sd: dict[str, torch.Tensor], prefix: str) -> HeadShape:
    """Sizes of the DINOHead stored under `prefix` (mlp.0, mlp.2, ... linears, then prototypes)."""
    linears = sorted(int(k[len(prefix) + 4:].split(".")[0]) for k in sd if k.startswith(prefix + "mlp.")
                     and k.endswith(".weight"))
    first = sd[f"{prefix}mlp.{linears[0]}.weight"]
    out_dim, bottleneck = sd[f"{prefix}prototypes"].shape
    return HeadShape(int(out_dim), int(first.shape[0]), int(bottleneck), len(linears))


def _head(sd: dict[str, torch.Tensor], prefix: str, in_dim: int) -> DINOHead | None:
    """The DINOHead stored under `prefix` in a training checkpoint's teacher, or None."""
    if f"{prefix}prototypes" not in sd:
        return None
    s = head_shape(sd, prefix)
    head = DINOHead(in_dim, s.out_dim, s.hidden, s.bottleneck, s.layers)
    try:
        head.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
    except RuntimeError as e:
        raise CheckpointError(f"the teacher's {prefix.rstrip('.')} does not fit a DINO head: {e}") from None
    return head


def read_heads(path: str | Path | None, in_dim: int) -> tuple[DINOHead | None, DINOHead | None]:
    """(DINO head, iBOT head) of an edgedino/official training checkpoint's teacher; (None, None) for a backbone."""
    from edgedino.checkpoints import _torch_load

    if path is None or not Path(path).is_file() or Path(path).suffix == ".safetensors":
        return None, None
    obj = _torch_load(Path(path))
    teacher = obj.get("teacher") if isinstance(obj, dict) else None
    if not isinstance(teacher, dict):
        return None, None
    return _head(teacher, "dino_head.", in_dim), _head(teacher, "ibot_head.", in_dim)


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
