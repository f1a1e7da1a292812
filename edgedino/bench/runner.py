"""Run a suite: export (or reuse) each artifact, measure each backend in its own process, one after another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgedino.bench import cache, dense, jobs
from edgedino.bench.load import busy_warnings
from edgedino.bench.machine import describe, load_average, versions
from edgedino.bench.peak import gemm_gmacs
from edgedino.bench.peers import PEERS
from edgedino.bench.suite import BASELINES, Suite
from edgedino.errors import EdgeDinoError
from edgedino.export.parity import cosines
from edgedino.export.spec import VERIFY_IMAGES
from edgedino.runtime.frames import HOLDOUT, model_inputs, read_frames, sample_images
from edgedino.runtime.preprocess import check_size, parse_imgsz, read_image


@dataclass
class Row:
    model: str
    target: str
    precision: str
    imgsz: str
    threads: int
    batch: int
    status: str  # measured, verify-failed (measured anyway), export-failed, failed (runtime missing or crashed),
    # skipped (cannot run on this CPU: bf16 without AMX-BF16/AVX512-BF16)
    reason: str = ""
    latency_ms: dict = field(default_factory=dict)  # median, p90, min
    fps: float | None = None  # images per second at this batch size
    speedup_vs_torch: float | None = None
    size_mb: float | None = None
    rss_mb: float | None = None
    parity_cos: float | None = None  # patch tokens
    cls_cos: float | None = None
    dense_quality: float | None = None
    gmacs_per_s: float | None = None
    peak_share: float | None = None
    cached: bool = False
    profile: dict | None = None  # per-op times (edgedino.bench.opprofile), with --profile
    avx2_ms: float | None = None  # median with the runtime limited to AVX2 (edgedino.bench.isa), suite.avx2
    avx2_note: str = ""  # why there is no AVX2-only time, or what its check saw


@dataclass
class Inputs:
    """What every backend of one (model, size) runs on, and PyTorch's answers."""

    eval_file: Path
    reference: np.ndarray  # PyTorch patch tokens of the verification images
    homographies: list
    stride: int
    macs: int
    reference_cls: np.ndarray | None = None  # and their cls tokens


def prepare(model: str, weights: Path, size: tuple[int, int], suite: Suite, batch: int, tmp: Path) -> Inputs:
    import torch

    from edgedino.checkpoints import load_backbone
    from edgedino.models.flops import count_macs

    backbone = load_backbone(weights)
    check_size(size, backbone.stride)
    frames = read_frames(HOLDOUT, VERIFY_IMAGES)  # images no calibration sees
    pairs = dense.pairs([read_image(p) for p in sample_images()], size)
    evaluation = model_inputs(frames + [img for a, b, _ in pairs for img in (a, b)], size)
    with torch.inference_mode():
        reference = backbone.forward_features(torch.from_numpy(evaluation[:len(frames)]))
    eval_file = tmp / f"{model}_{size[0]}x{size[1]}_b{batch}.npz"
    np.savez(eval_file, timing=np.repeat(evaluation[:1], batch, axis=0), eval=evaluation)
    return Inputs(eval_file, reference["patch_tokens"].numpy(), [H for _, _, H in pairs], backbone.stride,
                  count_macs(backbone, size), reference["cls"].numpy())


