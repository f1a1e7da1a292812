"""LiteRT's own op profiler, driven through the C API of the libLiteRt.so that ai-edge-litert ships.

ai-edge-litert's Python API (2.3) has no profiler readout; its C library does: a compiled model built with the
"runtime_options_string" option `enable_profiling = true` records every op (XNNPACK's own operators included) and
LiteRtGetProfileSummary returns the tables LiteRT's benchmark_model prints. The compiled model runs on the CPU
accelerator, which is the XNNPACK delegate the Interpreter of edgedino.runtime.tflite applies by default.
Only opaque handles and byte buffers cross the C boundary (no struct layout is assumed), and every status is
checked: a failed call is an error, never an empty profile.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError

CPU = 1  # kLiteRtHwAcceleratorCpu
LOCK_READ, LOCK_WRITE = 0, 1  # LiteRtTensorBufferLockMode
TENSOR_TYPE_BYTES = 512  # room for a LiteRtRankedTensorType, whose layout this module never reads
P = ctypes.c_void_p


@dataclass
class ProfiledRun:
    summary: str  # LiteRT's profile summary of the timed runs
    runs: int
    outputs: list[bytes]  # the signature's outputs after the last run, in signature order


def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    """libLiteRt from the installed ai-edge-litert, and the C library whose malloc/free it uses."""
    try:
        import ai_edge_litert

        folder = Path(ai_edge_litert.__file__).parent
        path = next((p for p in (folder / f"libLiteRt{s}" for s in (".so", ".dylib")) if p.is_file()), None)
        if path is None:
            raise EdgeDinoError(f"LiteRT's C library (libLiteRt) is not in this ai-edge-litert install ({folder})")
        lib, libc = ctypes.CDLL(str(path)), ctypes.CDLL(None)
        for name in USED:
            getattr(lib, name)
    except (ImportError, OSError, AttributeError, TypeError) as e:
        raise EdgeDinoError(f"LiteRT's C API is not usable here: {type(e).__name__}: {e}") from None
    libc.strdup.restype, libc.strdup.argtypes = P, [ctypes.c_char_p]
    libc.free.argtypes = [P]
    return lib, libc


USED = ("LiteRtCreateEnvironment", "LiteRtCreateModelFromFile", "LiteRtCreateOptions",
        "LiteRtSetOptionsHardwareAccelerators", "LiteRtCreateOpaqueOptions", "LiteRtAddOpaqueOptions",
        "LiteRtDestroyOpaqueOptions", "LiteRtCreateCompiledModel", "LiteRtGetModelSignature",
        "LiteRtGetNumSignatureInputs", "LiteRtGetNumSignatureOutputs", "LiteRtGetCompiledModelInputBufferRequirements",
        "LiteRtGetCompiledModelOutputBufferRequirements", "LiteRtGetSignatureInputTensorByIndex",
        "LiteRtGetSignatureOutputTensorByIndex", "LiteRtGetRankedTensorType",
        "LiteRtCreateManagedTensorBufferFromRequirements", "LiteRtGetTensorBufferPackedSize", "LiteRtLockTensorBuffer",
        "LiteRtUnlockTensorBuffer", "LiteRtRunCompiledModel", "LiteRtCompiledModelGetProfiler", "LiteRtResetProfiler",
        "LiteRtStartProfiler", "LiteRtStopProfiler", "LiteRtGetProfileSummary", "LiteRtDestroyTensorBuffer",
        "LiteRtDestroyCompiledModel", "LiteRtDestroyOptions", "LiteRtDestroyModel", "LiteRtDestroyEnvironment")


def profile_run(path: Path, inputs: list[np.ndarray], threads: int, runs: int, warmup: int = 1) -> ProfiledRun:
    """Compile `path` for the CPU with profiling on, run it `warmup` times, then `runs` times profiled."""
    (lib, libc), owned = _libraries(), []

    def call(what: str, status: int) -> None:
        if status != 0:
            raise EdgeDinoError(f"LiteRT {what} failed (status {status}) for {path}")

    def handle(what: str, create, *args, destroy: str | None = None) -> P:
        out = P()
        call(what, create(*args, ctypes.byref(out)))
        if destroy:
            owned.append((getattr(lib, destroy), out))
        return out

    def option(identifier: bytes, toml: bytes) -> None:
        payload, opaque = P(libc.strdup(toml)), P()  # the options free the payload with free() once they own it
        if lib.LiteRtCreateOpaqueOptions(identifier, payload, ctypes.cast(libc.free, P), ctypes.byref(opaque)):
            libc.free(payload)
            raise EdgeDinoError(f"LiteRT option {identifier.decode()} failed for {path}")
        if lib.LiteRtAddOpaqueOptions(options, opaque):
            lib.LiteRtDestroyOpaqueOptions(opaque)
            raise EdgeDinoError(f"LiteRT option {identifier.decode()} failed for {path}")

    try:
        env = handle("environment", lib.LiteRtCreateEnvironment, 0, None, destroy="LiteRtDestroyEnvironment")
        model = handle("model load", lib.LiteRtCreateModelFromFile, env, os.fsencode(path),
                       destroy="LiteRtDestroyModel")
        options = handle("options", lib.LiteRtCreateOptions, destroy="LiteRtDestroyOptions")
        call("accelerator", lib.LiteRtSetOptionsHardwareAccelerators(options, CPU))
        option(b"runtime_options_string", b"enable_profiling = true\n")
        option(b"xnnpack", f"num_threads = {threads}\n".encode())
        compiled = handle("compile", lib.LiteRtCreateCompiledModel, env, model, options,
                          destroy="LiteRtDestroyCompiledModel")
        signature = handle("signature", lib.LiteRtGetModelSignature, model, ctypes.c_size_t(0))
        counts = [handle(f"{side} count", getattr(lib, f"LiteRtGetNumSignature{side}s"), signature).value or 0
                  for side in ("Input", "Output")]
        buffers = {side: [] for side in ("Input", "Output")}
        for side, count in zip(buffers, counts, strict=True):
            for i in range(count):
                index = ctypes.c_size_t(i)
                needs = handle(f"{side} requirements", getattr(lib, f"LiteRtGetCompiledModel{side}BufferRequirements"),
                               compiled, ctypes.c_size_t(0), index)
                tensor = handle(f"{side} tensor", getattr(lib, f"LiteRtGetSignature{side}TensorByIndex"), signature,
                                index)
                kind = ctypes.create_string_buffer(TENSOR_TYPE_BYTES)
                call(f"{side} type", lib.LiteRtGetRankedTensorType(tensor, kind))
                buffers[side].append(handle(f"{side} buffer", lib.LiteRtCreateManagedTensorBufferFromRequirements,
                                            env, kind, needs, destroy="LiteRtDestroyTensorBuffer"))
        if len(inputs) != counts[0]:
            raise EdgeDinoError(f"{path} takes {counts[0]} inputs, {len(inputs)} given")
        for buffer, x in zip(buffers["Input"], inputs, strict=True):
            _copy(lib, buffer, np.ascontiguousarray(x).tobytes())
        ins, outs = ((P * len(b))(*b) for b in buffers.values())

        def run() -> None:
            call("run", lib.LiteRtRunCompiledModel(compiled, ctypes.c_size_t(0), ctypes.c_size_t(counts[0]), ins,
                                                   ctypes.c_size_t(counts[1]), outs))

        for _ in range(warmup):
            run()
        profiler = handle("profiler", lib.LiteRtCompiledModelGetProfiler, compiled)
        if not profiler.value:
            raise EdgeDinoError(f"LiteRT gave no profiler for {path}")
        call("profiler reset", lib.LiteRtResetProfiler(profiler))
        call("profiler start", lib.LiteRtStartProfiler(profiler))
        for _ in range(runs):
            run()
        call("profiler stop", lib.LiteRtStopProfiler(profiler))
        text = P()
        status = lib.LiteRtGetProfileSummary(profiler, compiled, ctypes.byref(text))
        summary = ctypes.string_at(text).decode(errors="replace") if text.value else ""
        libc.free(text)  # malloc'ed by LiteRT for the caller (freeing NULL is a no-op)
        call("profile summary", status)
        return ProfiledRun(summary, runs, [_copy(lib, buffer) for buffer in buffers["Output"]])
    finally:
        for destroy, obj in reversed(owned):
            destroy(obj)


def _copy(lib: ctypes.CDLL, buffer: P, data: bytes | None = None) -> bytes:
    """Write `data` into a tensor buffer (its size must match), or read the buffer's bytes when `data` is None."""
    size, address = ctypes.c_size_t(), P()
    if lib.LiteRtGetTensorBufferPackedSize(buffer, ctypes.byref(size)) != 0:
        raise EdgeDinoError("LiteRT tensor buffer size failed")
    if data is not None and len(data) != size.value:
        raise EdgeDinoError(f"input of {len(data)} bytes for a LiteRT tensor of {size.value}")
    if lib.LiteRtLockTensorBuffer(buffer, ctypes.byref(address), LOCK_READ if data is None else LOCK_WRITE) != 0:
        raise EdgeDinoError("LiteRT tensor buffer lock failed")
    try:
        if data is None:
            return ctypes.string_at(address, size.value)
        ctypes.memmove(address, data, size.value)
        return data
    finally:
        lib.LiteRtUnlockTensorBuffer(buffer)


