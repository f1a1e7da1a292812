"""The benchmark harness on tiny models with real runtimes and few iterations. Timings are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgedino.bench import dense
from edgedino.bench.suite import Suite, load_suite

ROW_FIELDS = {"model", "target", "precision", "imgsz", "threads", "batch", "status", "latency_ms", "fps",
              "speedup_vs_torch", "size_mb", "rss_mb", "parity_cos", "dense_quality", "gmacs_per_s", "peak_share"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def benchmark(cache, tmp_path, *args, imgsz: str = "64"):
    env = {**os.environ, "EDGEDINO_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "edgedino", "benchmark", "--model", "vit_test", "--imgsz", imgsz,
                           "--iters", "3", "--warmup", "1", "--threads", "1", "--json", str(tmp_path / "r.json"),
                           "--md", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png"), *args],
                          capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def first_run(cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run1")
    out = benchmark(cache, tmp, "--target", "torch,onnx,openvino,tflite,coreml", "--precision", "fp32,int8")
    return out, json.loads((tmp / "r.json").read_text()), tmp


def test_every_field_present_and_sane(first_run):
    out, report, _ = first_run
    assert out.returncode == 0, out.stderr
    assert report["machine"]["cpu"]["cores"] >= 1 and report["versions"]["torch"]
    assert report["peak_gmacs"]["1"]["fp32"] > 0 and report["peak_gmacs"]["1"]["int8"] > 0
    measured = [r for r in report["rows"] if r["status"] == "measured"]
    assert {(r["target"], r["precision"]) for r in measured} == {
        ("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8"),
        ("tflite", "fp32"), ("tflite", "int8")}
    for r in measured:
        assert ROW_FIELDS <= set(r)
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["median"] <= lat["p90"]
        assert r["fps"] > 0 and r["rss_mb"] > 10 and r["size_mb"] > 0 and r["gmacs_per_s"] > 0
        assert 0.99 <= r["parity_cos"] <= 1.0001 and 0 <= r["dense_quality"] <= 100
        assert r["speedup_vs_torch"] > 0 and 0 < r["peak_share"]
    rss = [r["rss_mb"] for r in measured]
    assert max(rss) < 4000 and len(set(rss)) > 1, "each worker reports its own peak, not its parent's"
    eager = next(r for r in measured if r["target"] == "torch")
    assert eager["speedup_vs_torch"] == pytest.approx(1.0) and eager["parity_cos"] == pytest.approx(1.0, abs=1e-5)


def test_a_backend_that_cannot_run_fails_its_row_only(first_run):
    out, report, _ = first_run
    coreml = [r for r in report["rows"] if r["target"] == "coreml"]
    assert coreml and all(r["status"] == "failed" and "darwin" in r["reason"] for r in coreml)
    assert "❌" in out.stdout and "✅" in out.stdout


def test_outputs_written(first_run):
    _, _, tmp = first_run
    assert "| model |" in (tmp / "r.md").read_text()
    picture = cv2.imread(str(tmp / "r.png"))
    assert picture is not None and picture.shape[0] > 200


def test_second_run_hits_the_cache(first_run, cache, tmp_path):
    out = benchmark(cache, tmp_path, "--target", "onnx", "--precision", "int8")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert row["cached"] and row["status"] == "measured"
    assert "exporting" not in out.stderr


def test_profile_breaks_each_artifact_down_by_op(first_run, cache, tmp_path):
    """--profile: OpenVINO perf counters, onnxruntime's and LiteRT's profilers, per op type, in the JSON and the
    Markdown."""
    out = benchmark(cache, tmp_path, "--targets", "onnx,openvino,tflite", "--precision", "int8", "--profile")
    assert out.returncode == 0, out.stderr
    rows = {r["target"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    # tflite: the patch embedding's convolution; vit_test's linears at 64x64 take under LiteRT's 1 us resolution
    for target, matmul_op in (("onnx", "MatMul"), ("openvino", "FullyConnected"), ("tflite", "Convolution/")):
        prof = rows[target]["profile"]
        assert all(o["ms"] > 0 for o in prof["ops"]) and sum(o["share"] for o in prof["ops"]) == pytest.approx(1.0)
        assert any(matmul_op in o["op"] for o in prof["ops"]), prof["ops"]
        assert 0 < prof["matmul_share"] < 1
    md = (tmp_path / "r.md").read_text()
    assert "## Per-op profiles" in md and "vit_test 64x64 b1 1t openvino int8" in md and "| op / kernel |" in md


def test_a_crashing_backend_is_an_error_not_a_hang(tmp_path):
    """The worker process dies (here: its artifact vanished): run_worker reports why, the runner makes it a row."""
    from edgedino.bench.runner import run_worker
    from edgedino.errors import EdgeDinoError

    zeros = np.zeros((1, 3, 64, 64), np.float32)
    np.savez(tmp_path / "in.npz", timing=zeros, eval=zeros)
    job = {"backend": "artifact", "path": str(tmp_path / "gone.onnx"), "weights": None, "imgsz": [64, 64], "batch": 1,
           "threads": 1, "warmup": 1, "iters": 1, "seconds": None, "inputs": str(tmp_path / "in.npz"),
           "features": str(tmp_path / "f.npz")}
    with pytest.raises(EdgeDinoError, match="backend crashed: .*artifact not found"):
        run_worker(job, timeout=120)


def test_suite_with_unknown_key(tmp_path):
    (tmp_path / "s.yaml").write_text("models: [vit_test]\nthread: [2]\n")
    from edgedino.errors import EdgeDinoError

    with pytest.raises(EdgeDinoError, match="unknown key 'thread'"):
        load_suite(tmp_path / "s.yaml")


def test_shipped_suites_load():
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.yaml"):
        suite = load_suite(path)
        assert isinstance(suite, Suite) and suite.combos()


def test_size_not_multiple_of_stride(cache, tmp_path):
    out = benchmark(cache, tmp_path, "--target", "torch", imgsz="70")
    assert out.returncode == 2 and "not a multiple of the model's stride 16" in out.stderr


def test_dense_quality_is_perfect_for_exact_features_and_low_for_noise():
    """The metric itself: features that move with the homography score high; random features do not."""
    rng = np.random.default_rng(0)
    gh, gw, stride = 12, 12, 16
    H = dense.homography((gh * stride, gw * stride), rng)
    base = rng.normal(size=(gh, gw, 32))
    ys, xs = np.mgrid[0:gh, 0:gw]
    pts = np.linalg.inv(H) @ np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride, np.ones(gh * gw)])
    src_x = np.clip(np.round(pts[0] / pts[2] / stride - 0.5), 0, gw - 1).astype(int)
    src_y = np.clip(np.round(pts[1] / pts[2] / stride - 0.5), 0, gh - 1).astype(int)
    warped = base[src_y, src_x].reshape(gh, gw, 32)
    assert dense.correspondence_accuracy(base, warped, H, stride) > 80
    assert dense.correspondence_accuracy(base, rng.normal(size=(gh, gw, 32)), H, stride) < 20


@pytest.mark.parametrize("shift,expected", [(1, 100 * 11 / 12), (2, 0.0)])
def test_dense_quality_counts_matches_one_patch_off_but_not_two(shift, expected):
    """The tolerance at its boundary: under the identity, features shifted by one patch still count as correct
    matches (all but the column that shifts out), shifted by two they do not."""
    rng = np.random.default_rng(1)
    gh, gw, stride = 12, 12, 16
    fa = rng.normal(size=(gh, gw, 64))
    fb = np.concatenate([rng.normal(size=(gh, shift, 64)), fa[:, :gw - shift]], axis=1)  # fb[y, x] = fa[y, x - s]
    assert dense.correspondence_accuracy(fa, fb, np.eye(3), stride) == pytest.approx(expected)


def test_non_finite_outputs_fail_the_row_and_are_named(tmp_path):
    """A backend whose outputs hold NaN is not 'measured' with a NaN parity: its row fails, naming the output."""
    from edgedino.bench.runner import Inputs, Row, fill

    reference = np.ones((2, 2, 2, 8), np.float32)
    patches = np.ones((2, 2, 2, 8), np.float32)
    patches[1, 0, 0, 3] = np.nan
    np.savez(tmp_path / "f.npz", cls=np.ones((2, 8), np.float32), patch_tokens=patches)
    row = Row("vit_test", "onnx", "fp16", "32x32", 1, 1, "measured")
    inputs = Inputs(tmp_path, reference, [], 16, 10**6)
    fill(row, {"latency_ms": [2.0, 3.0], "rss_mb": 50.0}, tmp_path / "f.npz", inputs, {1: {"fp32": 10.0, "int8": 20.0}})
    assert row.status == "verify-failed" and "patch_tokens has non-finite values" in row.reason
    assert row.parity_cos is None and row.latency_ms["median"] == 2.5


MORE_ROWS = """
models: [vit_test]
targets: [torch, openvino, peer-openvino, peer-onnx, peer-litert]
precisions: [fp32, bf16]
avx2: true
also:
  - {targets: [torch, onnx, openvino], precisions: [int8], batch: [4], avx2: false}
