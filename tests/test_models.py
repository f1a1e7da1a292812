"""Backbone shapes, sizes and behaviours that the HF comparison does not cover."""

from __future__ import annotations

import pytest
import torch

from edgedino.errors import InputSizeError
from edgedino.models import create_model, list_models

# Parameter counts the DINOv3 release gives for each backbone (millions).
OFFICIAL_PARAMS = {"vits16": 21, "vits16plus": 29, "vitb16": 86, "vitl16": 300, "vith16plus": 840,
                   "convnext_tiny": 29, "convnext_small": 50, "convnext_base": 89, "convnext_large": 198}


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_preset_sizes_match_the_release(name):
    with torch.device("meta"):
        model = create_model(name)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(millions - OFFICIAL_PARAMS[name]) / OFFICIAL_PARAMS[name] < 0.05, millions


@pytest.mark.parametrize("name", ["vit_test", "vit_test_swiglu", "convnext_test"])
@pytest.mark.parametrize("size", [(64, 64), (64, 96)])
def test_output_shapes(name, size):
    model = create_model(name).eval()
    out = model.forward_features(torch.randn(2, 3, *size))
    assert {k: tuple(v.shape) for k, v in out.items()} == model.output_shapes(*size, batch=2)


@pytest.mark.parametrize("name", ["vit_test", "convnext_test"])
def test_size_not_multiple_of_stride_is_an_error(name):
    model = create_model(name)
    with pytest.raises(InputSizeError, match="not a multiple of the stride"):
        model(torch.randn(1, 3, 64, 70))


@pytest.mark.parametrize("name", ["vit_test", "vit_test_swiglu", "convnext_test"])
def test_deploy_form_gives_the_same_features(name, perturb):
    """Deploy folds LayerScale into the preceding linear (exact up to rounding) and fixes RoPE tables."""
    model = perturb(create_model(name).eval(), seed=0)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        eager = model(x)
        deployed = model.deploy((64, 96))(x)
        again = model.deploy((64, 96))(x)
    assert not any("gamma" in k for k in model.state_dict()), "LayerScale is folded away"
    for k in eager:
        torch.testing.assert_close(deployed[k], eager[k], rtol=0, atol=1e-5)
        torch.testing.assert_close(again[k], deployed[k], rtol=0, atol=0)


def test_deployed_vit_rejects_another_size():
    model = create_model("vit_test").deploy((48, 80))
    with pytest.raises(InputSizeError, match="deployed"):
        model(torch.randn(1, 3, 64, 64))


def test_rope_tables_are_cached_and_follow_loaded_periods():
    model = create_model("vit_test").eval()
    rope = model.rope_embed
    assert rope(4, 5)[0] is rope(4, 5)[0]
    before = rope(4, 5)[0].clone()
    model.load_state_dict({**model.state_dict(), "rope_embed.periods": rope.periods * 2})
    assert not torch.equal(rope(4, 5)[0], before)


def test_rope_rescale_jitter_only_in_training():
    model = create_model("vit_test")
    model.train()
    assert not torch.equal(model.rope_embed(4, 4)[0], model.rope_embed(4, 4)[0])
    model.eval()
    assert torch.equal(model.rope_embed(4, 4)[0], model.rope_embed(4, 4)[0])


def test_rope_rotates_patches_only():
    """CLS and registers must not depend on where patches sit, only on what they contain."""
    from edgedino.models.attention import Attention

    attn = Attention(64, 2)
    x = torch.randn(1, 5 + 16, 64)
    sin, cos = create_model("vit_test").rope_embed(4, 4)
    zero = (torch.zeros_like(sin), torch.ones_like(cos))  # identity rotation
    assert not torch.allclose(attn(x, (sin, cos)), attn(x, zero))
    assert torch.allclose(attn(x, None), attn(x, zero), atol=1e-6)


@pytest.mark.parametrize("name", ["vit_test", "convnext_test"])
def test_intermediate_layers_end_with_the_final_features(name):
    model = create_model(name).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        last = model.get_intermediate_layers(x, n=2)
        final = model.forward_features(x)
    assert len(last) == 2
    torch.testing.assert_close(last[-1]["patch_tokens"], final["patch_tokens"])
    torch.testing.assert_close(last[-1]["cls"], final["cls"])


def test_masks_replace_patches_with_the_mask_token():
    model = create_model("vit_test").eval()
    x = torch.randn(1, 3, 32, 32)
    none = torch.zeros(1, 4, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x, none)["cls"], model.forward_features(x)["cls"])
        masked = model.forward_features(x, torch.ones(1, 4, dtype=torch.bool))
        other = model.forward_features(torch.randn(1, 3, 32, 32), torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(masked["cls"], other["cls"])  # every patch is the mask token: input is gone


def test_registry_lists_the_release_presets():
    names = list_models()
    assert set(OFFICIAL_PARAMS) <= set(names)
    assert "vit_test" not in names and "vit_test" in list_models(include_test=True)


def test_gmacs_of_vits16():
    from edgedino.models.flops import count_macs

    macs = count_macs(create_model("vits16").eval(), (224, 224))
    # 12 blocks x 201 tokens: qkv+proj 4 D^2, MLP 8 D^2 per token, attention 2 N D; plus the patch embedding.
    n, d = 201, 384
    expected = 12 * (n * 12 * d * d + 2 * n * n * d) + 196 * 3 * 256 * d
    assert abs(macs - expected) / expected < 0.01
