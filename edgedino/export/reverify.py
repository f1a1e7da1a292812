"""Verifying an artifact that exists already: the weights (and head) its metadata records, found by name and
checked by SHA-256, rebuilt in PyTorch and compared through the same gate as export, plus the checks that the
metadata agrees with the weights and with what the artifact stores."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from edgedino.errors import EdgeDinoError


def _located(what: str, flag: str, name: str, digest: str, artifact: Path, given: str | None, sha256) -> str:
    """The file `name` (given, or next to the artifact, or in the current folder) whose `sha256` is `digest`.
    A recorded name is only ever a plain file name: never a path that leads elsewhere."""
    if not isinstance(digest, str):
        raise EdgeDinoError(f"{artifact.name}: its metadata records no SHA-256 of the {flag.removeprefix('--')} file")
    if not given and not plain_name(name):
        raise EdgeDinoError(f"{artifact.name}: its metadata records {name!r} as the {flag.removeprefix('--')} file, "
                            f"which is not a plain file name: pass {flag} PATH")
    candidates = [Path(given)] if given else [artifact.parent / name, Path.cwd() / name]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        where = given or f"{artifact.parent} or {Path.cwd()}"
        raise EdgeDinoError(f"{artifact.name} was exported {what} {name}, not found in {where}: pass {flag} PATH")
    if sha256(str(found)) != digest:
        raise EdgeDinoError(f"{found} is not the {flag.removeprefix('--')} file {artifact.name} was exported {what} "
                            f"(SHA-256 {sha256(str(found))[:12]}…, recorded {name} {digest[:12]}…)")
    return str(found)


def plain_name(name) -> bool:
    """A file name with no folder part: not '', '.', '..', absolute, or holding a separator."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name)


def weights_file(meta: dict, artifact: Path, given: str | None) -> str | None:
    """The weights the artifact was exported from, located and checked by SHA-256 (None: random weights drawn
    from the seed its metadata records); an error says why it cannot be found."""
    from edgedino.digest import weights_sha256

    name, digest = meta.get("weights"), meta.get("weights_sha256")
    if not name or not digest:
        if meta.get("random_seed") is not None and not given:
            return None
        raise EdgeDinoError(f"{artifact.name} records neither its weights file nor the seed of its random weights "
                            "(exported by an older edgedino), so there is nothing to compare it with: export it "
                            "again")
    return _located("from", "--weights", name, digest, artifact, given, weights_sha256)


def head_file(meta: dict, artifact: Path, given: str | None) -> str | None:
    """The head file the artifact was exported with, located and checked by SHA-256; None for a backbone, or a
    head whose file the metadata does not record (exported before edgedino recorded it) when none is given."""
    from edgedino.export.metadata import head_sha256

    record = meta.get("head")
    if not record:
        if given:
            raise EdgeDinoError(f"{artifact.name} has no task head: verify it without --head")
        return None
    name, digest = record.get("file"), record.get("sha256")
    if not name or not digest:
        if given:
            raise EdgeDinoError(f"{artifact.name} does not record which head file it was exported with, so {given} "
                                "cannot be checked against it: export it again with --head to verify its logits")
        return None
    return _located("with", "--head", name, digest, artifact, given, head_sha256)


def recorded_spec(meta: dict, target, path: Path):
    """The ExportSpec the metadata describes (model, precision, input); an error if it is missing or malformed."""
    from edgedino.export.spec import INPUT_FORMATS, THRESHOLDS, ExportSpec

    if not isinstance(meta.get("model"), str) or meta.get("precision") not in THRESHOLDS:
        raise EdgeDinoError(f"{path.name} has no edgedino metadata (model, precision): was it exported by edgedino?")
    given = meta.get("input")
    shape = given.get("shape") if isinstance(given, dict) else None
    if (not isinstance(shape, list) or len(shape) != 4 or not all(type(d) is int for d in shape)
            or given.get("dtype") not in INPUT_FORMATS):
        raise EdgeDinoError(f"{path.name}: its metadata's input {given!r} is not a 4-d shape with a dtype of "
                            f"{', '.join(INPUT_FORMATS)}")
    fmt = given["dtype"]
    size = tuple(shape[1:3] if fmt == "uint8" else shape[2:4])
    if min(size) <= 0:
        raise EdgeDinoError(f"{path.name}: its metadata's input shape {shape} has no fixed height and width")
    return ExportSpec(target.name, meta["precision"], size, fmt, max(shape[0], 1), shape[0] == -1)


