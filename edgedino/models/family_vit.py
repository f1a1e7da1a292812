"""The ViT family's entry: reading its architecture off official tensors, lr-decay layers, Hugging Face names."""

from __future__ import annotations

from dataclasses import replace

from edgedino.errors import CheckpointError
from edgedino.models.config import MODELS, ViTConfig, match_preset
from edgedino.models.families import Family


def infer(sd: dict) -> ViTConfig:
    """The ViT these official-layout tensors were made for, read off their shapes."""
    proj = sd["patch_embed.proj.weight"]
    dim = proj.shape[0]
    swiglu = "blocks.0.mlp.w1.weight" in sd
    base = ViTConfig(
        embed_dim=dim,
        depth=1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks.")),
        ffn="swiglu" if swiglu else "mlp",
        ffn_hidden=sd["blocks.0.mlp.w1.weight" if swiglu else "blocks.0.mlp.fc1.weight"].shape[0],
        patch_size=proj.shape[-1],
        in_chans=proj.shape[1],
        n_registers=sd["storage_tokens"].shape[1] if "storage_tokens" in sd else 0,
        layerscale_init=1e-5 if "blocks.0.ls1.gamma" in sd else None,
        qkv_bias="blocks.0.attn.qkv.bias" in sd,
        mask_k_bias="blocks.0.attn.qkv.bias_mask" in sd,
        untie_cls_norm="cls_norm.weight" in sd,
        local_cls_norm="local_cls_norm.weight" in sd,
    )
    if "rope_embed.periods" in sd:
        periods = sd["rope_embed.periods"].double()
        head_dim = 4 * periods.numel()
        # periods[i] = base ** (4 i / head_dim); the stored periods are loaded as they are.
        rope_base = round(float(periods[1]) ** (head_dim / 4), 2) if periods.numel() > 1 else 100.0
        return replace(base, num_heads=dim // head_dim, rope_base=rope_base)
    for preset in MODELS.values():  # HF weights without config.json: take the heads of a preset of this shape
        if isinstance(preset, ViTConfig) and match_preset(replace(base, num_heads=preset.num_heads)).name != "custom":
            return replace(base, num_heads=preset.num_heads)
    raise CheckpointError(
        "cannot tell the number of attention heads from these weights (no rope_embed.periods, no config.json, "
        "no preset of this shape): pass --model"
    )


def layer_id(name: str, cfg: ViTConfig) -> int:
    """Block i is layer i + 1; the patch embedding and the tokens are 0; the rest (final norms) depth + 1."""
    parts = name.split(".")
    if parts[0] == "blocks":
        return int(parts[1]) + 1
    return 0 if parts[0] in ("patch_embed", "cls_token", "storage_tokens", "mask_token") else cfg.depth + 1


# (official, hf) templates; each "{}" is one dotted part (a block index, weight/bias). q/k/v are split apart
# by edgedino.hf_layout, since the official qkv is one tensor.
HF_KEYS = [
    ("cls_token", "embeddings.cls_token"),
    ("storage_tokens", "embeddings.register_tokens"),
    ("mask_token", "embeddings.mask_token"),
    ("patch_embed.proj.{}", "embeddings.patch_embeddings.{}"),
    ("blocks.{}.norm1.{}", "layer.{}.norm1.{}"),
    ("blocks.{}.norm2.{}", "layer.{}.norm2.{}"),
    ("blocks.{}.attn.proj.{}", "layer.{}.attention.o_proj.{}"),
    ("blocks.{}.ls1.gamma", "layer.{}.layer_scale1.lambda1"),
    ("blocks.{}.ls2.gamma", "layer.{}.layer_scale2.lambda1"),
    ("norm.{}", "norm.{}"),
]
HF_MLP_KEYS = {
    "mlp": [("blocks.{}.mlp.fc1.{}", "layer.{}.mlp.up_proj.{}"), ("blocks.{}.mlp.fc2.{}", "layer.{}.mlp.down_proj.{}")],
    "swiglu": [("blocks.{}.mlp.w1.{}", "layer.{}.mlp.gate_proj.{}"), ("blocks.{}.mlp.w2.{}", "layer.{}.mlp.up_proj.{}"),
               ("blocks.{}.mlp.w3.{}", "layer.{}.mlp.down_proj.{}")],
}


def hf_keys(cfg: ViTConfig) -> list[tuple[str, str]]:
    return HF_KEYS + HF_MLP_KEYS[cfg.ffn]


def hf_config(cfg: ViTConfig) -> dict:
    """transformers' DINOv3ViTModel config.json for this architecture."""
    if cfg.untie_cls_norm:
        raise CheckpointError("transformers' DINOv3ViTModel has no separate CLS norm (cls_norm); cannot write HF")
    return {
        "architectures": ["DINOv3ViTModel"], "model_type": "dinov3_vit",
        "hidden_size": cfg.embed_dim, "num_hidden_layers": cfg.depth, "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.ffn_hidden, "use_gated_mlp": cfg.ffn == "swiglu",
        "hidden_act": "silu" if cfg.ffn == "swiglu" else "gelu",
        "patch_size": cfg.patch_size, "num_channels": cfg.in_chans, "num_register_tokens": cfg.n_registers,
        "layer_norm_eps": cfg.layer_norm_eps, "rope_theta": cfg.rope_base, "pos_embed_rescale": cfg.rope_rescale,
        "query_bias": cfg.qkv_bias, "key_bias": False, "value_bias": cfg.qkv_bias, "proj_bias": True,
        "mlp_bias": True, "layerscale_value": cfg.layerscale_init or 1.0,
    }


def from_hf_config(hf: dict) -> ViTConfig:
    act = hf.get("hidden_act", "gelu")
    if act != ("silu" if hf.get("use_gated_mlp") else "gelu"):
        ffn = "gated" if hf.get("use_gated_mlp") else "plain"
        raise CheckpointError(f"config.json: a {ffn} MLP with hidden_act={act!r} is not a DINOv3 architecture")
    return ViTConfig(
        embed_dim=hf["hidden_size"], depth=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
        ffn="swiglu" if hf.get("use_gated_mlp") else "mlp", ffn_hidden=hf["intermediate_size"],
        patch_size=hf.get("patch_size", 16), in_chans=hf.get("num_channels", 3),
        n_registers=hf.get("num_register_tokens", 0), rope_base=hf.get("rope_theta", 100.0),
        rope_rescale=hf.get("pos_embed_rescale", 2.0), layer_norm_eps=hf.get("layer_norm_eps", 1e-5),
        qkv_bias=hf.get("query_bias", True), mask_k_bias=hf.get("query_bias", True),
    ).checked()


FAMILY = Family(
    name="vit", title="ViT", config=ViTConfig, module="edgedino.models.vit:VisionTransformer",
    marker="patch_embed.proj.weight",
    infer=infer, layer_id=layer_id, depth=lambda cfg: cfg.depth, mask_token=True,
    hf_marker="embeddings.patch_embeddings.", hf_keys=hf_keys, hf_config=hf_config, from_hf_config=from_hf_config,
    hf_model_type="dinov3_vit",
)
