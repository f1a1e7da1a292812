"""`export()`: plan every target x precision, convert each atomically, verify each against PyTorch."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgedino.atomic import disk_full, make_parents, remove_if_empty, remove_stale_staging, staging
from edgedino.errors import EdgeDinoError, did_you_mean, reraise_interrupt, sticky_interrupt
from edgedino.export import parity
from edgedino.export.gate import verify_artifact
from edgedino.export.int8_policy import guarded, plan_precision
from edgedino.export.metadata import build_metadata
from edgedino.export.module import ExportModule
from edgedino.export.results import CALIB_DEFAULT, VERIFY_DEFAULT, ArtifactResult, ExportResult
from edgedino.export.smooth import ALPHA
from edgedino.export.spec import (
    GUARDED,
    INPUT_FORMATS,
    INT8_POLICIES,
    PRECISIONS,
    VERIFY_IMAGES,
    ExportSpec,
    QuantPlan,
)
from edgedino.export.target import Conversion, Target, all_targets, get_target
from edgedino.flags import is_model_file
from edgedino.runtime.formats import DEFAULT_TARGET
from edgedino.runtime.frames import HOLDOUT, SAMPLES, model_inputs, read_frames
from edgedino.runtime.preprocess import check_size, parse_imgsz

if TYPE_CHECKING:
    from edgedino.models import Backbone


def plan(targets: list[str], precisions: list[str], input_format: str = "float32") -> list[tuple[Target, str]]:
    """Every (target, precision) to make, checked before any work; 'all' keeps the pairs a target supports."""
    for p in precisions:
        if p not in PRECISIONS:
            raise EdgeDinoError(f"unknown precision {p!r}{did_you_mean(p, PRECISIONS)} "
                                f"(precisions: {', '.join(PRECISIONS)})")
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


def export_model(model_or_path: Backbone | str | os.PathLike, target: list[str] | str = DEFAULT_TARGET,
                 precision: list[str] | str = "fp32", **options) -> ExportResult:
    """`edgedino.export(model_or_path, target=..., precision=...)`: a Backbone object, a preset name, or a weights
    file, Hub id or link (as `--model` reads them); every other option is export()'s."""
    if isinstance(model_or_path, (str, os.PathLike)) and is_model_file(os.fspath(model_or_path)):
        return export(target, weights=os.fspath(model_or_path), precisions=precision, **options)
    return export(target, model=model_or_path, precisions=precision, **options)


