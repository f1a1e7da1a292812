"""Export recipes: YAML files that fix a device's target, precision, size and options (see export/)."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgedino.errors import EdgeDinoError

KEYS = {"description", "target", "precision", "imgsz", "model", "calib", "calib_size", "input_format", "options",
        "verify_images", "int8_policy"}


def load_recipe(path: str | Path) -> dict:
    """The recipe's settings as a dict of export() arguments; unknown keys are an error naming them."""
    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"recipe not found: {path}")
    try:
        recipe = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise EdgeDinoError(f"recipe {path} is not valid YAML: {e}") from None
    if not isinstance(recipe, dict):
        raise EdgeDinoError(f"recipe {path} must be a mapping of settings")
    unknown = sorted(set(recipe) - KEYS)
    if unknown:
        raise EdgeDinoError(f"recipe {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    recipe.pop("description", None)
    for key in ("target", "precision"):
        if isinstance(recipe.get(key), str):
            recipe[key] = [recipe[key]]
    return recipe
