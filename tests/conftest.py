"""Shared fixtures: real images shipped in assets/, and a scratch folder per session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "edgedino" / "assets"
IMAGES = sorted(ASSETS.glob("*.jpg"))
OFFICIAL_KEYS = json.loads((ROOT / "tests" / "data" / "official_keys.json").read_text())["presets"]


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


def perturb_model(model, seed: int):
    """Make every part of a model matter (edgedino.bench.stress_weights.perturb, which the stress weights start
    from): LayerScale in [0.3, 1.0], random biases and norms."""
    from edgedino.bench.stress_weights import perturb

    return perturb(model, seed)


@pytest.fixture(scope="session")
def perturb():
    """perturb_model, as a fixture: `perturb(model, seed)`."""
    return perturb_model


@pytest.fixture(scope="session")
def official_state():
    """A function: (preset key in official_keys.json, model) -> the state dict with exactly the names, shapes and
    order that the official code's state_dict() has, filled with the model's tensors (aliases share them)."""
    from edgedino.models import get_family

    def build(preset: str, model) -> dict:
        own = model.state_dict()
        aliases = get_family(model.cfg.family).aliases
        sd = {name: own[aliases.get(name, name)].clone() for name, _ in OFFICIAL_KEYS[preset]}
        assert {k: list(v.shape) for k, v in sd.items()} == dict(map(tuple, OFFICIAL_KEYS[preset]))
        return sd

    return build


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """vit_test (seeded) exported once per session as a 64x64 fp32 ONNX file (not verified: tests that need parity
    export their own), for tests that only need a real artifact to hand to a command."""
    from edgedino import create_model, save_backbone
    from edgedino.export import export

    out = tmp_path_factory.mktemp("tiny_onnx")
    save_backbone(create_model("vit_test").reset_parameters(seed=1), out / "w.pt", "edgedino")
    result = export(targets=["onnx"], weights=str(out / "w.pt"), imgsz=64, out=out, verify_outputs=False,
                    log=lambda line: None)
    assert result.ok and result.artifacts[0].path, [(a.target, a.message) for a in result.artifacts]
    return Path(result.artifacts[0].path)
