"""Numeric checks of Core ML packages on any OS: the reference interpreter everywhere, Apple's runtime on macOS.

Torch-free. The interpreter (edgedino.export.coreml.interpreter) evaluates the saved ML program op by op in numpy, so
Linux and Linux CI get the same per-output parity as the other targets; on macOS MLModel.predict is checked too,
which also checks the interpreter against Apple's runtime.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edgedino.export.coreml.interpreter import Program
from edgedino.runtime.base import Runtime
from edgedino.runtime.coreml import read_metadata, read_snapshot

INTERPRETER = "reference interpreter of the ML program (not Apple's runtime)"
APPLE = "Core ML (MLModel.predict, Apple's runtime)"


class InterpreterRuntime(Runtime):
    """A saved .mlpackage run by the reference interpreter, behind the same interface as every runtime."""

    kind = "coreml-interpreter"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.program, self.metadata = read_snapshot(  # program, weights and metadata of one package
            self.path, lambda package: (Program(package, self.path.name), read_metadata(package, self.path)))
        (self.input_name, (mil_type, shape)), *rest = self.program.inputs.items()
        self.input_shape = tuple(shape) if shape is not None else (-1, 3, -1, -1)
        self.input_dtype = np.dtype(np.float16 if mil_type == "FLOAT16" else np.float32)
        self.output_names = self.program.output_names

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.program.run({self.input_name: self._check_input(x)})


def runtimes(path: str | Path) -> list[tuple[str, Runtime]]:
    """(label, runtime) for every way this machine can run the package: the interpreter, and Apple's on macOS."""
    found: list[tuple[str, Runtime]] = [(INTERPRETER, InterpreterRuntime(path))]
    if platform.system() == "Darwin":
        from edgedino.runtime.coreml import load

        found.append((APPLE, load(path)))
    return found
