"""One interface over every runtime edgedino artifacts run in. Torch-free."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError

METADATA_KEY = "edgedino"  # every artifact stores its metadata as one JSON string under this name


class RuntimeUnavailable(EdgeDinoError):
    """The runtime for an artifact is not installed, or cannot run on this platform."""


class Runtime:
    """A loaded artifact: `run(x)` maps one input array to the named outputs ("cls", "patch_tokens", ...)."""

    kind: str = ""  # "onnxruntime", "openvino", "litert", "coreml"
    path: Path
    metadata: dict  # the edgedino metadata embedded at export ({} for foreign files)
    input_shape: tuple[int, ...]
    input_dtype: np.dtype

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if tuple(x.shape) != tuple(self.input_shape) and not any(d in (-1, None) for d in self.input_shape):
            raise EdgeDinoError(f"{self.path.name} takes input of shape {tuple(self.input_shape)}, got {x.shape}")
        return np.ascontiguousarray(x, dtype=self.input_dtype)


# artifact suffix -> module under edgedino.runtime that defines load(path, threads) -> Runtime
BACKENDS = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite", ".mlpackage": "coreml"}


# runtimes that exist on some platforms only (sys.platform values)
PLATFORMS = {".mlpackage": ("darwin",)}


def unavailable_reason(suffix: str) -> str | None:
    """Why artifacts with this suffix cannot run on this machine, or None if they can."""
    import sys

    allowed = PLATFORMS.get(suffix)
    if allowed and sys.platform not in allowed:
        return f"{suffix} artifacts run on {', '.join(allowed)} only (this is {sys.platform})"
    return None


def load(path: str | Path, threads: int | None = None) -> Runtime:
    """Load any artifact edgedino exports in the runtime it was made for."""
    path = Path(path)
    if not path.exists():
        raise EdgeDinoError(f"artifact not found: {path}")
    if path.suffix not in BACKENDS:
        raise EdgeDinoError(f"{path}: unknown artifact type {path.suffix!r} (known: {', '.join(BACKENDS)})")
    backend = importlib.import_module(f"edgedino.runtime.{BACKENDS[path.suffix]}")
    return backend.load(path, threads)


def require(module: str, extra: str = "runtime"):
    """Import a runtime package or raise RuntimeUnavailable naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeUnavailable(f"{module} is not installed ({e}): pip install 'edgedino[{extra}]'") from None
