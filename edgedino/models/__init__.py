"""Backbones and their registry of named configs."""

from __future__ import annotations

from edgedino.models.backbone import OUTPUT_NAMES, Backbone
from edgedino.models.config import (
    MODELS,
    ConvNeXtConfig,
    ModelConfig,
    ViTConfig,
    get_config,
    list_models,
    match_preset,
)
from edgedino.models.convnext import ConvNeXt
from edgedino.models.families import FAMILIES, Family, get_family, register_family
from edgedino.models.vit import VisionTransformer


def create_model(model: str | ModelConfig, drop_path: float = 0.0) -> Backbone:
    """A randomly initialised backbone from a preset name or a config."""
    cfg = get_config(model) if isinstance(model, str) else model.checked()
    return get_family(cfg.family).build(cfg, drop_path=drop_path)


__all__ = [
    "FAMILIES", "MODELS", "OUTPUT_NAMES", "Backbone", "ConvNeXt", "ConvNeXtConfig", "Family", "ModelConfig",
    "ViTConfig", "VisionTransformer", "create_model", "get_config", "get_family", "list_models", "match_preset",
    "register_family",
]
