"""Modules that moved, still importable under their old names (with a DeprecationWarning) until edgedino 0.3."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "edgedino.export.coreml_calib": "edgedino.export.coreml.calibration",
    "edgedino.export.coreml_check": "edgedino.export.coreml.numeric_check",
    "edgedino.export.coreml_checks": "edgedino.export.coreml.static_checks",
    "edgedino.export.coreml_consts": "edgedino.export.coreml.constants",
    "edgedino.export.coreml_interp": "edgedino.export.coreml.interpreter",
    "edgedino.export.verify": "edgedino.export.parity",
    "edgedino.runtime.head": "edgedino.runtime.task_head",
    "edgedino.train.checkpoint": "edgedino.train.run_state",
    "edgedino.train.distill_run": "edgedino.train.distill",
    "edgedino.train.heads": "edgedino.train.projection_heads",
    "edgedino.train.ssl": "edgedino.train.pretrain_step",
}


def new_name(name: str) -> str | None:
    """The module's name now, for a moved module or a module inside a moved package; None if it did not move."""
    old = next((o for o in MOVED if name == o or name.startswith(o + ".")), None)
    return None if old is None else MOVED[old] + name[len(old):]


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as a module holding the new module's names."""

    def find_spec(self, name, path, target=None):
        new = new_name(name)
        if new is None:
            return None
        return importlib.util.spec_from_loader(name, self, is_package=hasattr(importlib.import_module(new),
                                                                               "__path__"))

    def exec_module(self, module) -> None:
        new = new_name(module.__name__)
        warnings.warn(f"{module.__name__} is now {new}; the old name goes in edgedino 0.3", DeprecationWarning,
                      stacklevel=2)
        module.__dict__.update({k: v for k, v in vars(importlib.import_module(new)).items()
                                if not k.startswith("__")})


def forwarding(old: str, new: str):
    """A module `__getattr__` for `old`, whose names now live in module `new`: each is found there, with a
    DeprecationWarning, until edgedino 0.3."""

    def __getattr__(name: str):
        module = importlib.import_module(new)
        if name.startswith("__") or not hasattr(module, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old}.{name} is now {new}.{name}; the old name goes in edgedino 0.3", DeprecationWarning,
                      stacklevel=2)
        return getattr(module, name)

    return __getattr__


def install() -> None:
    if not any(isinstance(f, _OldNames) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldNames())
