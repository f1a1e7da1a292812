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
from edgedino.models.vit import VisionTransformer

FAMILIES = {"vit": VisionTransformer, "convnext": ConvNeXt}


def create_model(model: str | ModelConfig, drop_path: float = 0.0) -> Backbone:
    """A randomly initialised backbone from a preset name or a config."""
    cfg = get_config(model) if isinstance(model, str) else model.checked()
    return FAMILIES[cfg.family](cfg, drop_path=drop_path)


__all__ = [
    "MODELS", "OUTPUT_NAMES", "Backbone", "ConvNeXt", "ConvNeXtConfig", "ModelConfig", "ViTConfig",
    "VisionTransformer", "create_model", "get_config", "list_models", "match_preset",
]
