"""Fidelity without transformers: tiny DINOv3 models saved by Hugging Face transformers (config.json and
model.safetensors) and their outputs are committed in tests/data/fidelity/, so a change to RoPE, the final norm
or the HF key mapping fails here even where transformers is not installed (test_fidelity.py then skips).

Regenerate with transformers installed: python tests/test_fidelity_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedino import load_backbone

DATA = Path(__file__).parent / "data" / "fidelity"
# Small, but every part there: 4 registers, RoPE on a non-square grid, gated or plain MLP, four ConvNeXt stages.
MODELS = {
    "vit": ("DINOv3ViT", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              num_register_tokens=4, use_gated_mlp=False)),
    "vit_gated": ("DINOv3ViT", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=48, num_register_tokens=4, use_gated_mlp=True,
                                    hidden_act="silu")),
    "convnext": ("DINOv3ConvNext", dict(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 2, 1])),
}
SIZE = (64, 96)  # ViT: 4x6 patches of 16 (RoPE on a non-square grid); ConvNeXt: 2x3 at stride 32
INPUT_SEED = 0


def ours(name: str) -> torch.Tensor:
    """edgedino's output for the committed input, laid out as transformers' last_hidden_state."""
    net = load_backbone(DATA / name)
    x = torch.from_numpy(np.load(DATA / "input.npy"))
    with torch.no_grad():
        out = net.forward_features(x)
    B, _, _, D = out["patch_tokens"].shape
    tokens = [out["cls"][:, None]] + ([out["registers"]] if "registers" in out else [])
    return torch.cat(tokens + [out["patch_tokens"].reshape(B, -1, D)], dim=1)


@pytest.mark.parametrize("name", MODELS)
def test_matches_the_committed_transformers_outputs(name):
    expected = torch.from_numpy(np.load(DATA / name / "last_hidden_state.npy"))
    got = ours(name)
    assert got.shape == expected.shape
    err = (got - expected).abs().max().item()
    assert err <= 1e-4, f"{name}: max abs diff {err:.2e} from transformers' committed outputs"
    assert expected.std() > 0.1, "the reference is not degenerate"


def test_the_committed_files_are_small():
    total = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    assert total < 1_000_000, f"{total} bytes"


@pytest.mark.parametrize("name", MODELS)
def test_the_committed_outputs_are_what_transformers_gives(name):
    """Where transformers is installed, the committed outputs are checked against it: they cannot go stale."""
    transformers = pytest.importorskip("transformers", reason="transformers checks the committed reference")
    kind, _ = MODELS[name]
    model = getattr(transformers, f"{kind}Model").from_pretrained(DATA / name).eval()
    with torch.no_grad():
        hidden = model(pixel_values=torch.from_numpy(np.load(DATA / "input.npy"))).last_hidden_state
    np.testing.assert_allclose(hidden.numpy(), np.load(DATA / name / "last_hidden_state.npy"), atol=1e-5)


def make_reference() -> None:
    """Write tests/data/fidelity/ with transformers: each tiny model (perturbed: every block matters), the input,
    and the outputs."""
    import sys

    import transformers

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import perturb_model

    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(INPUT_SEED)
    x = rng.normal(size=(1, 3, *SIZE)).astype(np.float32)
    np.save(DATA / "input.npy", x)
    for seed, (name, (kind, cfg)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        model = getattr(transformers, f"{kind}Model")(getattr(transformers, f"{kind}Config")(**cfg))
        perturb_model(model, seed).eval().save_pretrained(DATA / name)
        with torch.no_grad():
            hidden = model(pixel_values=torch.from_numpy(x)).last_hidden_state
        np.save(DATA / name / "last_hidden_state.npy", hidden.numpy())
        print(name, json.loads((DATA / name / "config.json").read_text())["model_type"], tuple(hidden.shape))


if __name__ == "__main__":
    make_reference()
