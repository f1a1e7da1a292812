"""edgedino: DINOv3-style backbones from training to the edge.

Importing the package is torch-free; `load_backbone`, `save_backbone`, `create_model` and `export` import torch
on first use, so a device with only `edgedino[runtime]` can use `edgedino.runtime` and `edgedino.track`.
`edgedino.export(model_or_path, target="onnx", precision="int8")` exports and verifies (see edgedino.export).
"""

from edgedino import moved
from edgedino.version import __version__

moved.install()

_LAZY = {
    "load_backbone": "edgedino.checkpoints",
    "save_backbone": "edgedino.checkpoints",
    "create_model": "edgedino.models",
    "list_models": "edgedino.models",
}


def __getattr__(name: str):
    if name == "export":  # the subpackage, which is also the function
        import importlib

        return importlib.import_module("edgedino.export")
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgedino' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY, "export"]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
