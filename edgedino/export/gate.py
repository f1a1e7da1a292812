"""The parity gate: run an artifact in every runtime its target offers here, compare each output with PyTorch,
and pass it only when every runtime gives finite outputs that meet the precision's threshold.

Fail closed: a non-finite value (NaN or inf) in any output of the artifact or of PyTorch fails the gate and is
named, because a NaN cosine compares False with any threshold and would otherwise pass."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgedino.errors import reraise_interrupt
from edgedino.export import parity
from edgedino.runtime.base import RuntimeUnavailable

GATED = ("cls", "patch_tokens", "logits")  # outputs whose mean cosine must meet the precision's threshold


def problems(report: list[parity.Parity], label: str, precision: str, threshold: float) -> list[str]:
    """What fails the gate in one runtime's parity report, each naming the output; empty when it passes."""
    out = [f"PyTorch's own {p.output} is not finite (NaN or inf): the weights or inputs are broken, there is "
           f"nothing to compare against" for p in report if not p.reference_finite]
    out += [f"{p.output} has non-finite values (NaN or inf) in the {label}" for p in report
            if p.reference_finite and not p.finite]
    out += [f"{p.output} cosine {p.cosine_mean:.5f} in the {label} is below the {precision} threshold {threshold}"
            for p in report if p.output in GATED and p.finite and p.reference_finite
            and not p.cosine_mean >= threshold]
    return out


def verify_artifact(result, target, inputs: np.ndarray, reference: list, log, runtimes: list | None = None) -> None:
    """Gate one exported artifact (an ArtifactResult, updated in place: status, message, parity)."""
    try:
        runtimes = runtimes or target.runtimes(Path(result.path))
        reports, seconds = [], []
        for label, runtime in runtimes:
            start = time.perf_counter()
            reports.append((label, parity.compare(runtime, inputs, reference)))
            seconds.append(time.perf_counter() - start)
    except RuntimeUnavailable as e:
        result.status, result.message = "unverified", str(e)
        log(f"    not run: {e}")
        return
    except Exception as e:  # the runtime rejects the file: the export is broken, the others still run
        reraise_interrupt(e)
        first = str(e).splitlines()[0][:300] if str(e) else ""
        result.status = "verify-failed"
        result.message = f"the runtime could not run it ({type(e).__name__}: {first}); artifact kept at {result.path}"
        log(f"    FAIL: {result.message}")
        return
    result.parity = [{**p.to_dict(), "runtime": label} for label, report in reports for p in report]
    failed = []
    for (label, report), spent in zip(reports, seconds, strict=True):
        found = problems(report, label, result.precision, result.threshold)
        gated = [p.output for p in report if p.output in GATED]
        line = ", ".join(f"{p.output} cos {p.cosine_mean:.5f} (min {p.cosine_min:.4f}, max abs {p.max_abs:.3g})"
                         for p in report)
        log(f"    {label} on {len(inputs)} images ({spent / len(inputs) * 1e3:.0f} ms each): {line} -> "
            f"{'FAIL' if found else 'pass'} ({' and '.join(gated)} need >= {result.threshold}, every output finite)")
        failed += found
    result.status = "verify-failed" if failed else "ok"
    if failed:
        result.message = f"{'; '.join(failed)}; artifact kept at {result.path}"
