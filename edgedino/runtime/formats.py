"""The artifact formats edgedino writes and runs: one row each, read by the exporter, the runtime loader, the
benchmark, the command line and the plots. Torch-free.

Adding a format is one row here and its two modules: an export module that defines and registers a `Target`
(edgedino.export.target) named like the row, and a runtime module with `load(path, threads) -> Runtime`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    name: str  # the target name users type: --target onnx
    suffix: str  # the artifact's file (or package folder) suffix
    runtime: str  # module defining load(path, threads) -> Runtime
    exporter: str  # module defining and registering the export Target
    side_files: tuple[str, ...] = ()  # suffixes of files published with the artifact (OpenVINO's .bin)
    folder: bool = False  # the artifact is a package folder, not a file
    platforms: tuple[str, ...] = ()  # sys.platform values its runtime runs on; () for every platform
    colour: str = "tab:red"  # its colour in benchmark plots

    def unavailable(self) -> str | None:
        """Why artifacts of this format cannot run on this machine, or None if they can."""
        if self.platforms and sys.platform not in self.platforms:
            return f"{self.suffix} artifacts run on {', '.join(self.platforms)} only (this is {sys.platform})"
        return None


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ".onnx", "edgedino.runtime.onnx", "edgedino.export.onnx", colour="tab:blue"),
    Format("openvino", ".xml", "edgedino.runtime.openvino", "edgedino.export.openvino", side_files=(".bin",),
           colour="tab:purple"),
    Format("coreml", ".mlpackage", "edgedino.runtime.coreml", "edgedino.export.coreml.convert", folder=True,
           platforms=("darwin",), colour="tab:green"),
    Format("tflite", ".tflite", "edgedino.runtime.tflite", "edgedino.export.tflite", colour="tab:orange"),
)}
DEFAULT_TARGET = "onnx"  # what `edgedino export` makes when no target is named: it runs everywhere

# Weights files are not artifacts: they run through PyTorch.
WEIGHTS_SUFFIXES = (".pt", ".pth", ".safetensors")
PYTORCH_RUNTIME = "edgedino.runtime.pytorch"


def format_of(path: str | Path) -> Format | None:
    """The format whose suffix the path has, or None (a weights file, or something else)."""
    name = Path(path).name
    return next((f for f in FORMATS.values() if name.endswith(f.suffix)), None)


def target_names() -> str:
    """The target names for help texts and messages: 'onnx, openvino, coreml, tflite'."""
    return ", ".join(FORMATS)
