"""Core ML runtime: MLModel.predict on macOS; elsewhere only the package's metadata can be read. Torch-free."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.base import METADATA_KEY, Runtime, RuntimeUnavailable, parse_metadata, require

NOT_MACOS = ("Core ML prediction needs macOS (Apple's runtime); elsewhere `edgedino verify` checks a package "
             "numerically with edgedino's reference interpreter of the ML program")
T = TypeVar("T")
ARRAY_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64, "INT32": np.int32, "INT8": np.int8}


def read_snapshot(path: Path, read: Callable[[Path], T], attempts: int = 3) -> T:
    """`read(folder)` on one snapshot of the package folder, for a reader that opens several of its files: on
    Linux through the /proc path of an open descriptor of the folder, which keeps naming the folder opened even
    when export exchanges a new one in at `path` meanwhile. If that snapshot was replaced and removed while it
    was read, the new package is read instead. Elsewhere `read(path)`."""
    proc = Path("/proc/self/fd")
    if not proc.is_dir() or not path.is_dir():
        return read(path)
    for attempt in range(attempts):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return read(proc / str(fd))
        except (OSError, EdgeDinoError):
            if attempt + 1 == attempts or not _replaced(path, fd):  # a real error, not a snapshot taken away
                raise
        finally:
            os.close(fd)
    raise AssertionError("unreachable")


def _replaced(path: Path, fd: int) -> bool:
    """Whether the folder at `path` is no longer the one open as `fd`."""
    try:
        now, then = os.stat(path), os.fstat(fd)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)


def model_files(path: Path) -> tuple[Path, Path]:
    """(spec file, folder its @model_path refers to) named by the package's Manifest.json."""
    manifest = path / "Manifest.json"
    if not manifest.is_file():
        raise EdgeDinoError(f"{path}: not a Core ML package (no Manifest.json)")
    try:
        info = json.loads(manifest.read_text())
        spec = path / "Data" / info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
    except (ValueError, KeyError, TypeError) as e:
        raise EdgeDinoError(f"{manifest}: unreadable manifest ({type(e).__name__}: {e})") from None
    if not spec.is_file():
        raise EdgeDinoError(f"{path}: the manifest names {spec.relative_to(path)}, which is missing")
    return spec, spec.parent


def read_package_spec(path: Path):
    """The package's Model protobuf, parsed from its file: no model is compiled or loaded, and nothing in the
    package is written (coremltools' load_spec rewrites Manifest.json on every read)."""
    require("coremltools", "export")
    from coremltools.proto import Model_pb2

    spec_file, _ = model_files(path)
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(spec_file.read_bytes())
    except Exception as e:  # protobuf's DecodeError
        raise EdgeDinoError(f"{spec_file}: not a Core ML model spec ({e})") from None
    return spec


def _metadata(spec, path: Path) -> dict:
    return parse_metadata(spec.description.metadata.userDefined.get(METADATA_KEY) or None, path)


def read_metadata(path: str | Path, shown: str | Path | None = None) -> dict:
    """The edgedino metadata embedded at export ({} for a package edgedino did not make); errors name `shown`."""
    return _metadata(read_package_spec(Path(path)), Path(shown or path))


class CoreMLRuntime(Runtime):
    """An .mlpackage compiled and run by Core ML (all compute units: CPU, GPU, Neural Engine)."""

    kind = "coreml"

    def __init__(self, path: Path):
        ct = require("coremltools", "export")
        spec = read_package_spec(path)
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
