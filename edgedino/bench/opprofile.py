"""Per-op time of one artifact in its runtime, grouped by op type: what bounds each speed number.

OpenVINO from its CPU plugin's perf counters (node type and kernel), onnxruntime from its session profiler
(node op type), LiteRT from its own op profiler (XNNPACK operator and kernel, edgedino.bench.litert_profile).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError

RUNS = 10
MATMUL_OPS = ("FullyConnected", "FullyConnectedQuantized", "FullyConnectedQuantizedLegacy", "MatMul", "Gemm",
              "QGemm", "Convolution", "Conv", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeMatMul",
              "QLinearConv", "ConvInteger", "FusedMatMul", "FusedConv", "GroupConvolution",
              "ScaledDotProductAttention", "Attention", "MultiHeadAttention",
              "Fully Connected", "Dynamic Fully Connected", "Batch Matrix Multiply",  # XNNPACK's, in LiteRT
              "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")  # LiteRT's own kernels


@dataclass
class OpTime:
    op: str  # op type, with the kernel the runtime chose ("FullyConnected/brgemm_avx512_I8" in OpenVINO)
    ms: float  # per inference
    share: float  # of the summed op time


def _table(times: dict[str, float]) -> list[OpTime]:
    total = sum(times.values()) or 1.0
    return [OpTime(op, ms, ms / total) for op, ms in sorted(times.items(), key=lambda t: -t[1])]


def openvino_ops(path: Path, x: np.ndarray, threads: int, precision: str = "f32") -> list[OpTime]:
    from edgedino.runtime.openvino import core

    compiled = core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERF_COUNT": True,
                                                       "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    request.infer([x])
    times: dict[str, float] = defaultdict(float)
    for _ in range(RUNS):
        request.infer([x])
        for info in request.profiling_info:
            times[f"{info.node_type}/{info.exec_type}"] += info.real_time.total_seconds() * 1000 / RUNS
    return _table({k: v for k, v in times.items() if v > 0})


def onnxruntime_ops(path: Path, x: np.ndarray, threads: int) -> list[OpTime]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        session.run(None, feed)
        for _ in range(RUNS):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    times: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"] / 1000 / (RUNS + 1)
    return _table(times)


def litert_ops(path: Path, x: np.ndarray, threads: int) -> list[OpTime]:
    from edgedino.bench.litert_profile import op_times, profile_run

    times = op_times(profile_run(path, [x], threads, RUNS))
    return _table({k: v for k, v in times.items() if v > 0})  # its table rounds to the microsecond


PROFILERS = {".xml": openvino_ops, ".onnx": onnxruntime_ops, ".tflite": litert_ops}


def profile(path: Path, x: np.ndarray, threads: int, **options) -> dict:
    """{"ops": [OpTime...], "matmul_share": ...} for an artifact, or {"none": why} where no profile could be made;
    `options` are the runtime's own, as the row ran it (OpenVINO's precision)."""
    profiler = PROFILERS.get(Path(path).suffix)
    if profiler is None:
        return {"none": f"no per-op profiler for {Path(path).suffix} from Python"}
    try:
        ops = profiler(Path(path), x, threads, **options)
    except EdgeDinoError as e:  # the row keeps its latency; its profile says why there is none
        return {"none": str(e)}
    matmul = sum(o.share for o in ops if o.op.split("/")[0] in MATMUL_OPS)
    return {"ops": [asdict(o) for o in ops], "matmul_share": matmul}


def markdown(title: str, prof: dict, top: int = 12) -> str:
    """A table of the top ops with % of time, and the share of matmul/conv/attention kernels against the rest."""
    if "none" in prof:
        return f"### {title}\n\n{prof['none']}\n"
    lines = [f"### {title}", "", f"matmul/conv/attention kernels: {100 * prof['matmul_share']:.1f} % of op time, "
             f"the rest {100 * (1 - prof['matmul_share']):.1f} %", "", "| op / kernel | ms | % |", "|---|---|---|"]
    lines += [f"| {o['op']} | {o['ms']:.2f} | {100 * o['share']:.1f} |" for o in prof["ops"][:top]]
    rest = prof["ops"][top:]
    if rest:
        lines.append(f"| {len(rest)} other op types | {sum(o['ms'] for o in rest):.2f} | "
                     f"{100 * sum(o['share'] for o in rest):.1f} |")
    return "\n".join(lines) + "\n"
