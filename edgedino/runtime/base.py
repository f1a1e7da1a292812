"""One interface over every runtime edgedino artifacts run in. Torch-free."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from edgedino.digest import regular_file
from edgedino.errors import EdgeDinoError, reraise_interrupt
from edgedino.runtime.features import Features
from edgedino.runtime.formats import FORMATS, PYTORCH_RUNTIME, WEIGHTS_SUFFIXES, format_of
from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD, fit_size
from edgedino.runtime.task_head import HeadInfo

METADATA_KEY = "edgedino"  # every artifact stores its metadata as one JSON string under this name


class RuntimeUnavailable(EdgeDinoError):
    """The runtime for an artifact is not installed, or cannot run on this platform."""


class Runtime:
    """A loaded artifact: `run(x)` maps one input array to the named outputs ("cls", "patch_tokens", ...)."""

    kind: str = ""  # "onnxruntime", "openvino", "litert", "coreml"
    path: Path
    metadata: dict  # the edgedino metadata embedded at export ({} for foreign files)
    input_shape: tuple[int, ...]
    input_dtype: np.dtype

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def input_format(self) -> str:
        return "uint8" if self.input_dtype == np.uint8 else "float32"

    @property
    def stride(self) -> int:
        return int(self.metadata.get("stride", 16))

    def input_hw(self, frame_hw: tuple[int, int] | None = None, short_side: int | None = None) -> tuple[int, int]:
        """The size frames are resized to: the artifact's fixed size, or (dynamic runtimes) the frame's aspect
        at `short_side`. Asking a fixed-size artifact for another short side is an error, not a silent resize."""
        shape = self.input_shape
        fixed = shape[1:3] if self.input_format == "uint8" else shape[2:4]
        if all(isinstance(d, int) and d > 0 for d in fixed):
            if short_side is not None and short_side != min(fixed):
                raise EdgeDinoError(f"{self.path.name} was exported for {fixed[0]}x{fixed[1]} input; it cannot run "
                                    f"at short side {short_side} (export it at that size, or give no size)")
            return int(fixed[0]), int(fixed[1])
        if frame_hw is None:
            raise EdgeDinoError(f"{self.path.name} takes any size: give a frame size and a short side")
        return fit_size(frame_hw, short_side or 224, self.stride)

    @property
    def random_weights(self) -> bool:
        """Whether it was made from random weights (its metadata names no weights file): its features mean nothing,
        and pictures made with it say so."""
        return bool(self.metadata.get("model")) and not self.metadata.get("weights")

    @property
    def head(self) -> HeadInfo | None:
        """The task head exported with the backbone (task, class names), or None for a plain backbone."""
        return HeadInfo.from_metadata(self.metadata)

    @property
    def batch(self) -> int:
        """Frames per run: the artifact's static batch, or 1 for a dynamic one (what edge devices do)."""
        b = self.input_shape[0]
        return b if isinstance(b, int) and b > 0 else 1

    def features(self, frames: np.ndarray | list[np.ndarray], short_side: int | None = None) -> Features:
        """Dense features for RGB uint8 frames (one (H, W, 3) array or a list of them), preprocessed as the
        artifact's metadata says (size, layout, mean/std)."""
        import time

        frames = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 3 else list(frames)
        if not frames:
            raise EdgeDinoError("features() needs at least one frame")
        hw = self.input_hw(frames[0].shape[:2], short_side)
        t0 = time.perf_counter()
        x = self.preprocess(frames, hw)
        t1 = time.perf_counter()
        outs = [self.run(self._pad(x[i:i + self.batch])) for i in range(0, len(x), self.batch)]
        t2 = time.perf_counter()
        if "patch_tokens" not in outs[0]:
            raise EdgeDinoError(f"{self.path.name} has no 'patch_tokens' output (outputs: {', '.join(outs[0])})")
        cat = {k: np.concatenate([o[k] for o in outs])[:len(x)] for k in ("cls", "patch_tokens", "logits")
               if k in outs[0]}
        return Features(cat["cls"], cat["patch_tokens"], hw,
                        {"preprocess": (t1 - t0) * 1e3, "backbone": (t2 - t1) * 1e3}, cat.get("logits"))

    def preprocess(self, frames: list[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
        """RGB uint8 frames as this artifact's input at size `hw`: normalised with the mean/std its metadata
        records (float32 input), or resized only (uint8 input, normalised inside the graph)."""
        from edgedino.runtime.frames import model_inputs

        return model_inputs(frames, hw, self.input_format, self.metadata.get("mean", IMAGENET_MEAN),
                            self.metadata.get("std", IMAGENET_STD))

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """A short last chunk filled up to a static batch by repeating its last frame (results are trimmed)."""
        missing = self.batch - len(x)
        return np.concatenate([x, np.repeat(x[-1:], missing, axis=0)]) if missing > 0 else x

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if tuple(x.shape) != tuple(self.input_shape) and not any(d in (-1, None) for d in self.input_shape):
            raise EdgeDinoError(f"{self.path.name} takes input of shape {tuple(self.input_shape)}, got {x.shape}")
        return np.ascontiguousarray(x, dtype=self.input_dtype)


def is_artifact(path: str | Path) -> bool:
    """An exported artifact (a runtime's file), as opposed to a weights file that runs through PyTorch."""
    return format_of(path) is not None


def runtime_module(path: Path) -> str:
    """The module that runs this file: its format's runtime, or PyTorch for a weights file."""
    fmt = format_of(path)
    if path.is_dir() and not (fmt and fmt.folder):
        raise EdgeDinoError(f"{path} is a folder, not a model file (an exported artifact or a checkpoint)")
    if path.exists() and not path.is_dir():
        regular_file(path)  # a FIFO or a device would hang the runtime
    if fmt is None and path.suffix not in WEIGHTS_SUFFIXES:
        known = ", ".join([f.suffix for f in FORMATS.values()] + list(WEIGHTS_SUFFIXES))
        raise EdgeDinoError(f"{path}: unknown artifact type {path.suffix!r} (known: {known})")
    return fmt.runtime if fmt else PYTORCH_RUNTIME


def load(path: str | Path, threads: int | None = None, module: str | None = None, **options) -> Runtime:
    """Load any artifact edgedino exports in the runtime it was made for (a weights file in PyTorch); `module`
    names that runtime when the caller has looked it up already (the benchmark's worker process); `options` are
    that runtime's own (OpenVINO's precision="bf16")."""
    path = Path(path)
    if not path.exists():
        raise EdgeDinoError(f"artifact not found: {path}")
    backend = importlib.import_module(module or runtime_module(path))
    try:
        return backend.load(path, threads, **options)
    except EdgeDinoError:
        raise
    except Exception as e:  # the runtime library's own error for a truncated or corrupt file
        reraise_interrupt(e)
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise EdgeDinoError(f"cannot load {path}: not a valid {path.suffix} artifact (truncated or corrupt?): "
                            f"{first}") from None


def parse_metadata(raw: str | bytes | None, path: Path) -> dict:
    """The edgedino metadata stored in an artifact as one JSON object; {} when there is none."""
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise EdgeDinoError(f"{path}: its {METADATA_KEY!r} metadata is not valid JSON (edited by hand?)") from None
    if not isinstance(meta, dict):
        raise EdgeDinoError(f"{path}: its {METADATA_KEY!r} metadata is a JSON {type(meta).__name__}, not an object")
    return meta


def require(module: str, extra: str = "runtime"):
    """Import a runtime package or raise RuntimeUnavailable naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeUnavailable(f"{module} is not installed ({e}): pip install 'edgedino[{extra}]'") from None