"""


@pytest.fixture(scope="module")
def more_rows(cache, tmp_path_factory):
    """bf16, the by-hand peers, the AVX2-only column and a batch-4 pass, in one run of a suite file."""
    tmp = tmp_path_factory.mktemp("more")
    (tmp / "s.yaml").write_text(MORE_ROWS)
    out = benchmark(cache, tmp, "--suite", str(tmp / "s.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {(r["target"], r["precision"], r["batch"]): r for r in json.loads((tmp / "r.json").read_text())["rows"]}
    return out, rows, (tmp / "r.md").read_text()


def bf16_reason() -> str | None:
    from edgedino.runtime.openvino import bf16_unsupported

    return bf16_unsupported()


def test_bf16_is_openvino_compiling_the_fp32_ir(more_rows):
    """bf16 only on OpenVINO, from the fp32 IR, at bf16 parity; skipped with its reason where the CPU lacks it."""
    _, rows, _ = more_rows
    assert ("torch", "bf16", 1) not in rows and ("peer-onnx", "bf16", 1) not in rows
    row, fp32 = rows[("openvino", "bf16", 1)], rows[("openvino", "fp32", 1)]
    if bf16_reason():
        assert row["status"] == "skipped" and "AMX-BF16 or AVX512-BF16" in row["reason"]
        return
    assert row["status"] == "measured", row["reason"]
    assert row["parity_cos"] >= 0.999 and row["cls_cos"] >= 0.999 and row["size_mb"] == fp32["size_mb"]
    assert row["avx2_ms"] is None and "no AVX2-only run of bf16" in row["avx2_note"]


def test_bf16_runtime_computes_in_bf16(more_rows, cache):
    """The hint takes effect: outputs differ from f32 (bf16 rounding) yet stay within bf16 parity."""
    from edgedino.export.parity import cosines
    from edgedino.runtime.openvino import OpenVINORuntime

    if bf16_reason():
        pytest.skip(bf16_reason())
    (path,) = cache.glob("artifacts/vit_test_openvino_fp32_64x64_b1_*/*.xml")
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)
    f32, bf16 = OpenVINORuntime(path, 1).run(x), OpenVINORuntime(path, 1, precision="bf16").run(x)
    assert not np.array_equal(f32["patch_tokens"], bf16["patch_tokens"])
    assert cosines(bf16["patch_tokens"], f32["patch_tokens"]).min() >= 0.999


def test_peer_rows_have_latency_and_parity(more_rows):
    """Each by-hand peer is built from the same weights and measured like our rows; one below the int8 bound is
    marked, not hidden."""
    _, rows, md = more_rows
    for peer in ("peer-openvino", "peer-onnx", "peer-litert"):
        row = rows[(peer, "int8", 1)]
        assert row["status"] in ("measured", "verify-failed"), row["reason"]
        assert row["latency_ms"]["median"] > 0 and row["size_mb"] > 0 and row["speedup_vs_torch"] > 0
        worst = min(row["parity_cos"], row["cls_cos"])
        assert (row["status"] == "verify-failed") == (worst < 0.99), row
        assert f"| {peer} | int8 |" in md
    assert rows[("peer-openvino", "int8", 1)]["status"] == "measured"


def test_avx2_column_is_checked_in_each_runtime(more_rows):
    """PyTorch's AVX2-only run is seen in ATen's capability; OpenVINO's is kept only where no avx512/amx kernel
    ran, else it says which did; rows of other runtimes get no AVX2 time."""
    _, rows, md = more_rows
    torch_row = rows[("torch", "fp32", 1)]
    assert torch_row["avx2_ms"] > 0 and "ATen capability AVX2" in torch_row["avx2_note"]
    for key in (("openvino", "fp32", 1), ("peer-openvino", "int8", 1)):
        row = rows[key]
        assert (row["avx2_ms"] is None) == ("did not take effect" in row["avx2_note"]), row
        assert row["avx2_note"] in md
    assert rows[("peer-onnx", "int8", 1)]["avx2_ms"] is None and not rows[("peer-onnx", "int8", 1)]["avx2_note"]


def test_also_pass_adds_batch_rows(more_rows):
    """The suite's `also` pass: batch 4 rows of static-batch int8 exports (calibrated with batch-4 inputs),
    images/s from the batch."""
    _, rows, _ = more_rows
    for key in (("torch", "fp32", 4), ("onnx", "int8", 4), ("openvino", "int8", 4)):
        row = rows[key]
        assert row["status"] == "measured" and row["parity_cos"] >= 0.99, row["reason"]
        assert row["fps"] == pytest.approx(4000 / row["latency_ms"]["median"]) and row["avx2_ms"] is None
    assert ("peer-openvino", "int8", 4) not in rows


def test_suite_also_entries_are_checked(tmp_path):
    from edgedino.errors import EdgeDinoError

    (tmp_path / "s.yaml").write_text("models: [vit_test]\nalso:\n  - {batch: [4], thread: [2]}\n")
    with pytest.raises(EdgeDinoError, match=r"also\[0\]: unknown key 'thread'"):
        load_suite(tmp_path / "s.yaml")


def test_combos_of_runtime_precisions_and_peers():
    suite = Suite(targets=["torch", "onnx", "openvino", "peer-onnx"], precisions=["fp32", "bf16"])
    assert suite.combos() == [("torch", "fp32"), ("onnx", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"),
                              ("peer-onnx", "int8")]


def test_openvino_isa_check_reads_kernel_names():
    from edgedino.bench.isa import check_openvino

    assert check_openvino(["FullyConnected/brgemm_avx2_I8", "MVN/jit_avx2_f32"])["ok"]
    bad = check_openvino(["FullyConnected/brgemm_avx2_I8", "MVN/jit_avx512_f32", "MatMul/brgemm_avx512_amx_bf16"])
    assert not bad["ok"] and "MVN/jit_avx512_f32" in bad["note"]
    assert "MLAS" in check_openvino(["FullyConnected/gemm_mlas_f32"])["note"]


def test_default_suite_has_the_comparison_rows():
    """The default suite carries the peers, bf16, the AVX2 column and batch 4/8; quick stays without them."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    default, quick = load_suite(folder / "default.yaml"), load_suite(folder / "quick.yaml")
    assert {"peer-openvino", "peer-onnx", "peer-litert"} <= set(default.targets) and "bf16" in default.precisions
    assert default.avx2 and {b for p in default.passes() for b in p.batch} == {1, 4, 8}
    assert {s for p in default.passes() for s in p.imgsz} == {"224", "448"}
    assert not quick.avx2 and not quick.also and not any(t.startswith("peer-") for t in quick.targets)


def test_bf16_without_a_target_that_has_it_is_an_error():
    from edgedino.bench.suite import check_suite
    from edgedino.errors import EdgeDinoError

    with pytest.raises(EdgeDinoError, match="precision bf16 runs on openvino only"):
        check_suite(Suite(models=["vit_test"], targets=["torch", "onnx"], precisions=["fp32", "bf16"]))


@pytest.mark.parametrize("patch,cls,status", [(0.999, 0.999, "measured"), (0.5, 0.999, "verify-failed"),
                                              (0.9995, float("nan"), "verify-failed"), (None, 0.999, "verify-failed")])
def test_peer_and_runtime_precision_parity_fails_closed(patch, cls, status):
    """A row no export verified is held to its bound here: below it, NaN or a missing cosine is verify-failed."""
    from types import SimpleNamespace

    from edgedino.bench.jobs import check_parity

    row = SimpleNamespace(precision="int8", target="peer-onnx", parity_cos=patch, cls_cos=cls, status="measured",
                          reason="")
    check_parity(row)
    assert row.status == status and (status == "measured") == (row.reason == "")
