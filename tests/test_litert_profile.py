"""LiteRT's op profiler through libLiteRt.so's C API: the profiled run computes what the Interpreter computes, and a
missing or unreadable profile is an error."""

from __future__ import annotations

import numpy as np
import pytest

from edgedino.bench.litert_profile import ProfiledRun, delegate_calls, op_times, profile_run
from edgedino.errors import EdgeDinoError


@pytest.fixture(scope="module")
def tflite_int8(tmp_path_factory):
    from edgedino.export import export

    out = tmp_path_factory.mktemp("litert")
    result = export(targets="tflite", model="vit_test", precisions="int8", imgsz=64, out=out, log=lambda line: None,
                    verify_outputs=False)
    return result.artifacts[0].path


def test_profiled_run_gives_the_interpreters_outputs_and_an_op_table(tflite_int8):
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    run = profile_run(tflite_int8, [x], threads=1, runs=3)
    expected = Interpreter(tflite_int8, num_threads=1).get_signature_runner()(image=x)
    got = {len(b): np.frombuffer(b, np.float32) for b in run.outputs}
    assert len(got) == len(expected)
    for value in expected.values():
        np.testing.assert_array_equal(got[value.nbytes], value.ravel())
    assert sum(op_times(run).values()) > 0
    calls = delegate_calls(run)  # by count: vit_test's linears take under the profiler's 1 us resolution
    assert calls["Fully Connected/NC, QS8, QC8W GEMM"] == 2 * 6, calls  # q, k, v, proj, fc1, fc2 in each block


def test_wrong_input_size_and_unreadable_model_are_errors(tflite_int8, tmp_path):
    with pytest.raises(EdgeDinoError, match="input of 12 bytes"):
        profile_run(tflite_int8, [np.zeros(3, np.float32)], threads=1, runs=1)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(EdgeDinoError, match="model load failed"):
        profile_run(broken, [np.zeros(3, np.float32)], threads=1, runs=1)


SUMMARY = """\
============ Summary by node type ============
                          [Node type]    [count]   [avg ms]    [avg %]    [cdf %]   [mem KB] [times called]
 Delegate/Fully Connected (NC, QS8, QC8W) GEMM          2      0.300    75.000%    75.000%      0.000              4
                           REVERSE_V2          1      0.050    25.000%   100.000%      0.000              2

============ Delegate Statistics ============
Op Name                                            Count    Avg(us)    Min(us)    Max(us)  Total(us)
Delegate/Fully Connected (NC, QS8, QC8W) GEMM          4     300.00        290        310       1200

Timings (microseconds): count=3 curr=1600
"""


def test_summary_tables_become_ms_and_calls_per_inference():
    """Delegate ops from their summed microseconds, builtins from their share of all events, over 2 runs."""
    run = ProfiledRun(SUMMARY, runs=2, outputs=[])
    assert op_times(run) == pytest.approx({"Fully Connected/NC, QS8, QC8W GEMM": 0.6, "REVERSE_V2": 0.2})
    assert delegate_calls(run) == {"Fully Connected/NC, QS8, QC8W GEMM": 2}


def test_a_summary_without_op_times_is_an_error():
    with pytest.raises(EdgeDinoError, match="no op times"):
        op_times(ProfiledRun("Run Order\n(nothing recorded)\n", runs=1, outputs=[]))
