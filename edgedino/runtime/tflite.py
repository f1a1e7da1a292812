"""TFLite artifacts in ai-edge-litert's Interpreter (CPU, XNNPACK). Torch-free.

Outputs are read from the model's first signature. edgedino artifacts name them "cls", "patch_tokens",
"registers"; if a file's signature names are anything else (e.g. "output_0", ...), they are matched in their
numeric order to the names in metadata["outputs"], which export records in the module's output order.
A file without edgedino metadata keeps its own output names.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.base import METADATA_KEY, Runtime, parse_metadata, require

KNOWN_OUTPUTS = ("cls", "patch_tokens", "registers", "logits")


def read_metadata(path: Path) -> dict:
    """The edgedino metadata stored in the flatbuffer's Metadata entry; {} if there is none."""
    schema = require("ai_edge_litert.schema_py_generated")
    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_KEY.encode():
            return parse_metadata(_buffer_bytes(data, model.Buffers(entry.Buffer())), path)
    return {}


def _buffer_bytes(data: bytes, buffer) -> bytes:
    """A buffer's bytes, whether inside the flatbuffer or appended after it (offset/size)."""
    if buffer.DataLength():
        return buffer.DataAsNumpy().tobytes()
    return data[buffer.Offset():buffer.Offset() + buffer.Size()]


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def output_map(signature_outputs: list[str], metadata: dict) -> dict[str, str]:
    """Signature output name -> edgedino name: by name when they match, else by order of metadata["outputs"].

    A foreign file (no recorded outputs) keeps its own names.
    """
    expected = list(metadata.get("outputs", {}))
    if set(signature_outputs) <= set(KNOWN_OUTPUTS):
        return {name: name for name in KNOWN_OUTPUTS if name in signature_outputs}
    if not expected:
        return {name: name for name in sorted(signature_outputs, key=_natural_key)}
    if len(expected) != len(signature_outputs):
        raise EdgeDinoError(f"cannot match outputs {signature_outputs} to the recorded outputs {expected}")
    return dict(zip(sorted(signature_outputs, key=_natural_key), expected, strict=True))


class LiteRtRuntime(Runtime):
    kind = "litert"

    def __init__(self, path: Path, threads: int | None = None):
        litert = require("ai_edge_litert.interpreter")
        self.path = path
        self.interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)  # verifies the flatbuffer
        self.metadata = read_metadata(path)
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise EdgeDinoError(f"{path.name} has no signature; edgedino runs signature-based .tflite files")
        key = next(iter(signatures))
        self.runner = self.interpreter.get_signature_runner(key)
        inputs = self.runner.get_input_details()
        if len(inputs) != 1:
            raise EdgeDinoError(f"{path.name} has {len(inputs)} inputs; edgedino artifacts take one image")
        (self.input_name, detail), = inputs.items()
        self.input_shape = tuple(int(d) for d in detail["shape_signature"])
        self.input_dtype = np.dtype(detail["dtype"])
        self.outputs = output_map(list(signatures[key]["outputs"]), self.metadata)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.runner(**{self.input_name: self._check_input(x)})
        return {name: np.asarray(out[key], np.float32) for key, name in self.outputs.items()}


def load(path: Path, threads: int | None = None) -> Runtime:
    return LiteRtRuntime(Path(path), threads)
