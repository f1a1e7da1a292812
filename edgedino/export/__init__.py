"""Export backbones to ONNX, OpenVINO, Core ML and TFLite, each artifact verified against PyTorch."""

from edgedino.export.exporter import ArtifactResult, ExportResult, export
from edgedino.export.spec import PRECISIONS, THRESHOLDS, ExportSpec

__all__ = ["ArtifactResult", "ExportResult", "ExportSpec", "PRECISIONS", "THRESHOLDS", "export"]