def consistency(result, meta: dict, module, spec, head: str | None, target, path: Path, log) -> None:
    """Fail `result` when the metadata disagrees with the weights (mean/std, input, outputs, ...) or claims a
    precision (and so a threshold) other than what the artifact stores."""
    from edgedino.errors import reraise_interrupt
    from edgedino.export.metadata import inconsistencies
    from edgedino.export.spec import THRESHOLDS

    found = inconsistencies(meta, module, spec, head)
    try:
        stored = target.stored_precision(path)
    except Exception as e:  # the runtime ran it, so this is unexpected: say so rather than pass
        reraise_interrupt(e)
        stored = f"unreadable ({type(e).__name__})"
    if stored is not None and stored != spec.precision:
        found.append(f"metadata precision is {spec.precision!r}, but the artifact stores {stored} weights and ops "
                     f"(threshold {THRESHOLDS.get(stored, '-')}, not {spec.threshold})")
    for line in found:
        log(f"    FAIL: {line}")
    if found:
        result.status = "verify-failed"
        result.message = "; ".join(found + ([result.message] if result.message else []))


def verify_existing(path: str | Path, source: str | None = None, weights: str | None = None,
                    head: str | None = None, log=None):
    """The ExportResult of checking one artifact on `source` (default: the held-out photos) against the weights
    (and head) it was exported from; `weights` and `head` override the recorded names."""
    from edgedino.checkpoints import load_backbone
    from edgedino.export import parity
    from edgedino.export.gate import verify_artifact
    from edgedino.export.module import ExportModule
    from edgedino.export.results import VERIFY_DEFAULT, ArtifactResult, ExportResult
    from edgedino.export.spec import VERIFY_IMAGES
    from edgedino.export.target import artifact_runtimes
    from edgedino.heads import load_head
    from edgedino.runtime.frames import HOLDOUT, model_inputs, read_frames

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    path = Path(path)
    target, runtimes, meta = artifact_runtimes(path)
    runtime = runtimes[0][1]
    spec = recorded_spec(meta, target, path)
    weights = weights_file(meta, path, weights)
    head = head_file(meta, path, head)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = load_backbone(weights, meta["model"], seed=meta.get("random_seed", 0))
        module = ExportModule(backbone, spec.imgsz, spec.input_format,
                              head=load_head(head).head if head else None)
    frames = read_frames(source or HOLDOUT, VERIFY_IMAGES)
    # The artifact gets its input as the runtime makes it, from the metadata's mean/std; PyTorch as the model needs.
    inputs = runtime.preprocess(frames, spec.imgsz)
    truth = model_inputs(frames, spec.imgsz, spec.input_format, (module.mean.flatten() / 255).tolist(),
                         (module.std.flatten() / 255).tolist())
    origin = weights or f"random weights (seed {meta['random_seed']})"
    log(f"verifying {path.name}: {meta['model']} {spec.precision} from {origin} on {len(inputs)} images")
    if head:
        log(f"task head from {head}: its logits are compared too")
    elif "head" in meta:
        log("note: the artifact has a task head, whose file its metadata does not record: only the backbone's "
            "outputs are compared")
    result = ArtifactResult(target.name, spec.precision, str(path), "exported", size_mb=target.size(path) / 1e6,
                            threshold=spec.threshold)
    verify_artifact(result, target, inputs, parity.reference(module, truth), log, runtimes)
    consistency(result, meta, module, spec, head, target, path, log)
    return ExportResult(meta["model"], weights, spec.imgsz, spec.input_format, len(inputs), [result],
                        source or VERIFY_DEFAULT)
