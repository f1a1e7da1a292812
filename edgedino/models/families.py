"""Backbone families: what differs between ViT and ConvNeXt, declared once per family; the rest asks here.

A family is its config dataclass, its module, a key that tells its tensors apart (official and Hugging Face
layouts), how to read its architecture off them, its Hugging Face key names and config.json, the official
layout's alias keys, and what training asks (a mask token for iBOT, the lr-decay layer of a parameter).
Adding a family: its config and module files, then one `register_family(Family(...))`. Torch-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from edgedino.errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class Family:
    name: str
    title: str  # how messages name it: "ViT", "ConvNeXt"
    config: type  # its config dataclass; config.family names the family
    module: str  # "package.module:Class" of its Backbone, imported (with torch) on first build
    marker: str  # a key that only this family's official-layout tensors hold
    infer: Callable[[dict], object]  # its config, read off official-layout tensor shapes
    # A parameter's lr-decay layer (0 embeddings ... depth + 1 final norm) and the depth of a config; None for a
    # family that has no layer-wise decay (the official trainer decays only models with `blocks`).
    layer_id: Callable[[str, object], int] | None = None
    depth: Callable[[object], int] | None = None
    mask_token: bool = False  # has a mask token: masked-image modelling (iBOT) can train it
    aliases: dict[str, str] = field(default_factory=dict)  # official alias key -> the key the module holds
    hf_marker: str | None = None  # a part of a key only its Hugging Face tensors hold; None: no HF layout
    hf_keys: Callable[[object], list[tuple[str, str]]] | None = None  # (official, hf) key templates of a config
    hf_config: Callable[[object], dict] | None = None  # transformers' config.json for a config
    from_hf_config: Callable[[dict], object] | None = None  # the config from transformers' config.json
    hf_model_type: str = ""  # config.json's model_type

    def build(self, cfg, **kwargs):
        """A randomly initialised module for `cfg`."""
        module, name = self.module.split(":")
        return getattr(importlib.import_module(module), name)(cfg, **kwargs)

    def config_from_dict(self, d: dict):
        """The config back from `config_to_dict`'s JSON form (lists become tuples)."""
        return self.config(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError(f"unknown model family {name!r} (families: {', '.join(FAMILIES)})")
    return FAMILIES[name]


def family_of(sd: dict, hf: bool = False) -> Family:
    """The family whose official-layout (or, with hf, Hugging Face) tensors these are."""
    for family in FAMILIES.values():
        if (hf and family.hf_marker and any(family.hf_marker in k for k in sd)) or (not hf and family.marker in sd):
            return family
    markers = ", ".join(f"{f.hf_marker if hf else f.marker} ({f.name})" for f in FAMILIES.values())
    raise CheckpointError(f"not a DINOv3 backbone: found none of {markers}; first keys: {', '.join(list(sd)[:4])}")


def hf_family(model_type: str) -> Family:
    """The family of a transformers config.json's model_type."""
    found = next((f for f in FAMILIES.values() if f.hf_model_type and f.hf_model_type == model_type), None)
    if found is None:
        known = " or ".join(f.hf_model_type for f in FAMILIES.values() if f.hf_model_type)
        raise CheckpointError(f"config.json has model_type {model_type!r}; expected {known}")
    return found


def _register_builtin() -> None:
    from edgedino.models import family_convnext, family_vit

    for module in (family_vit, family_convnext):
        register_family(module.FAMILY)


_register_builtin()
