"""The metadata every artifact carries: what model, which weights, what input, what outputs, which tools."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import torch

from edgedino.export.module import ExportModule
from edgedino.export.spec import GUARDED, ExportSpec
from edgedino.license import DINOV3_NOTICE, RANDOM_NOTICE
from edgedino.version import __version__


@lru_cache(maxsize=8)
def weights_sha256(path: str) -> str:
    """SHA-256 of a weights file, or of the weights file inside a Hugging Face folder."""
    p = Path(path)
    if p.is_dir():
        p = next(f for f in (p / "model.safetensors", p / "pytorch_model.bin") if f.exists())
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_metadata(module: ExportModule, spec: ExportSpec, head_file: str | Path | None = None) -> dict:
    """A JSON-serialisable dict; targets add their converter versions and embed it as one string.

    A task head's record names its file and SHA-256 (`head_file`), so `edgedino verify` can find and check it."""
    backbone = module.backbone
    weights = getattr(backbone.source, "path", None)
    h, w = spec.imgsz
    batch = -1 if spec.dynamic else spec.batch
    shapes = module.output_shapes(batch)
    return {
        "model": backbone.cfg.name,
        "architecture": backbone.cfg.describe(),
        "weights": Path(weights).name if weights else None,
        "weights_sha256": weights_sha256(weights) if weights else None,
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
        "license": DINOV3_NOTICE if weights else RANDOM_NOTICE,
    }


def _head_record(module: ExportModule, head_file: str | Path | None) -> dict:
    """What the head predicts, and which head file it came from (when there is one)."""
    record = module.head.cfg.info().to_dict()
    if head_file is None:
        return record
    return {**record, "file": Path(head_file).name, "sha256": head_sha256(head_file)}


def head_sha256(path: str | Path) -> str:
    """SHA-256 of a head file (small, so read whole and never cached: a file rewritten in place is seen)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