NODE_TYPE = re.compile(r"^\s*(?P<type>\S.*?)\s+\d+\s+[\d.]+\s+(?P<pct>[\d.]+)%\s+[\d.]+%\s+[\d.]+\s+\d+\s*$")
DELEGATE_OP = re.compile(r"^(?P<type>Delegate/.*?)\s+(?P<count>\d+)\s+[\d.]+\s+\d+\s+\d+\s+(?P<total_us>\d+)\s*$")
TOTAL_US = re.compile(r"^Timings \(microseconds\): count=\d+ .*?\bcurr=(?P<total_us>\d+)", re.M)


def _section(summary: str, title: str) -> list[str]:
    """The lines of one of the summary's tables, below its "=== title ===" banner and its header."""
    return summary.partition(f" {title} ")[2].partition("\n")[2].split("=====")[0].splitlines()[1:]


def op_name(name: str) -> str:
    """"Delegate/Fully Connected (NC, QS8, QC8W) GEMM" -> "Fully Connected/NC, QS8, QC8W GEMM" (XNNPACK's operator
    and kernel, as OpenVINO's are named); a builtin LiteRT ran outside the delegate keeps its name ("REVERSE_V2")."""
    op, _, kernel = name.removeprefix("Delegate/").partition(" (")
    return f"{op}/{kernel.replace(')', '')}" if kernel else op


