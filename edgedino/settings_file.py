"""YAML files of settings (export recipes, benchmark suites): read safely, with one-line errors naming the file,
the place and the key. Never executes anything: `!!python/...` tags are refused as the safe loader does."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgedino.errors import EdgeDinoError

# What a setting may be: a name for the message, and the test a value must pass.
KINDS = {
    "text": lambda v: isinstance(v, str),
    "texts": lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "count": lambda v: type(v) is int and v >= 1,
    "counts": lambda v: (type(v) is int and v >= 1) or (isinstance(v, list) and all(type(x) is int and x >= 1
                                                                                    for x in v)),
    "whole number >= 0": lambda v: type(v) is int and v >= 0,
    "number >= 0": lambda v: type(v) in (int, float) and v >= 0 and v == v,
    "size": lambda v: (type(v) is int and v >= 1) or isinstance(v, str),
    "sizes": lambda v: all((type(x) is int and x >= 1) or isinstance(x, str) for x in (v if isinstance(v, list)
                                                                                          else [v])),
    "yes/no": lambda v: type(v) is bool,
    "mapping of options": lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and type(x) in (str, int, float, bool) for k, x in v.items()),
    "list of settings": lambda v: isinstance(v, list) and all(isinstance(x, dict) and all(isinstance(k, str)
                                                                                          for k in x) for x in v),
}


def _or_null(test):
    return lambda v: v is None or test(v)


KINDS |= {f"{name} or null": _or_null(test) for name, test in list(KINDS.items())}


def read_settings(path: str | Path, what: str) -> dict:
    """The YAML mapping in `path` ({} for an empty file); an EdgeDinoError if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeDinoError(f"cannot read {what} {path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise EdgeDinoError(f"{what} {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EdgeDinoError(f"{what} {path} must be a mapping of settings, not a {type(data).__name__}")
    return data


def check_settings(data: dict, kinds: dict[str, str], what: str) -> None:
    """Every key known (kinds: key -> a name in KINDS) and its value of that kind."""
    unknown = sorted(str(k) for k in set(data) - set(kinds))
    if unknown:
        raise EdgeDinoError(f"{what}: unknown key {unknown[0]!r} (known: {', '.join(sorted(kinds))})")
    for key, value in data.items():
        if not KINDS[kinds[key]](value):
            raise EdgeDinoError(f"{what}: {key} must be a {kinds[key]}, not {value!r}")
