"""`export()`: plan every target x precision, convert each atomically, verify each against PyTorch."""

from __future__ import annotations

import copy
import difflib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.export import verify
from edgedino.export.int8_policy import guarded, plan_precision
from edgedino.export.metadata import build_metadata
from edgedino.export.module import ExportModule
from edgedino.export.results import CALIB_DEFAULT, VERIFY_DEFAULT, ArtifactResult, ExportResult
from edgedino.export.smooth import ALPHA
from edgedino.export.spec import GUARDED, INPUT_FORMATS, INT8_POLICIES, PRECISIONS, THRESHOLDS, ExportSpec, QuantPlan
from edgedino.export.target import Conversion, Target, all_targets, get_target
from edgedino.runtime.base import RuntimeUnavailable
from edgedino.runtime.frames import HOLDOUT, SAMPLES, model_inputs, read_frames
from edgedino.runtime.preprocess import check_size, parse_imgsz

VERIFY_IMAGES = 8
GATED = ("cls", "patch_tokens", "logits")  # outputs whose mean cosine must meet the precision's threshold


def plan(targets: list[str], precisions: list[str], input_format: str = "float32") -> list[tuple[Target, str]]:
    """Every (target, precision) to make, checked before any work; 'all' keeps the pairs a target supports."""
    for p in precisions:
        if p not in PRECISIONS:
            near = difflib.get_close_matches(p, PRECISIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise EdgeDinoError(f"unknown precision {p!r}{hint} (precisions: {', '.join(PRECISIONS)})")
    everything = targets == ["all"]
    names = list(all_targets()) if everything else targets
    pairs = []
    for name in names:
        target = get_target(name)
        for p in precisions:
            if p in target.precisions:
                pairs.append((target, p))
            elif not everything:
                raise EdgeDinoError(f"the {name} target cannot export {p} (it does: {', '.join(target.precisions)})")
    if not pairs:
        raise EdgeDinoError(f"no target can export {', '.join(precisions)}")
    for target in {t.name: t for t, _ in pairs}.values():
        if input_format not in target.input_formats:
            raise EdgeDinoError(f"the {target.name} target cannot take {input_format} input "
                                f"(it takes: {', '.join(target.input_formats)})")
        missing = target.available()
        if missing:
            raise EdgeDinoError(missing)
    return pairs


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise EdgeDinoError(f"output directory {out} is not writable: {e.strerror or e}") from None


def export(
    targets: list[str] | str = "onnx",
    model: str | None = None,
    weights: str | None = None,
    precisions: list[str] | str = "fp32",
    imgsz: str | int | tuple[int, int] = 224,
    calib: str | None = None,
    calib_size: int = 32,
    out: str | Path = "exports",
    input_format: str = "float32",
    batch: int = 1,
    dynamic: bool = False,
    verify_outputs: bool = True,
    options: dict | None = None,
    log: Callable[[str], None] = print,
    head: str | Path | None = None,
    verify_images: str | Path | None = None,
    int8_policy: str = "auto",
    smoothquant: float | None = ALPHA,
) -> ExportResult:
    """Export a backbone (with a task head from `edgedino head train`, if given) to every target x precision
    asked, each checked on images calibration did not see; see `edgedino export --help`. `smoothquant` is the
    SmoothQuant strength for int8 (None: off, the int8 of earlier versions, for comparisons)."""
    from edgedino.checkpoints import load_backbone

    targets = [targets] if isinstance(targets, str) else list(targets)
    precisions = [precisions] if isinstance(precisions, str) else list(precisions)
    if batch < 1:
        raise EdgeDinoError(f"batch must be at least 1, got {batch}")
    if input_format not in INPUT_FORMATS:
        raise EdgeDinoError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
    if int8_policy not in INT8_POLICIES:
        raise EdgeDinoError(f"unknown int8 policy {int8_policy!r} (policies: {', '.join(INT8_POLICIES)})")
    pairs = plan(targets, precisions, input_format)
    if dynamic and any(not t.dynamic_shapes for t, _ in pairs):
        raise EdgeDinoError("--dynamic is only supported by the onnx target")
    if head is not None:
        from edgedino.heads import backbone_for, load_head

        head_file = load_head(head)
        backbone, head_module = backbone_for(head_file, weights, model), head_file.head
        log(f"head: {head_module.cfg.kind} {head_module.cfg.task}, {len(head_module.cfg.classes)} classes, "
            f"trained on {head_file.backbone.describe()}")
    else:
        backbone, head_module = load_backbone(weights, model), None
    size = check_size(parse_imgsz(imgsz), backbone.stride)
    guarded_precisions = sorted({p for _, p in pairs if p in GUARDED})
    calib_frames = read_frames(calib, calib_size) if guarded_precisions else []
    verify_frames = read_frames(verify_images if verify_images is not None else HOLDOUT, VERIFY_IMAGES)
    out = Path(out)
    check_writable(out)  # last of the checks, so a bad flag leaves no empty folder behind
    if guarded_precisions and len(calib_frames) < calib_size:
        log(f"note: calibration uses {len(calib_frames)} images ({calib_size} asked)")
    if calib_frames and Path(verify_images or HOLDOUT).resolve() == Path(calib or SAMPLES).resolve():
        log("note: the verification images are the calibration images: parity is measured in-sample")
    calib_inputs = model_inputs(calib_frames, size, input_format) if calib_frames else None
    verify_inputs = model_inputs(verify_frames, size, input_format)
    reference_module = ExportModule(copy.deepcopy(backbone), size, input_format, head=copy.deepcopy(head_module))
    plans = {p: plan_precision(p, int8_policy, reference_module, calib_inputs, verify_inputs, log, smoothquant)
             for p in guarded_precisions}
    job = _Job(backbone, head_module, head, size, input_format, batch, dynamic, dict(options or {}), out, calib_inputs,
               verify_inputs, verify.reference(reference_module, verify_inputs), plans, verify_outputs, log)
    results = []
    for i, (target, precision) in enumerate(pairs, 1):
        log(f"[{i}/{len(pairs)}] {target.name} {precision}: exporting")
        results.append(job.artifact(target, precision))
    return ExportResult(backbone.cfg.name, weights, size, input_format, len(verify_inputs), results,
                        str(verify_images) if verify_images is not None else VERIFY_DEFAULT,
                        str(calib) if calib is not None else CALIB_DEFAULT, len(calib_frames), int8_policy,
                        {k: v for plan in plans.values() for k, v in plan.report().items()})


@dataclass
class _Job:
    """What every artifact of one export() call shares."""

    backbone: object
    head: object
    head_file: str | Path | None
    size: tuple[int, int]
    input_format: str
    batch: int
    dynamic: bool
    options: dict
    out: Path
    calib: np.ndarray | None
    verify_inputs: np.ndarray
    reference: list
    plans: dict  # quantized precision -> PrecisionPlan
    verify_outputs: bool
    log: Callable[[str], None]

    def artifact(self, target: Target, precision: str) -> ArtifactResult:
        """One target x precision: a quantized precision as its int8 policy says, any other one as it is."""
        make = lambda quant: self.make(target, precision, quant)  # noqa: E731
        if precision in self.plans:
            return guarded(self.plans[precision], target.int8, THRESHOLDS[precision], make, self.log)
        return make(QuantPlan())

    def make(self, target: Target, precision: str, quant: QuantPlan) -> ArtifactResult:
        """Convert, publish and verify one artifact."""
        spec = ExportSpec(target.name, precision, self.size, self.input_format, self.batch, self.dynamic,
                          dict(self.options), quant)
        plan = self.plans.get(precision)
        prepare = (lambda module: plan.prepare(module, target.int8)) if plan else None
        result = _one(target, spec, self.backbone, self.calib if plan else None, self.out, self.log, self.head,
                      self.head_file, prepare)
        result.float_layers = list(quant.float_layers)
        if result.status == "exported" and self.verify_outputs:
            verify_artifact(result, target, self.verify_inputs, self.reference, self.log)
        elif result.status == "exported":
            result.status, result.message = "unverified", "not verified (--no-verify)"
        return result


def _one(target: Target, spec: ExportSpec, backbone, calib: np.ndarray | None, out: Path, log,
         head=None, head_file: str | Path | None = None, prepare: Callable | None = None) -> ArtifactResult:
    """Convert into a staging folder, run the static checks, then publish under the final name. `prepare` turns
    the deployed module into the form the precision exports (SmoothQuant for int8)."""
    name = f"{backbone.cfg.name}_{head.cfg.task}" if head is not None else backbone.cfg.name
    final = out / (spec.filename(name) + target.suffix)
    result = ArtifactResult(target.name, spec.precision, None, "exported", threshold=spec.threshold)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=out))
    start = time.perf_counter()
    try:
        module = ExportModule(copy.deepcopy(backbone), spec.imgsz, spec.input_format, spec.batch,
                              head=copy.deepcopy(head))
        module = prepare(module) if prepare else module
        conv = Conversion(module, spec, calib, build_metadata(module, spec, head_file))
        staged = staging / final.name
        with redirect_stdout(sys.stderr):  # converters' progress bars; stdout carries only the results
            target.convert(conv, staged)
        result.checks = target.static_checks(conv, staged)
        result.export_s = time.perf_counter() - start
        _publish(staging, out, final.name)
    except EdgeDinoError as e:
        result.status, result.message = "export-failed", str(e)
    except Exception as e:  # a converter's failure is reported per artifact; the other artifacts still run
        result.status, result.message = "export-failed", f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if result.status == "export-failed":
        log(f"    failed: {result.message}")
        return result
    result.path = str(final)
    result.size_mb = _size(final) / 1e6
    log(f"    wrote {final} ({result.size_mb:.1f} MB) in {result.export_s:.1f}s")
    return result


