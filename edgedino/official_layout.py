"""The official DINOv3 key layout's aliases: tensors its state_dict() writes twice under two names.

The official ConvNeXt keeps its final norm in `norm` and again as the last entry of `norms` (three identities
then `norm`, for get_intermediate_layers), so every released ConvNeXt file holds `norms.3.*` beside `norm.*`.
edgedino's modules hold each tensor once: reading drops the alias after checking the copies agree, writing
adds it back so that the official code loads our files with strict=True.
"""

from __future__ import annotations

import torch
from torch import Tensor

from edgedino.errors import CheckpointError

ALIASES: dict[str, dict[str, str]] = {  # family -> {alias key: the key edgedino's module holds}
    "vit": {},
    "convnext": {"norms.3.weight": "norm.weight", "norms.3.bias": "norm.bias"},
}


def drop_aliases(sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """The tensors without their alias copies; a copy that differs from its original is a CheckpointError."""
    out = dict(sd)
    for alias, key in ALIASES[family].items():
        if alias not in out:
            continue
        copy = out.pop(alias)
        if key not in out:
            out[key] = copy
        elif copy.shape != out[key].shape or not torch.equal(copy, out[key]):
            raise CheckpointError(f"{alias!r} and {key!r} differ in the weights: the official {family} stores one "
                                  "tensor under both names, so the file is corrupt or was edited")
    return out


def add_aliases(sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """The tensors plus each alias, appended where the official state_dict() has them (after every module)."""
    return sd | {alias: sd[key] for alias, key in ALIASES[family].items() if key in sd}
