"""Shared fixtures: real images shipped in assets/, and a scratch folder per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "edgedino" / "assets"
IMAGES = sorted(ASSETS.glob("*.jpg"))


@pytest.fixture(scope="session")
def image_paths() -> list[Path]:
    assert len(IMAGES) >= 3, "assets/ must hold the sample images"
    return IMAGES


@pytest.fixture(scope="session")
def image_batch():
    """A function: size (h, w) -> the shipped photos preprocessed to one (N, 3, h, w) float32 batch."""
    from edgedino.runtime.preprocess import preprocess, read_image

    def batch(size_hw: tuple[int, int]) -> np.ndarray:
        return np.concatenate([preprocess(read_image(p), size_hw) for p in IMAGES])

    return batch


@pytest.fixture(scope="session")
def perturb():
    """A function that makes every part of a model matter: LayerScale in [0.3, 1.0], random biases and norms.

    Default init has LayerScale 1e-5 (ViT) or 1e-6 (ConvNeXt), which mutes every block: a comparison on such
    weights would hide attention, RoPE and quantization errors inside the blocks.
    """
    from edgedino.bench.stress_weights import perturb

    return perturb
