"""Export recipes: YAML files that fix a device's target, precision, size and options. The ones shipped in the
package (edgedino/recipes/) are used by name (`--recipe iphone`); any other by its path."""

from __future__ import annotations

from pathlib import Path

from edgedino.errors import EdgeDinoError, did_you_mean
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
    shipped = SHIPPED / f"{name_or_path}.yaml"
    if str(name_or_path) != path.name or not shipped.is_file():  # ./iphone is a path, never the shipped recipe
        shipped = None
    if shipped and path.exists():
        raise EdgeDinoError(f"recipe {name_or_path} is both a shipped recipe and a file here: give ./{name_or_path} "
                            "for the file, or run from another folder for the shipped one")
    if path.is_file():
        return path
    if shipped:
        return shipped
    if path.exists():
        raise EdgeDinoError(f"recipe {name_or_path} is {'a folder' if path.is_dir() else 'not a regular file'}: "
                            "give a YAML file")
    hint = did_you_mean(str(name_or_path), recipe_names())
    raise EdgeDinoError(f"recipe not found: {name_or_path}{hint} (give a YAML file, or one of the shipped recipes: "
                        f"{', '.join(recipe_names())})")


def load_recipe(name_or_path: str | Path) -> dict:
    """The recipe's settings (a shipped recipe's name or a YAML path) as a dict of export() arguments; an unknown key
    or a value of the wrong kind is an error naming it."""
    path = recipe_path(name_or_path)
    recipe = read_settings(path, "recipe")
    if not recipe:
        raise EdgeDinoError(f"recipe {path} is empty: it sets nothing (known keys: {', '.join(sorted(KINDS))})")
    check_settings(recipe, KINDS, f"recipe {path}")
    if recipe.get("input_format", INPUT_FORMATS[0]) not in INPUT_FORMATS:
        raise EdgeDinoError(f"recipe {path}: input_format must be one of {', '.join(INPUT_FORMATS)}, "
                            f"not {recipe['input_format']!r}")
    recipe.pop("description", None)
    for key in ("target", "precision"):
        if isinstance(recipe.get(key), str):
            recipe[key] = [recipe[key]]
    return recipe
