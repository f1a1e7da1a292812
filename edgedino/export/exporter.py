"""`export()`: plan every target x precision, convert each atomically, verify each against PyTorch."""

from __future__ import annotations

import copy
import difflib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgedino.atomic import disk_full, make_parents, remove_if_empty
from edgedino.errors import EdgeDinoError, reraise_interrupt
from edgedino.export import parity
from edgedino.export.gate import verify_artifact
from edgedino.export.metadata import build_metadata
from edgedino.export.module import ExportModule
from edgedino.export.spec import INPUT_FORMATS, PRECISIONS, ExportSpec
from edgedino.export.target import Conversion, Target, all_targets, get_target
from edgedino.runtime.formats import DEFAULT_TARGET
from edgedino.runtime.frames import model_inputs, read_frames
from edgedino.runtime.preprocess import check_size, parse_imgsz

VERIFY_IMAGES = 8


@dataclass
class ArtifactResult:
    target: str
    precision: str
    path: str | None
    status: str  # "ok", "verify-failed", "export-failed", "unverified" (no runtime here: static checks only)
    size_mb: float = 0.0
    export_s: float = 0.0
    threshold: float = 0.0
    parity: list[dict] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverified")


@dataclass
class ExportResult:
    model: str
    weights: str | None
    imgsz: tuple[int, int]
    input_format: str
    verify_images: int
    artifacts: list[ArtifactResult]

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


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


def open_out(out: Path) -> list[Path]:
    """Create the output folder (and missing parents) and check it is writable; the folders it created, which
    are removed again if the export publishes nothing."""
    check_out(out)
    created = make_parents(out / "artifact")
    try:
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        remove_if_empty(created)
        raise EdgeDinoError(f"output directory {out} is not writable: {e.strerror or e}") from None
    return created


def check_out(out: Path) -> None:
    if os.path.lexists(out) and not out.is_dir():
        raise EdgeDinoError(f"output directory {out} is not writable: it is a file, not a folder")


def check_finite(*modules) -> None:
    """Refuse weights holding NaN or inf: every artifact made from them would be garbage."""
    import torch

    for module in modules:
        for name, t in [*module.named_parameters(), *module.named_buffers()] if module is not None else []:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise EdgeDinoError(f"the weights hold non-finite values (NaN or inf) in {name}: refusing to export "
                                    "them (was the training run that wrote them diverging?)")


