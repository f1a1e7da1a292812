"""What each kind of benchmark row asks of its worker (edgedino.bench.worker), beyond the PyTorch baselines:
an exported artifact, an fp32 artifact its runtime compiles for a runtime precision (bf16), a by-hand peer
(edgedino.bench.peers), and the environment of an AVX2-only rerun (edgedino.bench.isa)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from edgedino.atomic import atomic_path
from edgedino.bench import cache, isa
from edgedino.bench.peers import PEERS, hf_model
from edgedino.bench.suite import RUNTIME_PRECISIONS, RUNTIME_THRESHOLDS
from edgedino.errors import EdgeDinoError, reraise_interrupt
from edgedino.export.spec import THRESHOLDS
from edgedino.runtime.formats import FORMATS


def artifact(row, job: dict, suite, weights: Path, size: tuple[int, int], log) -> bool:
    """Export (or reuse) the row's artifact into `job`; False when the row ends here (export failed, skipped)."""
    reason = FORMATS[row.target].unavailable()
    if reason:
        raise EdgeDinoError(f"not measurable here: {reason}")
    export_precision = row.precision
    if row.precision in RUNTIME_PRECISIONS:
        reason = runtime_precision_unsupported(row.precision)
        if reason:
            row.status, row.reason = "skipped", reason
            return False
        export_precision = "fp32"
        job["options"] = {"precision": row.precision}
    result, row.cached = cache.artifact(row.model, weights, row.target, export_precision, size, row.batch,
                                        suite.calib, suite.calib_size, log=lambda line: log("  " + line))
    row.size_mb = result.size_mb
    if result.status == "export-failed":
        row.status, row.reason = "export-failed", result.message
        return False
    if result.status == "verify-failed":
        row.status, row.reason = "verify-failed", result.message
    job.update(backend="artifact", path=result.path, runtime=FORMATS[row.target].runtime)
    return True


def runtime_precision_unsupported(precision: str) -> str | None:
    """Why this machine's runtime cannot compute in a runtime precision, or None."""
    from edgedino.runtime.openvino import bf16_unsupported

    return {"bf16": bf16_unsupported}[precision]()


def check_parity(row) -> None:
    """A row that no export verified (a runtime precision, a peer) is verify-failed below its precision's parity
    bound, on the worse of its cls and patch cosines; a missing or NaN cosine fails too."""
    bound = RUNTIME_THRESHOLDS.get(row.precision) or (THRESHOLDS[row.precision] if row.target in PEERS else None)
    if bound is None or row.status != "measured":
        return
    cosines = [row.parity_cos, row.cls_cos]
    if None in cosines:
        row.status, row.reason = "verify-failed", f"no cls or patch cosine to check against the {bound} bound"
        return
    worst = min(cosines) if all(math.isfinite(c) for c in cosines) else math.nan
    if not worst >= bound:
        row.status = "verify-failed"
        row.reason = (f"parity {worst:.4f} (worse of cls and patch cosine) is below the {row.precision} "
                      f"bound {bound}")


def peer(row, job: dict, suite, weights: Path, size: tuple[int, int], stride: int, log) -> None:
    """Build (or reuse) the row's by-hand peer artifact from the same weights into `job`."""
    from edgedino.bench.machine import versions
    from edgedino.digest import weights_sha256
    from edgedino.runtime.frames import model_inputs, read_frames

    if row.batch != 1:
        raise EdgeDinoError("peer paths are built at batch 1 only")
    spec = PEERS[row.target]
    content = {"peer": spec.name, "how": spec.how, "weights": weights_sha256(str(weights)), "imgsz": list(size),
               "calib": str(suite.calib), "calib_size": suite.calib_size, "versions": versions()}
    key = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache.cache_dir() / "peers" / f"{row.model}_{size[0]}x{size[1]}_{key}"
    path = folder / f"{spec.name}{spec.suffix}"
    row.cached = path.exists()
    if not row.cached:
        log(f"  building the peer: {spec.how}")
        calib = model_inputs(read_frames(suite.calib, suite.calib_size), size)
        try:
            with atomic_path(folder, is_dir=True) as staged:
                spec.build(hf_model(weights, staged / "hf"), calib, staged / path.name)
        except Exception as e:  # the converter's own error: the row says which and why
            reraise_interrupt(e)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise EdgeDinoError(f"{spec.how} failed: {type(e).__name__}: {first}") from None
    row.size_mb = sum(p.stat().st_size for p in folder.glob(f"{spec.name}*") if p.is_file()) / 1e6
    job.update(backend="artifact", path=str(path), runtime=spec.runtime, peer={"stride": stride})


def avx2_env(row, flags: list[str], scratch: Path) -> dict | None:
    """The environment of the row's AVX2-only rerun, or None (with the reason in row.avx2_note where its runtime
    has such runs)."""
    environment = isa.env(row.target, scratch)
    reason = environment and isa.unavailable(row.precision, flags)
    if reason:
        row.avx2_note = reason
    return None if reason else environment
