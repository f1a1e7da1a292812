"""The official DINOv3 key layout's aliases: tensors its state_dict() writes twice under two names.

Each family declares its aliases (edgedino.models.families; the official ConvNeXt keeps its final norm in `norm`
and again as `norms.3`). edgedino's modules hold each tensor once: reading drops the alias after checking the
copies agree, writing adds it back so that the official code loads our files with strict=True.
"""

from __future__ import annotations

import torch
from torch import Tensor

from edgedino.errors import CheckpointError
from edgedino.models.families import get_family


def drop_aliases(sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """The tensors without their alias copies; a copy that differs from its original is a CheckpointError."""
    out = dict(sd)
    for alias, key in get_family(family).aliases.items():
        if alias not in out:
            continue
        copy = out.pop(alias)
        if key not in out:
            out[key] = copy
        elif copy.shape != out[key].shape or not torch.equal(copy, out[key]):
            raise CheckpointError(f"{alias!r} and {key!r} differ in the weights: the official {family} stores one "
                                  "tensor under both names, so the file is corrupt or was edited")
    return out


def __getattr__(name: str):
    """ALIASES, the old table of every family's aliases: deprecated (each Family declares its own)."""
    if name != "ALIASES":
        raise AttributeError(f"module 'edgedino.official_layout' has no attribute {name!r}")
    import warnings

    from edgedino.models.families import FAMILIES

    warnings.warn("edgedino.official_layout.ALIASES is now edgedino.models.get_family(name).aliases; the old name "
                  "goes in edgedino 0.3", DeprecationWarning, stacklevel=2)
    return {f.name: f.aliases for f in FAMILIES.values()}


def add_aliases(sd: dict[str, Tensor], family: str) -> dict[str, Tensor]:
    """The tensors plus each alias, appended where the official state_dict() has them (after every module)."""
    return sd | {alias: sd[key] for alias, key in get_family(family).aliases.items() if key in sd}
