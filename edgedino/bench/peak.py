"""The machine's own limit: large fp32 and int8 GEMMs in onnxruntime, with the threads a row uses."""

from __future__ import annotations

import time

import numpy as np

SIZE = 2048


def _gemm_model(int8: bool, n: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        b = numpy_helper.from_array(rng.integers(-64, 64, (n, n), dtype=np.int8), "B")
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        b = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "B")
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_type, [n, n])],
                              [helper.make_tensor_value_info("Y", y_type, [n, n])], [b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def gemm_gmacs(threads: int, int8: bool, n: int = SIZE, runs: int = 10) -> float:
    """Best GMAC/s of an n x n x n matrix product (fp32 MatMul or u8 x s8 MatMulInteger) over `runs`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(_gemm_model(int8, n), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).integers(0, 128, (n, n)).astype(np.uint8 if int8 else np.float32)
    session.run(None, {"A": a})
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"A": a})
        best = min(best, time.perf_counter() - start)
    return n**3 / best / 1e9
