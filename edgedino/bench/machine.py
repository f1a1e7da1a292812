"""What machine and which tools a benchmark ran on, so readers can tell why numbers differ."""

from __future__ import annotations

import os
import platform
from importlib import metadata

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
         "asimd", "asimddp", "i8mm")
PACKAGES = ("edgedino", "torch", "numpy", "onnx", "onnxruntime", "openvino", "nncf", "coremltools", "litert-torch",
            "ai-edge-litert", "ai-edge-quantizer", "opencv-contrib-python")


def cpu() -> dict:
    """CPU model, logical cores, and the SIMD/matrix flags that decide int8 and fp32 speed."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in FLAGS if f in flags]}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the system keeps none (Windows)."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def describe() -> dict:
    return {"cpu": cpu(), "os": f"{platform.system()} {platform.release()}", "machine": platform.machine()}
