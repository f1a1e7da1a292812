"""The metadata every artifact carries: what model, which weights, what input, what outputs, which tools."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import asdict
from pathlib import Path

import torch

from edgedino.digest import regular_file, weights_sha256
from edgedino.export.module import ExportModule
from edgedino.export.spec import GUARDED, ExportSpec
from edgedino.license import weights_notice
from edgedino.schemas import stamp
from edgedino.version import __version__


def build_metadata(module: ExportModule, spec: ExportSpec, head_file: str | Path | None = None) -> dict:
    """A JSON-serialisable dict; targets add their converter versions and embed it as one string.

    A task head's record names its file and SHA-256 (`head_file`), so `edgedino verify` can find and check it."""
    backbone = module.backbone
    weights = getattr(backbone.source, "path", None)
    h, w = spec.imgsz
    batch = -1 if spec.dynamic else spec.batch
    shapes = module.output_shapes(batch)
    return stamp("artifact-metadata", {
        "model": backbone.cfg.name,
        "architecture": backbone.cfg.describe(),
        "weights": Path(weights).name if weights else None,
        "weights_sha256": weights_sha256(weights) if weights else None,
        **({"random_seed": backbone.source.seed} if getattr(backbone.source, "seed", None) is not None else {}),
        "input": {"name": "image", "shape": [batch, *module.input_shape()[1:]], "dtype": spec.input_format,
                  "layout": "NHWC" if spec.input_format == "uint8" else "NCHW", "color": "RGB",
                  "range": "0-255" if spec.input_format == "uint8" else "normalised"},
        "mean": [float(v) for v in (module.mean.flatten() / 255)],
        "std": [float(v) for v in (module.std.flatten() / 255)],
        "stride": backbone.stride,
        "outputs": {name: list(shapes[name]) for name in module.output_names},
        **({"head": _head_record(module, head_file)} if module.head is not None else {}),
        "target": spec.target,
        "precision": spec.precision,
        **({"quantization": {**asdict(spec.quant), "float_layers": list(spec.quant.float_layers)}}
           if spec.precision in GUARDED else {}),
        "versions": {"edgedino": __version__, "torch": torch.__version__.split("+")[0]},
        "created": datetime.date.today().isoformat(),
        "license": weights_notice(weights),
    })


def _head_record(module: ExportModule, head_file: str | Path | None) -> dict:
    """What the head predicts, and which head file it came from (when there is one)."""
    record = module.head.cfg.info().to_dict()
    if head_file is None:
        return record
    return {**record, "file": Path(head_file).name, "sha256": head_sha256(head_file)}


def head_sha256(path: str | Path) -> str:
    """SHA-256 of a head file (small, so read whole and never cached: a file rewritten in place is seen)."""
    return hashlib.sha256(regular_file(Path(path)).read_bytes()).hexdigest()


# What the runtime reads from the metadata, or what must match the weights; verify re-derives each of these.
DERIVED = ("model", "architecture", "weights_sha256", "input", "mean", "std", "stride", "outputs", "head", "target")


def inconsistencies(recorded: dict, module: ExportModule, spec: ExportSpec, head_file: str | Path | None) -> list[str]:
    """Each key of an artifact's metadata that differs from what export writes for this module and spec (the
    weights' model, input, mean/std the runtime normalises with, outputs, head), one line each."""
    import numpy as np

    expected = build_metadata(module, spec, head_file)
    found = []
    for key in DERIVED:
        want, got = expected.get(key), recorded.get(key)
        if key == "head" and isinstance(want, dict) and isinstance(got, dict):  # found by SHA-256, not by name
            want, got = ({k: v for k, v in d.items() if k != "file"} for d in (want, got))
            if "sha256" not in got:  # exported before edgedino recorded the head file
                want.pop("sha256", None)
        if key in ("mean", "std"):
            same = isinstance(got, list) and len(got) == len(want) and all(
                isinstance(v, (int, float)) for v in got) and np.allclose(got, want, rtol=0, atol=1e-6)
        else:
            same = got == want
        if not same:
            found.append(f"metadata {key} is {got!r}, but {want!r} for these weights")
    return found
