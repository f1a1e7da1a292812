"""Export backbones to ONNX, OpenVINO, Core ML and TFLite, each artifact verified against PyTorch.

`export` and its results import torch on first use, so the torch-free parts (spec, recipes) stay light.
"""

from edgedino.export.spec import PRECISIONS, THRESHOLDS, ExportSpec

_LAZY = {"export", "ExportResult", "ArtifactResult"}


def __getattr__(name: str):
    if name in _LAZY:
        from edgedino.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'edgedino.export' has no attribute {name!r}")


__all__ = ["ArtifactResult", "ExportResult", "ExportSpec", "PRECISIONS", "THRESHOLDS", "export"]
