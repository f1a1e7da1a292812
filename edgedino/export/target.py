"""The contract each export target fulfils, and the registry targets add themselves to.

A target module (the `exporter` of a row in edgedino.runtime.formats) defines one Target subclass and registers
it; nothing outside that module knows how the target converts. Suffix and layout come from the format's row.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.atomic import check_output, publish
from edgedino.errors import EdgeDinoError, did_you_mean
from edgedino.export.module import ExportModule
from edgedino.export.spec import INPUT_FORMATS, ExportSpec
from edgedino.runtime.formats import FORMATS, Format, format_of


@dataclass
class Conversion:
    """Everything a target needs to write one artifact."""

    module: ExportModule  # deployed, eval mode, fixed input size
    spec: ExportSpec
    calib: np.ndarray | None  # (N, ...) calibration inputs in the artifact's input format, for int8
    metadata: dict  # edgedino metadata; a target adds its converter versions and embeds it

    def calibration(self) -> np.ndarray:
        """The calibration inputs an int8 conversion needs, or an error naming the target."""
        if self.calib is None or len(self.calib) == 0:
            raise EdgeDinoError(f"{self.spec.target} int8 needs calibration images (--calib)")
        return self.calib

    def calibration_batches(self) -> np.ndarray:
        """The calibration inputs as the artifact takes them, (N, batch, ...): each sample repeated to a static
        batch (as verification feeds one), so a batch-8 artifact calibrates on the same ranges as batch 1."""
        batch = 1 if self.spec.dynamic else self.spec.batch
        return np.repeat(self.calibration()[:, None], batch, axis=1)


@dataclass(frozen=True)
class Int8Scheme:
    """How a target's int8 treats a linear or convolution layer, as far as its accuracy goes."""

    outputs: bool = False  # the layer's output is int8 too (TFLite, Core ML, ONNX QDQ), not only its input
    symmetric: bool = False  # activations symmetric around 0 (Core ML); else asymmetric, with a zero point
    depthwise: bool = True  # depthwise convolutions are quantized (TFLite keeps them float)
    weight_bits: int = 8  # 7 where the target reduces the range for CPUs without VNNI (ONNX, OpenVINO)
    norm_folded: bool = False  # the converter folds a LayerNorm's gain and bias into the next layer (TFLite)


class Target:
    name: str = ""  # the name of its row in FORMATS
    precisions: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # import names the conversion needs
    extra: str = "export"  # the pip extra that installs them
    input_formats: tuple[str, ...] = INPUT_FORMATS
    dynamic_shapes: bool = False  # can export a dynamic batch
    int8: Int8Scheme = Int8Scheme()
    not_on: dict[str, str] = {}  # sys.platform values the converter has no wheels for -> the platform's name

    @property
    def format(self) -> Format:
        return FORMATS[self.name]

    @property
    def suffix(self) -> str:
        """The artifact's file (or package folder) suffix."""
        return self.format.suffix

    @property
    def folder(self) -> bool:
        """The artifact is a package folder, not a file."""
        return self.format.folder

    def available(self) -> str | None:
        """None when the converter is installed; else what is missing and how to install it."""
        if sys.platform in self.not_on:
            return (f"the {self.name} target is not on {self.not_on[sys.platform]}: its converter has no wheels "
                    "there; export on Linux or macOS (on Windows, WSL works)")
        missing = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if missing:
            return (f"the {self.name} target needs {', '.join(missing)}, which is not installed: "
                    f"pip install 'edgedino[{self.extra}]'")
        return None

    def convert(self, conversion: Conversion, path: Path) -> None:
        """Write the artifact to `path` (a staging path; the caller publishes it atomically)."""
        raise NotImplementedError

    def ours(self, path: Path) -> bool:
        """True when the existing folder `path` is an earlier artifact of this target, which export may replace."""
        return False

    def check_destination(self, final: Path) -> None:
        """Refuse (EdgeDinoError) before any work if publishing at `final` would destroy something not ours."""
        check_output(final, is_dir=self.folder, ours=self.ours)
        for side in self.format.side_files:
            check_output(final.with_suffix(side))

    def publish(self, staged: Path, final: Path) -> None:
        """Move the staged artifact to `final` in one step: a reader sees the old artifact or the new one."""
        publish(staged, final, self.ours)

    def size(self, path: Path) -> int:
        """Bytes the artifact takes: its file, or every file of its package folder."""
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size

    def stored_precision(self, path: Path) -> str | None:
        """The precision the artifact's stored weights and ops show (None: this target cannot tell), so that
        `edgedino verify` can hold metadata that claims another precision (and a lower threshold) to account."""
        return None

    def runtimes(self, path: Path) -> list:
        """(label, Runtime) pairs that run the artifact on this machine for verification: its own runtime."""
        from edgedino.runtime.base import load

        runtime = load(path)
        return [(runtime.kind, runtime)]

    def static_checks(self, conversion: Conversion, path: Path) -> list[str]:
        """Checks that need no runtime (spec, shapes, weight types); each a line saying what was verified.

        Raise EdgeDinoError on a failed check.
        """
        return []


@contextmanager
def quiet_converters(*loggers: str):
    """Silence converters' advisory logs and warnings for one conversion, restoring the levels after."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def match_layers(target: str, layers: Sequence[str], names: Iterable[str], matches: Callable[[str, str], bool]
                 ) -> list[str]:
    """The target's own names (nodes, ops, tensor scopes) of the backbone layers to keep in float; a layer that no
    name matches is an error, so a layer is never silently quantized after all."""
    names = list(names)
    found = []
    for layer in layers:
        hits = [n for n in names if matches(layer, n)]
        if not hits:
            raise EdgeDinoError(f"the {target} graph has no quantizable op for layer {layer!r}, which was to stay "
                                "in float")
        found += hits
    return found


TARGETS: dict[str, Target] = {}


def register(cls: type[Target]) -> type[Target]:
    TARGETS[cls.name] = cls()
    return cls


def all_targets() -> dict[str, Target]:
    """Every target, in the order of the formats table, each module imported so that it has registered itself."""
    for fmt in FORMATS.values():
        if fmt.name not in TARGETS:
            importlib.import_module(fmt.exporter)
        if fmt.name not in TARGETS:
            raise EdgeDinoError(f"{fmt.exporter} registers no target named {fmt.name!r}")
    return {name: TARGETS[name] for name in FORMATS}


def get_target(name: str) -> Target:
    targets = all_targets()
    if name not in targets:
        raise EdgeDinoError(f"unknown target {name!r}{did_you_mean(name, targets)} "
                            f"(targets: {', '.join(targets)}, all)")
    return targets[name]


def artifact_runtimes(path: Path) -> tuple[Target, list, dict]:
    """The target that made an artifact, the runtimes this machine runs it in, and its edgedino metadata."""
    if not path.exists():
        raise EdgeDinoError(f"artifact not found: {path}")
    fmt = format_of(path)
    if fmt is None:
        suffixes = ", ".join(f.suffix for f in FORMATS.values())
        raise EdgeDinoError(f"{path}: not an artifact edgedino exports (suffixes: {suffixes})")
    target = all_targets()[fmt.name]
    runtimes = target.runtimes(path)
    return target, runtimes, runtimes[0][1].metadata

