"""Export recipes: YAML files that fix a device's target, precision, size and options. The ones shipped in the
package (edgedino/recipes/) are used by name (`--recipe iphone`); any other by its path."""

from __future__ import annotations

from pathlib import Path

from edgedino.errors import EdgeDinoError
from edgedino.export.spec import INPUT_FORMATS
from edgedino.settings_file import check_settings, read_settings

KINDS = {"description": "text", "target": "texts", "precision": "texts", "imgsz": "size", "model": "text",
         "calib": "text", "calib_size": "count", "input_format": "text", "options": "mapping of options",
         "verify_images": "text", "int8_policy": "text"}


SHIPPED = Path(__file__).resolve().parents[1] / "recipes"


def recipe_names() -> list[str]:
    """The names of the recipes shipped in the package."""
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """A shipped recipe's file for its name, else the path given; an error listing the names when it is neither."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if (SHIPPED / f"{name_or_path}.yaml").is_file():
        return SHIPPED / f"{name_or_path}.yaml"
    raise EdgeDinoError(f"recipe not found: {name_or_path} (give a YAML file, or one of the shipped recipes: "
                        f"{', '.join(recipe_names())})")


def load_recipe(name_or_path: str | Path) -> dict:
    """The recipe's settings (a shipped recipe's name or a YAML path) as a dict of export() arguments; an unknown key
    or a value of the wrong kind is an error naming it."""
    path = recipe_path(name_or_path)
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
