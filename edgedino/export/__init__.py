"""Export backbones to ONNX, OpenVINO, Core ML and TFLite, each artifact verified against PyTorch.

The package is also the function: `edgedino.export(model_or_path, target="onnx", precision="int8")`.
`export` and its results import torch on first use, so the torch-free parts (spec, recipes) stay light.
"""

import sys
import types

from edgedino.export.spec import PRECISIONS, THRESHOLDS, ExportSpec

_LAZY = {"export", "export_model", "ExportResult", "ArtifactResult"}


def __getattr__(name: str):
    if name in _LAZY:
        from edgedino.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'edgedino.export' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """`edgedino.export(...)` calls `export_model`; `edgedino.export.export` stays the full-option function."""

    def __call__(self, model_or_path, target="onnx", precision="fp32", **options):
        from edgedino.export.exporter import export_model

        return export_model(model_or_path, target, precision, **options)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["ArtifactResult", "ExportResult", "ExportSpec", "PRECISIONS", "THRESHOLDS", "export", "export_model"]
