"""`edgedino verify`: an existing artifact against PyTorch, from the model and weights its metadata records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgedino.cli.common import add_command
from edgedino.errors import EdgeDinoError


def register(sub) -> None:
    p = add_command(
        sub, "verify", help="check an exported artifact against PyTorch (any target; for CI)",
        description="Run an artifact (.onnx, .xml, .mlpackage, .tflite) in the runtimes this machine has and "
                    "compare each output with PyTorch fp32 on real images, using the model and weights recorded "
                    "in its metadata. The weights file is found by its recorded name next to the artifact or in "
                    "the current folder, or given with --weights; its SHA-256 must match. An artifact with a task "
                    "head has its logits compared too, with the head file found or given (--head) the same way. "
                    "Core ML packages run "
                    "in edgedino's reference interpreter of the ML program (and in Core ML on macOS). Exit 0: "
                    "every runtime meets the precision's threshold; 1: one does not; 2: it cannot be verified.",
        examples="""
            edgedino verify exports/vits16_224_int8.mlpackage --images my_images/
            edgedino verify exports/vits16_224_fp16.onnx --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth
            edgedino verify exports/convnext_tiny_224_int8.tflite --images street.mp4 --json verify.json
            edgedino verify exports/vits16_classify_224_int8.onnx --head digits_head.pth
        """,
    )
    p.add_argument("artifact", help="the exported file (.onnx, .xml, .tflite) or package folder (.mlpackage)")
    p.add_argument("--images", help="image folder or video to compare on, 8 images (default: held-out photos "
                                    "shipped with edgedino, which the default calibration does not see)")
    p.add_argument("--weights", help="the weights file the artifact was exported from (default: its recorded "
                                     "name, next to the artifact or in the current folder)")
    p.add_argument("--head", help="the head file an artifact with a task head was exported with (default: its "
                                  "recorded name, next to the artifact or in the current folder)")
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.set_defaults(run=run)


def _located(what: str, flag: str, name: str, digest: str, artifact: Path, given: str | None, sha256) -> str:
    """The file `name` (given, or next to the artifact, or in the current folder) whose `sha256` is `digest`."""
    candidates = [Path(given)] if given else [artifact.parent / name, Path.cwd() / name]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        where = given or f"{artifact.parent} or {Path.cwd()}"
        raise EdgeDinoError(f"{artifact.name} was exported {what} {name}, not found in {where}: pass {flag} PATH")
    if sha256(str(found)) != digest:
        raise EdgeDinoError(f"{found} is not the {flag.removeprefix('--')} file {artifact.name} was exported {what} "
                            f"(SHA-256 {sha256(str(found))[:12]}…, recorded {name} {digest[:12]}…)")
    return str(found)


def weights_file(meta: dict, artifact: Path, given: str | None) -> str:
    """The weights the artifact was exported from, located and checked by SHA-256; an error says why not."""
    from edgedino.export.metadata import weights_sha256

    name, digest = meta.get("weights"), meta.get("weights_sha256")
    if not name or not digest:
        raise EdgeDinoError(f"{artifact.name} was exported with random weights (edgedino does not seed them), so "
                            "they cannot be regenerated and there is nothing to compare it with: export from a "
                            "weights file (--weights) to get a verifiable artifact")
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


def run(args) -> int:
    import warnings

    from edgedino.checkpoints import load_backbone
    from edgedino.cli.export import print_table
    from edgedino.export import verify
    from edgedino.export.exporter import (
        VERIFY_DEFAULT,
        VERIFY_IMAGES,
        ArtifactResult,
        ExportResult,
        _size,
        verify_artifact,
    )
    from edgedino.export.module import ExportModule
    from edgedino.export.spec import THRESHOLDS
    from edgedino.export.target import all_targets
    from edgedino.heads import load_head
    from edgedino.runtime.frames import HOLDOUT, model_inputs, read_frames

    path = Path(args.artifact)
    if not path.exists():
        raise EdgeDinoError(f"artifact not found: {path}")
    target = next((t for t in all_targets().values() if path.name.endswith(t.suffix)), None)
    if target is None:
        suffixes = ", ".join(t.suffix for t in all_targets().values())
        raise EdgeDinoError(f"{path}: not an artifact edgedino exports (suffixes: {suffixes})")
    runtimes = target.runtimes(path)
    meta = runtimes[0][1].metadata
    if not meta.get("model") or meta.get("precision") not in THRESHOLDS:
        raise EdgeDinoError(f"{path.name} has no edgedino metadata (model, precision): was it exported by edgedino?")
    weights = weights_file(meta, path, args.weights)
    head = head_file(meta, path, args.head)
    shape, input_format = meta["input"]["shape"], meta["input"]["dtype"]
    size = tuple(shape[1:3] if input_format == "uint8" else shape[2:4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = ExportModule(load_backbone(weights, meta["model"]), size, input_format,
                              head=load_head(head).head if head else None)
    inputs = model_inputs(read_frames(args.images or HOLDOUT, VERIFY_IMAGES), size, input_format)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    log(f"verifying {path.name}: {meta['model']} {meta['precision']} from {weights} on {len(inputs)} images")
    if head:
        log(f"task head from {head}: its logits are compared too")
    elif "head" in meta:
        log("note: the artifact has a task head, whose file its metadata does not record: only the backbone's "
            "outputs are compared")
    result = ArtifactResult(target.name, meta["precision"], str(path), "exported", size_mb=_size(path) / 1e6,
                            threshold=THRESHOLDS[meta["precision"]])
    verify_artifact(result, target, inputs, verify.reference(module, inputs), log, runtimes)
    report = ExportResult(meta["model"], weights, size, input_format, len(inputs), [result],
                          args.images or VERIFY_DEFAULT)
    print_table(report)
    if args.json:
        from edgedino.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if result.status == "ok" else 1