def run_worker(job: dict, timeout: float, env: dict | None = None) -> dict:
    """One backend in a fresh process; the threads and the process are its own, with `env` added to its
    environment."""
    env = {**os.environ, **{v: str(job["threads"]) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}, **(env or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        proc = subprocess.run([sys.executable, "-m", "edgedino.bench.worker", f.name], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise EdgeDinoError(f"timed out after {timeout:.0f}s") from None
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()] or [f"exit {proc.returncode}"]
        raise EdgeDinoError(f"backend crashed: {lines[-1][:300]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fill(row: Row, result: dict, features: Path, inputs: Inputs, peaks: dict) -> None:
    """Latency statistics, parity, dense quality and efficiency from one worker's output."""
    lat = np.asarray(result["latency_ms"])
    row.latency_ms = {"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)), "min": float(lat.min())}
    row.fps = row.batch * 1000 / row.latency_ms["median"]
    row.rss_mb = result["rss_mb"]
    row.profile = result.get("profile")
    row.gmacs_per_s = inputs.macs * row.batch / (row.latency_ms["median"] / 1000) / 1e9
    row.peak_share = row.gmacs_per_s / peaks[row.threads]["int8" if row.precision == "int8" else "fp32"]
    outputs = np.load(features)
    broken = [name for name in outputs.files if not np.isfinite(outputs[name]).all()]
    if broken or not np.isfinite(inputs.reference).all():
        # Fail closed: a NaN cosine compares False with every bound and would read as a number in the table.
        row.status = "verify-failed"
        row.reason = (f"{', '.join(broken)} has non-finite values (NaN or inf) in the {row.target} {row.precision} "
                      "outputs" if broken else "PyTorch's own patch_tokens are not finite")
        return
    patches = outputs["patch_tokens"]
    n = len(inputs.reference)
    row.parity_cos = float(cosines(patches[:n], inputs.reference).mean())
    if inputs.reference_cls is not None:
        row.cls_cos = float(cosines(outputs["cls"][:n], inputs.reference_cls).mean())
    scores = [dense.correspondence_accuracy(patches[n + 2 * i], patches[n + 2 * i + 1], H, inputs.stride)
              for i, H in enumerate(inputs.homographies)]
    row.dense_quality = float(np.mean(scores))


def run_suite(suite: Suite, log=print) -> dict:
    """Every row of every pass of the suite, measured one after another; failures become rows and the run goes
    on."""
    load_before = load_average()
    passes = suite.passes()
    threads = sorted({t for p in passes for t in p.threads})
    peaks = {t: {"fp32": gemm_gmacs(t, False), "int8": gemm_gmacs(t, True)} for t in threads}
    log("peak GEMM GMAC/s: " + ", ".join(f"{t} threads fp32 {p['fp32']:.0f} int8 {p['int8']:.0f}"
                                         for t, p in peaks.items()))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for one in passes:
            rows += run_pass(one, peaks, Path(tmp), log)
    machine, load = describe(), {"start": load_before, "end": load_average()}
    spreads = {f"{r.model} {r.imgsz} b{r.batch} {r.threads}t {r.target} {r.precision}":
               (r.latency_ms["median"], r.latency_ms["p90"]) for r in rows if r.latency_ms}
    return {"machine": machine, "versions": versions(), "peak_gmacs": peaks, "suite": asdict(suite),
            "load_average": load, "warnings": busy_warnings(load, machine["cpu"]["cores"], max(threads), spreads),
            "rows": [asdict(r) for r in rows]}


def run_pass(suite: Suite, peaks: dict, tmp: Path, log) -> list[Row]:
    """The rows of one pass (a suite without `also`), each group's speed-ups against its own PyTorch eager."""
    rows: list[Row] = []
    for model in suite.models:
        weights = Path(suite.weights) if suite.weights else cache.seeded_weights(model)
        for size_text in suite.imgsz:
            size = parse_imgsz(size_text)
            for batch in suite.batch:
                inputs = prepare(model, weights, size, suite, batch, tmp)
                for threads in suite.threads:
                    group = [measure(Row(model, target, precision, f"{size[0]}x{size[1]}", threads, batch,
                                         "measured"), weights, size, suite, inputs, peaks, tmp, log)
                             for target, precision in suite.combos()]
                    eager = next((r for r in group if r.target == "torch" and r.latency_ms), None)
                    for r in group:
                        if eager and r.latency_ms:
                            r.speedup_vs_torch = eager.latency_ms["median"] / r.latency_ms["median"]
                    rows += group
    return rows


def measure(row: Row, weights: Path, size, suite: Suite, inputs: Inputs, peaks: dict, tmp: Path, log) -> Row:
    log(f"{row.model} {row.imgsz} b{row.batch} {row.threads}t {row.target} {row.precision}")
    job = {"backend": row.target, "weights": str(weights), "imgsz": list(size), "batch": row.batch,
           "threads": row.threads, "warmup": suite.warmup, "iters": suite.iters, "seconds": suite.seconds,
           "inputs": str(inputs.eval_file), "features": str(tmp / "features.npz"), "path": None,
           "profile": suite.profile}
    try:
        if row.target in PEERS:
            jobs.peer(row, job, suite, weights, size, inputs.stride, log)
        elif row.target not in BASELINES:
            if not jobs.artifact(row, job, suite, weights, size, log):
                log(f"  {row.status}: {row.reason}")
                return row
        else:
            row.size_mb = weights.stat().st_size / 1e6
        fill(row, run_worker(job, suite.timeout_s), tmp / "features.npz", inputs, peaks)
        jobs.check_parity(row)
        if suite.avx2:
            avx2(row, job, suite, tmp, log)
    except EdgeDinoError as e:
        row.status, row.reason = "failed", str(e)
    if row.latency_ms and row.parity_cos is not None:
        log(f"  {row.latency_ms['median']:.1f} ms median, parity {row.parity_cos:.4f}, dense {row.dense_quality:.1f}%"
            + (f", AVX2-only {row.avx2_ms:.1f} ms" if row.avx2_ms else ""))
    else:
        log(f"  {row.status}: {row.reason}")
    return row


def avx2(row: Row, job: dict, suite: Suite, tmp: Path, log) -> None:
    """The row's median again with its runtime limited to AVX2, kept only where the limit is seen to take effect."""
    env = jobs.avx2_env(row, describe()["cpu"]["flags"], tmp)
    if env is None:
        return
    log("  again with " + " ".join(f"{k}={v}" for k, v in env.items()))
    try:
        result = run_worker({**job, "isa": "avx2", "profile": False}, suite.timeout_s, env)
    except EdgeDinoError as e:
        row.avx2_note = f"AVX2-only run failed: {e}"
        return
    check = result["isa_check"]
    outputs = np.load(job["features"])
    if not all(np.isfinite(outputs[name]).all() for name in outputs.files):
        row.avx2_note = "the AVX2-only run gave non-finite outputs (NaN or inf)"
        return
    row.avx2_note = check["note"]
    if check["ok"]:
        row.avx2_ms = float(np.median(result["latency_ms"]))
    else:
        row.avx2_note = f"the AVX2 limit did not take effect: {check['note']}"
