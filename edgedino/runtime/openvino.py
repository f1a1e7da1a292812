"""OpenVINO IR artifacts on the CPU plugin. Torch-free.

Inference precision is pinned to f32 so parity numbers mean the same on every CPU (the plugin would
otherwise pick bf16 on CPUs with AMX/AVX512-BF16); quantized IRs still run their int8 kernels.

Every runtime shares one ov.Core for the life of the process. The CPU plugin of each Core installs its own
alternate signal stack (sigaltstack) on creation and restores the one it found on destruction, so Cores
destroyed in another order than last-in-first-out leave the thread's alternate stack pointing at freed memory;
the next signal with a Python handler (SIGCHLD, SIGINT: Python handlers run on that stack) then kills the
process with SIGSEGV. One Core that is never destroyed keeps the plugin's stack valid; short-lived Cores made
later (NNCF's, during export) save and restore it in nested order.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from edgedino.runtime.base import METADATA_KEY, Runtime, parse_metadata, require


@cache
def core():
    """The process's one ov.Core (see the module docstring)."""
    return require("openvino").Core()


class OpenVINORuntime(Runtime):
    kind = "openvino"

    def __init__(self, path: Path, threads: int | None = None):
        model = core().read_model(str(path))
        self.path = path
        raw = model.get_rt_info([METADATA_KEY]).astype(str) if model.has_rt_info([METADATA_KEY]) else None
        self.metadata = parse_metadata(raw, path)
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core().compile_model(model, "CPU", config)
        port = model.inputs[0]
        self.input_shape = tuple(port.get_partial_shape().to_shape())
        self.input_dtype = np.dtype(port.get_element_type().to_dtype())
        self.output_names = [o.get_any_name() for o in model.outputs]
        self.request = self.compiled.create_infer_request()

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        results = self.request.infer([self._check_input(x)])
        return {name: np.asarray(results[i], np.float32) for i, name in enumerate(self.output_names)}


def load(path: Path, threads: int | None = None) -> Runtime:
    return OpenVINORuntime(path, threads)
