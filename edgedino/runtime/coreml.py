"""Core ML runtime: MLModel.predict on macOS; elsewhere only the package's metadata can be read. Torch-free."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.base import METADATA_KEY, Runtime, RuntimeUnavailable, parse_metadata, require

NOT_MACOS = ("Core ML prediction needs macOS (Apple's runtime); elsewhere `edgedino verify` checks a package "
             "numerically with edgedino's reference interpreter of the ML program")
ARRAY_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64, "INT32": np.int32, "INT8": np.int8}


def _spec(path: Path):
    """The package's protobuf spec, read without compiling or loading the model (works on any OS)."""
    ct = require("coremltools", "export")
    try:
        return ct.utils.load_spec(str(path))
    except Exception as e:  # coremltools raises bare Exceptions for unreadable packages
        raise EdgeDinoError(f"{path}: not a readable Core ML package ({e})") from None


def _metadata(spec, path: Path) -> dict:
    return parse_metadata(spec.description.metadata.userDefined.get(METADATA_KEY) or None, path)


def read_metadata(path: str | Path) -> dict:
    """The edgedino metadata embedded at export ({} for a package edgedino did not make)."""
    return _metadata(_spec(Path(path)), Path(path))


class CoreMLRuntime(Runtime):
    """An .mlpackage compiled and run by Core ML (all compute units: CPU, GPU, Neural Engine)."""

    kind = "coreml"

    def __init__(self, path: Path):
        ct = require("coremltools", "export")
        spec = _spec(path)
        (inp,) = spec.description.input
        array_type = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(inp.type.multiArrayType.dataType)
        self.path, self.metadata = path, _metadata(spec, path)
        self.input_name, self.input_shape = inp.name, tuple(inp.type.multiArrayType.shape)
        self.input_dtype = np.dtype(ARRAY_DTYPES[array_type])
        self.output_names = [o.name for o in spec.description.output]
        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.ALL)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.model.predict({self.input_name: self._check_input(x)})
        return {name: np.asarray(out[name], np.float32) for name in self.output_names}


def load(path: str | Path, threads: int | None = None) -> Runtime:
    """Load an .mlpackage for prediction (macOS only). Core ML schedules its own threads: `threads` is unused."""
    if platform.system() != "Darwin":
        raise RuntimeUnavailable(NOT_MACOS)
    return CoreMLRuntime(Path(path))