def delegate_calls(run: ProfiledRun) -> dict[str, float]:
    """Calls per inference of each XNNPACK operator type, from the "Delegate Statistics" table."""
    return {op_name(row["type"]): int(row["count"]) / run.runs
            for row in map(DELEGATE_OP.match, _section(run.summary, "Delegate Statistics")) if row}


def op_times(run: ProfiledRun) -> dict[str, float]:
    """ms per inference of each op type. XNNPACK's operators come from the "Delegate Statistics" table (their summed
    microseconds); an op LiteRT ran outside the delegate from "Summary by node type", its share of the total time
    of all events (the summary's "Timings ... curr=")."""
    times: dict[str, float] = defaultdict(float)
    for row in map(DELEGATE_OP.match, _section(run.summary, "Delegate Statistics")):
        if row:
            times[op_name(row["type"])] += int(row["total_us"]) / 1000 / run.runs
    total = TOTAL_US.search(run.summary)
    for row in map(NODE_TYPE.match, _section(run.summary, "Summary by node type")):
        if row and total and not row["type"].startswith("Delegate/"):
            times[op_name(row["type"])] += float(row["pct"]) / 100 * int(total["total_us"]) / 1000 / run.runs
    if not sum(times.values()) > 0:
        raise EdgeDinoError("LiteRT's profile summary has no op times (its 'Delegate Statistics' and 'Summary by "
                            "node type' tables are missing or empty)")
    return dict(times)
