"""OpenVINO IR artifacts on the CPU plugin. Torch-free.

Inference precision is pinned to f32 so parity numbers mean the same on every CPU (the plugin would
otherwise pick bf16 on CPUs with AMX/AVX512-BF16); quantized IRs still run their int8 kernels. `precision="bf16"`
asks for bf16 compute of an fp32 IR (OpenVINO's inference precision hint) where the CPU has it
(`bf16_unsupported` says why not), and fails rather than run f32 if the plugin picks another precision.

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

from edgedino.errors import EdgeDinoError
from edgedino.runtime.base import METADATA_KEY, Runtime, parse_metadata, require


@cache
def core():
    """The process's one ov.Core (see the module docstring)."""
    return require("openvino").Core()


class OpenVINORuntime(Runtime):
    kind = "openvino"

    def __init__(self, path: Path, threads: int | None = None, precision: str = "f32"):
        model = core().read_model(str(path))
        self.path = path
        raw = model.get_rt_info([METADATA_KEY]).astype(str) if model.has_rt_info([METADATA_KEY]) else None
        self.metadata = parse_metadata(raw, path)
        if precision == "bf16" and bf16_unsupported():
            raise EdgeDinoError(bf16_unsupported())
        config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core().compile_model(model, "CPU", config)
        chosen = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if chosen != precision:
            raise EdgeDinoError(f"OpenVINO compiled {path.name} for {chosen} compute, not the bf16 asked")
        port = model.inputs[0]
        self.input_shape = tuple(port.get_partial_shape().to_shape())
        self.input_dtype = np.dtype(port.get_element_type().to_dtype())
        self.output_names = [o.get_any_name() for o in model.outputs]
        self.request = self.compiled.create_infer_request()

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        results = self.request.infer([self._check_input(x)])
        return {name: np.asarray(results[i], np.float32) for i, name in enumerate(self.output_names)}


def bf16_unsupported() -> str | None:
    """Why this CPU cannot run bf16 compute (OpenVINO lists BF16 in its CPU capabilities where AMX-BF16 or
    AVX512-BF16 is present), or None where it can."""
    capabilities = core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in capabilities:
        return None
    return f"this CPU has no AMX-BF16 or AVX512-BF16 (OpenVINO CPU capabilities: {', '.join(capabilities)})"


def load(path: Path, threads: int | None = None, precision: str = "f32") -> Runtime:
    return OpenVINORuntime(path, threads, precision)
