"""Export recipes: YAML files that fix a device's target, precision, size and options (see export/)."""

from __future__ import annotations

from pathlib import Path

from edgedino.errors import EdgeDinoError
from edgedino.export.spec import INPUT_FORMATS
from edgedino.settings_file import check_settings, read_settings

KINDS = {"description": "text", "target": "texts", "precision": "texts", "imgsz": "size", "model": "text",
         "calib": "text", "calib_size": "count", "input_format": "text", "options": "mapping of options"}


def load_recipe(path: str | Path) -> dict:
    """The recipe's settings as a dict of export() arguments; an unknown key or a value of the wrong kind is an
    error naming it."""
    recipe = read_settings(path, "recipe")
    check_settings(recipe, KINDS, f"recipe {path}")
    if recipe.get("input_format", INPUT_FORMATS[0]) not in INPUT_FORMATS:
        raise EdgeDinoError(f"recipe {path}: input_format must be one of {', '.join(INPUT_FORMATS)}, "
                            f"not {recipe['input_format']!r}")
    recipe.pop("description", None)
    for key in ("target", "precision"):
        if isinstance(recipe.get(key), str):
            recipe[key] = [recipe[key]]
    return recipe
