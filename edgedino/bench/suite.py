"""Benchmark settings: a suite YAML (benchmarks/*.yaml) overridden by command-line flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgedino.bench.peers import PEERS
from edgedino.errors import EdgeDinoError, did_you_mean
from edgedino.runtime.formats import FORMATS
from edgedino.settings_file import check_settings, read_settings

BASELINES = ("torch", "torch.compile")
# Precisions a runtime applies when it compiles an fp32 artifact (no export of their own) -> the targets having them.
RUNTIME_PRECISIONS = {"bf16": ("openvino",)}
RUNTIME_THRESHOLDS = {"bf16": 0.999}  # their parity bound (cls and patch cosine), as fp16's at export
PEER_PRECISION = "int8"  # what every by-hand peer path (edgedino.bench.peers) makes


@dataclass
class Suite:
    """Every combination of these is one row (targets x precisions; baselines are fp32 only, peers int8 only);
    each entry of `also` is one more pass with some settings replaced (batch 4 and 8 at one size, say)."""

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
    avx2: bool = False  # also time PyTorch and OpenVINO rows limited to AVX2 (edgedino.bench.isa)
    also: list[dict] = field(default_factory=list)

    def combos(self) -> list[tuple[str, str]]:
        """(target, precision) pairs: the baselines in fp32, the peers in int8, each export target in every
        precision it has (a runtime precision only on the targets whose runtime applies it)."""
        out = [(t, "fp32") for t in self.targets if t in BASELINES]
        out += [(t, p) for t in self.targets if t in FORMATS for p in self.precisions
                if t in RUNTIME_PRECISIONS.get(p, (t,))]
        return out + [(t, PEER_PRECISION) for t in self.targets if t in PEERS]

    def passes(self) -> list[Suite]:
        """This suite without `also`, then one suite per entry of `also`."""
        base = replace(self, also=[])
        return [base] + [replace(base, **_listed(extra)) for extra in self.also]


# Each setting's kind (edgedino.settings_file.KINDS), checked in a suite file and again after the flags.
KINDS = {"description": "text", "models": "texts", "weights": "text or null", "targets": "texts",
         "precisions": "texts", "imgsz": "sizes", "threads": "counts", "batch": "counts",
         "warmup": "whole number >= 0", "iters": "count", "seconds": "number >= 0 or null", "calib": "text or null",
         "calib_size": "count", "timeout_s": "number >= 0", "profile": "yes/no", "avx2": "yes/no",
         "also": "list of settings"}
LISTS = ("models", "targets", "precisions", "imgsz", "threads", "batch")


def _listed(data: dict) -> dict:
    """Settings with every list-valued key as a list and the sizes as text."""
    data = {k: [v] if k in LISTS and not isinstance(v, list) else v for k, v in data.items()}
    if "imgsz" in data:
        data["imgsz"] = [str(s) for s in data["imgsz"]]
    return data


def load_suite(path: str | Path) -> Suite:
    """A suite from YAML; an unknown key or a value of the wrong kind is an error that names it."""
    data = read_settings(path, "suite")
    check_settings(data, KINDS, f"suite {path}")
    for i, extra in enumerate(data.get("also", [])):
        check_settings(extra, {k: v for k, v in KINDS.items() if k not in ("description", "also")},
                       f"suite {path}: also[{i}]")
    data.pop("description", None)
    return Suite(**_listed(data))


def check_suite(suite: Suite) -> Suite:
    """The suite as the flags left it, every setting of its kind, and every size within the input limit."""
    from edgedino.runtime.preprocess import check_pixels, parse_imgsz

    check_settings(asdict(suite), KINDS, "benchmark settings")
    known = BASELINES + tuple(FORMATS) + tuple(PEERS)
    for target in dict.fromkeys(t for s in suite.passes() for t in s.targets):
        if target not in known:
            raise EdgeDinoError(f"unknown benchmark target {target!r}{did_you_mean(target, known)} "
                                f"(targets: {', '.join(known)})")
    for s in suite.passes():
        for precision, targets in RUNTIME_PRECISIONS.items():
            if precision in s.precisions and not set(targets) & set(s.targets):
                raise EdgeDinoError(f"precision {precision} runs on {', '.join(targets)} only; add it to the targets "
                                    f"(asked: {', '.join(s.targets)})")
    for size in dict.fromkeys(size for s in suite.passes() for size in s.imgsz):
        check_pixels(parse_imgsz(size))
    return suite