def export(
    targets: list[str] | str = DEFAULT_TARGET,
    model: str | Backbone | None = None,
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
    asked, each checked on images calibration did not see; see `edgedino export --help`. `model` is a preset name
    or a Backbone object (edgedino.create_model, load_backbone). `smoothquant` is the SmoothQuant strength for
    int8 (None: off, the int8 of earlier versions, for comparisons)."""
    if model is not None and not isinstance(model, str):
        with backbone_weights(model, weights, head) as (model, weights):
            return export(targets, model, weights, precisions, imgsz, calib, calib_size, out, input_format, batch,
                          dynamic, verify_outputs, options, log, head, verify_images, int8_policy, smoothquant)
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
    backbone, head_module = _networks(weights, model, head, log)
    size = check_size(parse_imgsz(imgsz), backbone.stride)
    name = f"{backbone.cfg.name}_{head_module.cfg.task}" if head_module is not None else backbone.cfg.name
    out = Path(out)
    check_out(out)
    specs = [(t, ExportSpec(t.name, p, size, input_format, batch, dynamic, dict(options or {}))) for t, p in pairs]
    for target, spec in specs:
        target.check_destination(out / (spec.filename(name) + target.suffix))
    guarded_precisions = sorted({p for _, p in pairs if p in GUARDED})
    calib_inputs, verify_inputs = _images(calib, calib_size if guarded_precisions else 0, verify_images, size,
                                          input_format, log)
    reference_module = ExportModule(copy.deepcopy(backbone), size, input_format, head=copy.deepcopy(head_module))
    plans = {p: plan_precision(p, int8_policy, reference_module, calib_inputs, verify_inputs, log, smoothquant)
             for p in guarded_precisions}
    job = _Job(backbone, head_module, head, name, out, calib_inputs, verify_inputs,
               parity.reference(reference_module, verify_inputs), plans, verify_outputs, log)
    created, results = open_out(out), []  # last of the checks, so a bad flag leaves no empty folder behind
    try:
        for i, (target, spec) in enumerate(specs, 1):
            log(f"[{i}/{len(specs)}] {target.name} {spec.precision}: exporting")
            results.append(job.artifact(target, spec))
    finally:
        if not any(r.path for r in results):
            remove_if_empty(created)
    return ExportResult(backbone.cfg.name, weights, size, input_format, len(verify_inputs), results,
                        str(verify_images) if verify_images is not None else VERIFY_DEFAULT,
                        str(calib) if calib is not None else CALIB_DEFAULT, 0 if calib_inputs is None
                        else len(calib_inputs), int8_policy,
                        {k: v for plan in plans.values() for k, v in plan.report().items()})


@contextmanager
def backbone_weights(backbone, weights, head) -> Iterator[tuple[str, str | None]]:
    """(model, weights) that export a Backbone object exactly as it is now: its weights saved in the edgedino
    layout to a temporary <preset>.pt that lives as long as the export, so the artifact is the one exporting that
    file gives and its metadata records their SHA-256 (not the file it was once loaded from, nor a random seed:
    export that file, or the preset, to keep those)."""
    from edgedino.checkpoints import save_backbone
    from edgedino.models import Backbone

    if not isinstance(backbone, Backbone):
        raise EdgeDinoError(f"model must be a preset name or an edgedino Backbone, not a {type(backbone).__name__}")
    if weights is not None or head is not None:
        raise EdgeDinoError("a Backbone object carries its own weights: give it without weights or head")
    with tempfile.TemporaryDirectory(prefix="edgedino-backbone-") as tmp:
        yield backbone.cfg.name, str(save_backbone(backbone, Path(tmp) / f"{backbone.cfg.name}.pt"))


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


def _images(calib: str | None, calib_size: int, verify_images: str | Path | None, size: tuple[int, int],
            input_format: str, log) -> tuple[np.ndarray | None, np.ndarray]:
    """Real images in the artifact's input format: calibration (None when no precision needs it) and
    verification (by default held-out photos the default calibration does not see)."""
    calib_frames = read_frames(calib, calib_size) if calib_size else []
    verify_frames = read_frames(verify_images if verify_images is not None else HOLDOUT, VERIFY_IMAGES)
    if calib_size and len(calib_frames) < calib_size:
        log(f"note: calibration uses {len(calib_frames)} images ({calib_size} asked)")
    if calib_frames and Path(verify_images or HOLDOUT).resolve() == Path(calib or SAMPLES).resolve():
        log("note: the verification images are the calibration images: parity is measured in-sample")
    calib_inputs = model_inputs(calib_frames, size, input_format) if calib_frames else None
    return calib_inputs, model_inputs(verify_frames, size, input_format)


@dataclass
class _Job:
    """What every artifact of one export() call shares."""

    backbone: object
    head: object
    head_file: str | Path | None
    name: str  # the artifacts' file name stem: model, and the head's task
    out: Path
    calib: np.ndarray | None
    verify_inputs: np.ndarray
    reference: list
    plans: dict  # quantized precision -> PrecisionPlan
    verify_outputs: bool
    log: Callable[[str], None]

    def artifact(self, target: Target, spec: ExportSpec) -> ArtifactResult:
        """One target x precision: a quantized precision as its int8 policy says, any other one as it is."""
        make = lambda quant: self.make(target, replace(spec, quant=quant))  # noqa: E731
        if spec.precision in self.plans:
            return guarded(self.plans[spec.precision], target.int8, spec.threshold, make, self.log)
        return make(QuantPlan())

    def make(self, target: Target, spec: ExportSpec) -> ArtifactResult:
        """Convert, publish and verify one artifact."""
        plan = self.plans.get(spec.precision)
        prepare = (lambda module: plan.prepare(module, target.int8)) if plan else None
        for debris in remove_stale_staging(self.out, [spec.filename(self.name)]):
            self.log(f"    removed {debris.name}, left in {self.out} by an export that was killed")
        with staging(self.out, spec.filename(self.name)) as folder:
            # The staging folder ends up holding what the artifact replaced: removed once it is verified,
            # so a reader that opened the old one does not have it deleted under it as the new one lands.
            result = _one(target, spec, self.backbone, self.calib if plan else None,
                          self.out / (spec.filename(self.name) + target.suffix), folder, self.log, self.head,
                          self.head_file, prepare)
            result.float_layers = list(spec.quant.float_layers)
            if result.status == "exported" and self.verify_outputs:
                verify_artifact(result, target, self.verify_inputs, self.reference, self.log)
        if result.status == "exported" and not self.verify_outputs:
            result.status, result.message = "unverified", "not verified (--no-verify)"
        return result


def _one(target: Target, spec: ExportSpec, backbone, calib: np.ndarray | None, final: Path, staging_dir: Path, log,
         head=None, head_file: str | Path | None = None, prepare: Callable | None = None) -> ArtifactResult:
    """Convert into the staging folder, run the static checks, then publish under the final name. `prepare` turns
    the deployed module into the form the precision exports (SmoothQuant for int8)."""
    result = ArtifactResult(target.name, spec.precision, None, "exported", threshold=spec.threshold)
    start = time.perf_counter()
    try:
        module = ExportModule(copy.deepcopy(backbone), spec.imgsz, spec.input_format, spec.batch,
                              head=copy.deepcopy(head))
        module = prepare(module) if prepare else module
        conversion = Conversion(module, spec, calib, build_metadata(module, spec, head_file))
        staged = staging_dir / final.name
        with redirect_stdout(sys.stderr), sticky_interrupt():  # progress bars to stderr: stdout is the results
            target.convert(conversion, staged)
        result.checks = target.static_checks(conversion, staged)
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
