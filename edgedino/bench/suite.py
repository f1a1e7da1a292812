"""Benchmark settings: a suite YAML (benchmarks/*.yaml) overridden by command-line flags."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from edgedino.errors import EdgeDinoError

BASELINES = ("torch", "torch.compile")


@dataclass
class Suite:
    """Every combination of these is one row (targets x precisions; baselines are fp32 only)."""

    models: list[str] = field(default_factory=lambda: ["vits16"])
    weights: str | None = None
    targets: list[str] = field(default_factory=lambda: ["torch", "onnx", "openvino", "tflite"])
    precisions: list[str] = field(default_factory=lambda: ["fp32", "int8"])
    imgsz: list[str] = field(default_factory=lambda: ["224"])
    threads: list[int] = field(default_factory=lambda: [2])
    batch: list[int] = field(default_factory=lambda: [1])
    warmup: int = 5
    iters: int = 20
    seconds: float | None = None
    calib: str | None = None
    calib_size: int = 32
    timeout_s: float = 900.0  # per backend process

    def combos(self) -> list[tuple[str, str]]:
        """(target, precision) pairs: the baselines in fp32, each export target in every precision."""
        out = [(t, "fp32") for t in self.targets if t in BASELINES]
        return out + [(t, p) for t in self.targets if t not in BASELINES for p in self.precisions]


def load_suite(path: str | Path) -> Suite:
    """A suite from YAML; an unknown key is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise EdgeDinoError(f"suite not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise EdgeDinoError(f"suite {path} must be a mapping of settings")
    known = {f.name for f in fields(Suite)} | {"description"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgeDinoError(f"suite {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    data.pop("description", None)
    for key in ("models", "targets", "precisions", "imgsz", "threads", "batch"):
        if key in data and not isinstance(data[key], list):
            data[key] = [data[key]]
    data["imgsz"] = [str(s) for s in data.get("imgsz", ["224"])]
    return Suite(**data)
