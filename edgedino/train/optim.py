"""AdamW parameter groups as the official DINOv3 trainer builds them: layer-wise lr decay over ViT blocks (none for
ConvNeXt, which has no `blocks`), 0.2x lr on the patch embedding, no weight decay on biases, norms and LayerScale,
the heads' last layers in their own groups (lr 0 while frozen), and gradient clipping per part."""

from __future__ import annotations

import math

import torch
from torch import nn

from edgedino.models import Backbone, get_family


def no_decay(name: str) -> bool:
    """Biases, norm weights and LayerScale keep their size (the official rule; tokens are decayed)."""
    return name.endswith("bias") or "norm" in name or "gamma" in name


def lr_scale(name: str, backbone: Backbone, layer_decay: float, patch_embed_lr: float) -> float:
    """A backbone parameter's lr multiplier: layer_decay ** (depth + 1 - layer) in a family with lr-decay layers
    (edgedino.models.families), x patch_embed_lr on a patch embedding."""
    family, cfg = get_family(backbone.cfg.family), backbone.cfg
    scale = 1.0 if family.layer_id is None else layer_decay ** (family.depth(cfg) + 1 - family.layer_id(name, cfg))
    return scale * patch_embed_lr if name.startswith("patch_embed.") else scale


def param_groups(model: nn.Module, backbone_prefix: str, backbone: Backbone, layer_decay: float,
                 patch_embed_lr: float = 1.0) -> list[dict]:
    """Groups of `model`'s trainable parameters with the `lr_scale`, `wd_scale` and `last_layer` the loop reads."""
    groups: dict[tuple, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        inner = name[len(backbone_prefix):] if name.startswith(backbone_prefix) else None
        lr = lr_scale(inner, backbone, layer_decay, patch_embed_lr) if inner is not None else 1.0
        key = (lr, 0.0 if no_decay(name) else 1.0, "last_layer" in name)
        group = groups.setdefault(key, {"params": [], "names": [], "lr_scale": key[0], "wd_scale": key[1],
                                        "last_layer": key[2]})
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(groups: list[dict], betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW over the groups; lr and weight decay are set every step from the schedules."""
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=0.0,
                             betas=tuple(betas), weight_decay=0.0)


def apply_schedule(opt: torch.optim.Optimizer, sched) -> None:
    """Each group's lr and weight decay from the step's values and the group's scales; the heads' last layers take
    `sched.last_layer_lr` (0 while frozen: the step leaves them, and AdamW's moments still follow their gradients)."""
    for g in opt.param_groups:
        g["lr"] = (sched.last_layer_lr if g["last_layer"] else sched.lr) * g["lr_scale"]
        g["weight_decay"] = sched.weight_decay * g["wd_scale"]


def clip_parts(model: nn.Module) -> list[list[torch.Tensor]]:
    """The trainable parameters of `model` in the parts clipped separately: the children (backbone, each head,
    projections) of every module that holds a backbone (one SSL model, or each distillation student)."""
    owners = [m for m in model.modules() if any(isinstance(c, Backbone) for c in m.children())]
    parts = [[p for p in c.parameters() if p.requires_grad] for m in owners for c in m.children()]
    return [ps for ps in parts if ps]


def clip_per_part(parts: list[list[torch.Tensor]], max_norm: float) -> float:
    """Clip each part's gradient norm to `max_norm` separately (official: backbone, DINO head, iBOT head each);
    returns the largest norm before clipping (0 parts: 0; NaN when any part's norm is not finite)."""
    norms = [float(torch.nn.utils.clip_grad_norm_(ps, max_norm if max_norm > 0 else float("inf")))
             for ps in parts if ps]
    return max(norms, default=0.0) if all(math.isfinite(n) for n in norms) else math.nan
