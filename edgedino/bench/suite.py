"""Benchmark settings: a suite YAML (benchmarks/*.yaml) overridden by command-line flags."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgedino.errors import EdgeDinoError
from edgedino.runtime.formats import FORMATS
from edgedino.settings_file import check_settings, read_settings

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
    profile: bool = False  # per-op times of every artifact row (edgedino.bench.opprofile)

    def combos(self) -> list[tuple[str, str]]:
        """(target, precision) pairs: the baselines in fp32, each export target in every precision."""
        out = [(t, "fp32") for t in self.targets if t in BASELINES]
        return out + [(t, p) for t in self.targets if t not in BASELINES for p in self.precisions]


# Each setting's kind (edgedino.settings_file.KINDS), checked in a suite file and again after the flags.
KINDS = {"description": "text", "models": "texts", "weights": "text or null", "targets": "texts",
         "precisions": "texts", "imgsz": "sizes", "threads": "counts", "batch": "counts",
         "warmup": "whole number >= 0", "iters": "count", "seconds": "number >= 0 or null", "calib": "text or null",
         "calib_size": "count", "timeout_s": "number >= 0", "profile": "yes/no"}


def load_suite(path: str | Path) -> Suite:
    """A suite from YAML; an unknown key or a value of the wrong kind is an error that names it."""
    data = read_settings(path, "suite")
    check_settings(data, KINDS, f"suite {path}")
    data.pop("description", None)
    for key in ("models", "targets", "precisions", "imgsz", "threads", "batch"):
        if key in data and not isinstance(data[key], list):
            data[key] = [data[key]]
    data["imgsz"] = [str(s) for s in data.get("imgsz", ["224"])]
    return Suite(**data)


def check_suite(suite: Suite) -> Suite:
    """The suite as the flags left it, every setting of its kind, and every size within the input limit."""
    from edgedino.runtime.preprocess import check_pixels, parse_imgsz

    check_settings(asdict(suite), KINDS, "benchmark settings")
    known = BASELINES + tuple(FORMATS)
    for target in suite.targets:
        if target not in known:
            near = difflib.get_close_matches(target, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise EdgeDinoError(f"unknown benchmark target {target!r}{hint} (targets: {', '.join(known)})")
    for size in suite.imgsz:
        check_pixels(parse_imgsz(size))
    return suite
