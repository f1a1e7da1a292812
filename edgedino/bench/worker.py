"""One measurement in its own process: `python -m edgedino.bench.worker JOB.json`.

Loads one backend (PyTorch eager, torch.compile, or an artifact in its runtime) with the threads asked,
times warm-up then timed runs on a fixed input, runs the evaluation inputs once, and writes the latencies
and peak memory as JSON on stdout and the evaluation features to the job's npz file; with "profile", the per-op
times of an artifact too, taken after the timed runs. A job's "options" go to its runtime (OpenVINO's bf16), a
"peer" job's outputs are split into cls and patch tokens (edgedino.bench.peers), and an "isa" job (run with
edgedino.bench.isa's environment) reports whether the ISA limit took effect.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def _torch_runner(job: dict):
    import torch

    from edgedino.checkpoints import load_backbone
    from edgedino.export.module import ExportModule

    torch.set_num_threads(job["threads"])
    module = ExportModule(load_backbone(job["weights"]), tuple(job["imgsz"]), batch=job["batch"])
    names = module.output_names
    forward = torch.compile(module) if job["backend"] == "torch.compile" else module

    @torch.inference_mode()
    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return {n: v.numpy() for n, v in zip(names, forward(torch.from_numpy(x)), strict=True)}

    return run


def _artifact_runner(job: dict):
    from edgedino.runtime import load

    run = load(job["path"], threads=job["threads"], module=job.get("runtime"), **job.get("options", {})).run
    if not job.get("peer"):
        return run
    from edgedino.bench.peers import split

    return lambda x: split(run(x), tuple(job["imgsz"]), job["peer"]["stride"])


def isa_check(job: dict, x: np.ndarray) -> dict:
    """Whether the AVX2 limit of this process took effect in the job's runtime (edgedino.bench.isa)."""
    from edgedino.bench import isa

    if job["backend"].startswith("torch"):
        return isa.check_torch(job["backend"] == "torch.compile")
    from edgedino.bench.opprofile import openvino_ops

    return isa.check_openvino([o.op for o in openvino_ops(job["path"], x, job["threads"])])


def measure(job: dict) -> dict:
    run = _torch_runner(job) if job["backend"].startswith("torch") else _artifact_runner(job)
    data = np.load(job["inputs"])
    timing, evaluation = data["timing"], data["eval"]
    for _ in range(job["warmup"]):
        run(timing)
    samples, deadline = [], time.perf_counter() + (job["seconds"] or 0)
    while len(samples) < job["iters"] or (job["seconds"] and time.perf_counter() < deadline):
        start = time.perf_counter()
        run(timing)
        samples.append((time.perf_counter() - start) * 1000)
    batch = job["batch"]
    outs = [run(np.repeat(x[None], batch, axis=0)) for x in evaluation]
    np.savez(job["features"], **{k: np.concatenate([o[k][:1] for o in outs]) for k in ("cls", "patch_tokens")})
    result = {"latency_ms": samples, "rss_mb": peak_rss_mb()}
    if job.get("isa"):
        result["isa_check"] = isa_check(job, timing)
    if job.get("profile") and job["path"]:
        from edgedino.bench.opprofile import profile

        result["profile"] = profile(job["path"], timing, job["threads"], **job.get("options", {}))
    return result


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where the system does not say). On Linux VmHWM, because
    ru_maxrss survives fork+exec: a worker would report its parent's peak."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows has no getrusage
        return None
    return maxrss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, sys.platform)


def maxrss_mb(maxrss: int, platform: str) -> float:
    """getrusage's ru_maxrss in MiB: macOS counts it in bytes, Linux and the BSDs in KiB."""
    return maxrss / 2**20 if platform == "darwin" else maxrss / 1024


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(job["threads"])
    print(json.dumps(measure(job)))


if __name__ == "__main__":
    main()
