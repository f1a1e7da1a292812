"""edgedino backbones against Hugging Face transformers' DINOv3 (reference code nobody here wrote).

Random weights are perturbed (conftest's `perturb`) so that every block, RoPE and attention matter.
"""

from __future__ import annotations

import pytest
import torch

from edgedino import load_backbone

transformers = pytest.importorskip("transformers", reason="transformers is the reference (pip install -e .[dev])")

TOL = 1e-4

VIT_S = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
             num_register_tokens=4, use_gated_mlp=False)
VIT_S_PLUS = dict(VIT_S, intermediate_size=1536, use_gated_mlp=True, hidden_act="silu")
CONVNEXT_T = dict(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3])


def hf_reference(kind: str, cfg: dict, seed: int, folder, perturb):
    torch.manual_seed(seed)
    if kind == "vit":
        model = transformers.DINOv3ViTModel(transformers.DINOv3ViTConfig(**cfg))
    else:
        model = transformers.DINOv3ConvNextModel(transformers.DINOv3ConvNextConfig(**cfg))
    perturb(model, seed)
    model.eval().save_pretrained(folder)
    return model


@pytest.mark.parametrize("kind,cfg,preset", [("vit", VIT_S, "vits16"), ("vit", VIT_S_PLUS, "vits16plus"),
                                             ("convnext", CONVNEXT_T, "convnext_tiny")])
@pytest.mark.parametrize("shape", ["square", "non-square"])
def test_matches_transformers(kind, cfg, preset, shape, tmp_path, image_batch, perturb):
    size = {"square": (224, 224), "non-square": (240, 320) if kind == "vit" else (256, 320)}[shape]
    ref = hf_reference(kind, cfg, seed=sum(size), folder=tmp_path, perturb=perturb)
    ours = load_backbone(tmp_path)
    assert ours.cfg.name == preset, "the preset is inferred from the HF folder"
    x = torch.from_numpy(image_batch(size))
    with torch.no_grad():
        hidden = ref(pixel_values=x).last_hidden_state
        out = ours.forward_features(x)
    if kind == "convnext":  # HF returns [pooled; patches] through the final norm, like ours
        B, h, w, D = out["patch_tokens"].shape
        assert (h, w) == (size[0] // 32, size[1] // 32)
        got = torch.cat([out["cls"][:, None], out["patch_tokens"].reshape(B, -1, D)], dim=1)
    else:
        B, h, w, D = out["patch_tokens"].shape
        assert (h, w) == (size[0] // 16, size[1] // 16) and out["registers"].shape[1] == 4
        got = torch.cat([out["cls"][:, None], out["registers"], out["patch_tokens"].reshape(B, -1, D)], dim=1)
    assert got.shape == hidden.shape
    err = (got - hidden).abs().max().item()
    print(f"{preset} {size}: max abs diff {err:.2e} (feature scale {hidden.abs().max().item():.1f})")
    assert err <= TOL
    assert hidden.std() > 0.1, "features are not degenerate"
