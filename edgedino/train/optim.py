"""AdamW parameter groups: layer-wise lr decay, no weight decay on norms, biases, tokens and LayerScale."""

from __future__ import annotations

import torch
from torch import nn

from edgedino.models import Backbone


def num_layers(backbone: Backbone) -> int:
    """Depth counted in lr-decay layers: the blocks (ViT) or all stage blocks (ConvNeXt)."""
    if backbone.cfg.family == "vit":
        return backbone.cfg.depth
    return sum(backbone.cfg.depths)


def layer_id(name: str, backbone: Backbone) -> int:
    """Which lr-decay layer a backbone parameter belongs to: 0 = embeddings ... n + 1 = final norm and heads."""
    n = num_layers(backbone)
    parts = name.split(".")
    if backbone.cfg.family == "vit":
        if parts[0] == "blocks":
            return int(parts[1]) + 1
        return n + 1 if parts[0] in ("norm", "cls_norm", "local_cls_norm") else 0
    starts = [sum(backbone.cfg.depths[:i]) for i in range(4)]
    if parts[0] == "stages":
        return starts[int(parts[1])] + int(parts[2]) + 1
    if parts[0] == "downsample_layers":
        return starts[int(parts[1])] + (1 if int(parts[1]) else 0)
    return n + 1


def no_decay(name: str, p: torch.Tensor) -> bool:
    """Norm weights, biases, tokens and LayerScale keep their size (no weight decay)."""
    return p.ndim <= 1 or "token" in name or name.endswith(("gamma", "bias"))


def param_groups(model: nn.Module, backbone_prefix: str, backbone: Backbone, layer_decay: float) -> list[dict]:
    """Groups of `model`'s trainable parameters with `lr_scale` and `wd_scale` that the loop multiplies in."""
    n = num_layers(backbone)
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(backbone_prefix):
            lid = layer_id(name[len(backbone_prefix):], backbone)
        else:
            lid = n + 1
        key = (layer_decay ** (n + 1 - lid), 0.0 if no_decay(name, p) else 1.0)
        group = groups.setdefault(key, {"params": [], "names": [], "lr_scale": key[0], "wd_scale": key[1]})
        group["params"].append(p)
        group["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def build_optimizer(groups: list[dict], betas: tuple[float, float]) -> torch.optim.AdamW:
    """AdamW over the groups; lr and weight decay are set every step from the schedules."""
    return torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=0.0,
                             betas=tuple(betas), weight_decay=0.0)


def apply_schedule(opt: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set each group's lr and weight decay from the step's values and the group's scales."""
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_scale"]
        g["weight_decay"] = weight_decay * g["wd_scale"]