def _publish(staging: Path, out: Path, name: str) -> None:
    """Move the staged files next to their final names, the main file last (so it appears only when whole)."""
    for f in sorted(staging.iterdir(), key=lambda p: p.name == name):
        dest = out / f.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(f, dest)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    side = path.with_suffix(".bin")  # OpenVINO weights
    return path.stat().st_size + (side.stat().st_size if path.suffix == ".xml" and side.exists() else 0)


def verify_artifact(result: ArtifactResult, target: Target, inputs: np.ndarray, reference: list, log,
                    runtimes: list | None = None) -> None:
    """Run the artifact in every runtime its target offers here (or those given) and compare each with PyTorch;
    all must pass."""
    try:
        runtimes = runtimes or target.runtimes(Path(result.path))
        parity, seconds = [], []
        for label, runtime in runtimes:
            start = time.perf_counter()
            parity.append((label, verify.compare(runtime, inputs, reference)))
            seconds.append(time.perf_counter() - start)
    except RuntimeUnavailable as e:
        result.status, result.message = "unverified", str(e)
        log(f"    not run: {e}")
        return
    except Exception as e:  # the runtime rejects the file: the export is broken, the others still run
        first = str(e).splitlines()[0][:300] if str(e) else ""
        result.status = "verify-failed"
        result.message = f"the runtime could not run it ({type(e).__name__}: {first}); artifact kept at {result.path}"
        log(f"    FAIL: {result.message}")
        return
    result.parity = [{**p.to_dict(), "runtime": label} for label, report in parity for p in report]
    failed = []
    for (label, report), spent in zip(parity, seconds, strict=True):
        gated = [p for p in report if p.output in GATED]
        below = [p for p in gated if p.cosine_mean < result.threshold]
        line = ", ".join(f"{p.output} cos {p.cosine_mean:.5f} (min {p.cosine_min:.4f}, max abs {p.max_abs:.3g})"
                         for p in report)
        log(f"    {label} on {len(inputs)} images ({spent / len(inputs) * 1e3:.0f} ms each): {line} -> "
            f"{'FAIL' if below else 'pass'} "
            f"({' and '.join(p.output for p in gated)} need >= {result.threshold})")
        failed += [f"{p.output} cosine {p.cosine_mean:.5f} in the {label}" for p in below]
    result.status = "verify-failed" if failed else "ok"
    if failed:
        result.message = (f"{'; '.join(failed)} is below the {result.precision} threshold {result.threshold}; "
                          f"artifact kept at {result.path}")