def export(
    targets: list[str] | str = DEFAULT_TARGET,
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
) -> ExportResult:
    """Export a backbone (with a task head from `edgedino head train`, if given) to every target x precision
    asked; see `edgedino export --help`."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    precisions = [precisions] if isinstance(precisions, str) else list(precisions)
    if batch < 1:
        raise EdgeDinoError(f"batch must be at least 1, got {batch}")
    if input_format not in INPUT_FORMATS:
        raise EdgeDinoError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
    pairs = plan(targets, precisions, input_format)
    if dynamic and any(not t.dynamic_shapes for t, _ in pairs):
        raise EdgeDinoError("--dynamic is only supported by the onnx target")
    backbone, head_module = _networks(weights, model, head, log)
    size = check_size(parse_imgsz(imgsz), backbone.stride)
    name = f"{backbone.cfg.name}_{head_module.cfg.task}" if head_module is not None else backbone.cfg.name
    out = Path(out)
    check_out(out)
    specs = [(t, ExportSpec(t.name, p, size, input_format, batch, dynamic, dict(options or {}))) for t, p in pairs]
    for target, spec in specs:
        target.check_destination(out / (spec.filename(name) + target.suffix))
    needs_calib = any(p == "int8" for _, p in pairs)
    inputs = _images(calib, calib_size if needs_calib else 0, size, input_format, log)
    verify_inputs = inputs[:VERIFY_IMAGES]
    reference = parity.reference(ExportModule(copy.deepcopy(backbone), size, input_format,
                                              head=copy.deepcopy(head_module)),
                                 verify_inputs)
    created, results = open_out(out), []  # last of the checks, so a bad flag leaves no empty folder behind
    try:
        for i, (target, spec) in enumerate(specs, 1):
            log(f"[{i}/{len(specs)}] {target.name} {spec.precision}: exporting")
            with tempfile.TemporaryDirectory(prefix=f".{spec.filename(name)}.", dir=out) as staging:
                # The staging folder ends up holding what the artifact replaced: removed once it is verified,
                # so a reader that opened the old one does not have it deleted under it as the new one lands.
                result = _one(target, spec, backbone, inputs[:calib_size] if needs_calib else None,
                              out / (spec.filename(name) + target.suffix), Path(staging), log, head_module, head)
                if result.status == "exported" and verify_outputs:
                    verify_artifact(result, target, verify_inputs, reference, log)
            if result.status == "exported" and not verify_outputs:
                result.status = "unverified"
                result.message = "not verified (--no-verify)"
            results.append(result)
    finally:
        if not any(r.path for r in results):
            remove_if_empty(created)
    return ExportResult(backbone.cfg.name, weights, size, input_format, len(verify_inputs), results)


def _networks(weights, model, head, log):
    """(backbone, head) to export: the head file's backbone when a head is given; refused if not finite."""
    from edgedino.checkpoints import load_backbone

    if head is None:
        backbone, head_module = load_backbone(weights, model), None
    else:
        from edgedino.heads import backbone_for, load_head

        head_file = load_head(head)
        backbone, head_module = backbone_for(head_file, weights, model), head_file.head
        log(f"head: {head_module.cfg.kind} {head_module.cfg.task}, {len(head_module.cfg.classes)} classes, "
            f"trained on {head_file.backbone.describe()}")
    check_finite(backbone, head_module)
    return backbone, head_module


def _images(calib: str | None, calib_size: int, size: tuple[int, int], input_format: str, log) -> np.ndarray:
    """Real images in the artifact's input format: calibration (the first `calib_size`) and verification."""
    frames = read_frames(calib, max(calib_size, VERIFY_IMAGES))
    if calib_size and len(frames) < calib_size:
        log(f"note: calibration uses {len(frames)} images ({calib_size} asked)")
    return model_inputs(frames, size, input_format)


def _one(target: Target, spec: ExportSpec, backbone, calib: np.ndarray | None, final: Path, staging: Path, log,
         head=None, head_file: str | Path | None = None) -> ArtifactResult:
    """Convert into the staging folder, run the static checks, then publish under the final name."""
    result = ArtifactResult(target.name, spec.precision, None, "exported", threshold=spec.threshold)
    start = time.perf_counter()
    try:
        module = ExportModule(copy.deepcopy(backbone), spec.imgsz, spec.input_format, spec.batch,
                              head=copy.deepcopy(head))
        conv = Conversion(module, spec, calib, build_metadata(module, spec, head_file))
        staged = staging / final.name
        with redirect_stdout(sys.stderr):  # converters' progress bars; stdout carries only the results
            target.convert(conv, staged)
        result.checks = target.static_checks(conv, staged)
        result.export_s = time.perf_counter() - start
        target.publish(staged, final)
    except EdgeDinoError as e:
        result.status, result.message = "export-failed", str(e)
    except Exception as e:  # a converter's failure is reported per artifact; the other artifacts still run
        reraise_interrupt(e)
        result.status, result.message = "export-failed", failure(e, final.parent)
    if result.status == "export-failed":
        log(f"    failed: {result.message}")
        return result
    result.path = str(final)
    result.size_mb = target.size(final) / 1e6
    log(f"    wrote {final} ({result.size_mb:.1f} MB) in {result.export_s:.1f}s")
    return result


def failure(e: Exception, out: Path) -> str:
    """One line for a converter's failure; a full disk is called that (OpenVINO says 'basic_ios::clear')."""
    first = str(e).splitlines()[0][:300] if str(e) else ""
    if disk_full(out):
        return f"no space left on device in {out} ({type(e).__name__}: {first})"
    return f"{type(e).__name__}: {first}"
