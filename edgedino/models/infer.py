"""The architecture official-layout tensors were made for, read off their names and shapes by their family."""

from __future__ import annotations

from edgedino.errors import CheckpointError
from edgedino.models.config import ModelConfig
from edgedino.models.families import family_of


def infer_config(sd: dict) -> ModelConfig:
    """The architecture these official-layout tensors were made for: their family reads it off their shapes."""
    return family_of(sd).infer(sd)


def check_family(cfg: ModelConfig, sd: dict) -> ModelConfig:
    """`cfg`, when the weights are of its family; else a CheckpointError naming both."""
    found = family_of(sd)
    if found.name != cfg.family:
        raise CheckpointError(f"the weights are a {found.title} checkpoint, but the model {cfg.name} is a {cfg.family}")
    return cfg
