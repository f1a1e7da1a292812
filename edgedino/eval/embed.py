"""Frozen features for evaluation: CLS and mean patch token of each image, from any artifact or a backbone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.runtime.preprocess import read_image


@dataclass
class Embeddings:
    cls: np.ndarray  # (N, D)
    patch_mean: np.ndarray  # (N, D): the mean of the patch tokens


def _square(rgb: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if min(rgb.shape[:2]) > size else
                      cv2.INTER_CUBIC)


def embed(model, files: list[Path], imgsz: int, batch: int = 32,
          done: Callable[[int], None] = lambda n: None) -> Embeddings:
    """Features of image files resized to imgsz x imgsz; `model` is a Runtime or a torch Backbone. `done(n)` is
    called after each batch with the number of files embedded so far (for a progress line)."""
    cls, mean = [], []
    for i in range(0, len(files), batch):
        frames = [_square(read_image(f), imgsz) for f in files[i:i + batch]]
        c, p = _run(model, frames, imgsz)
        cls.append(c)
        mean.append(p.reshape(p.shape[0], -1, p.shape[-1]).mean(1))
        done(i + len(frames))
    return Embeddings(np.concatenate(cls).astype(np.float32), np.concatenate(mean).astype(np.float32))


def _run(model, frames: list[np.ndarray], imgsz: int) -> tuple[np.ndarray, np.ndarray]:
    from edgedino.runtime import Runtime

    if isinstance(model, Runtime):
        spatial = model.input_shape[1:3] if model.input_format == "uint8" else model.input_shape[2:4]
        fixed = all(isinstance(d, int) and d > 0 for d in spatial)
        f = model.features(frames, short_side=None if fixed else imgsz)
        return f.cls, f.patch_tokens
    import torch

    from edgedino.runtime.frames import model_inputs

    with torch.inference_mode():
        out = model.forward_features(torch.from_numpy(model_inputs(frames, (imgsz, imgsz))))
    return out["cls"].float().numpy(), out["patch_tokens"].float().numpy()


def open_model(weights: str | None, model: str | None, threads: int | None = None):
    """A Runtime for an artifact or checkpoint file (`weights`), else a random-init torch preset (`model`)."""
    from edgedino.runtime import load

    if weights is not None:
        return load(weights, threads)
    import warnings

    from edgedino.checkpoints import RandomWeightsWarning, load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_backbone(None, model or "vits16")
