"""The architecture official-layout tensors were made for, read off their names and shapes."""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from edgedino.errors import CheckpointError
from edgedino.models.config import MODELS, ConvNeXtConfig, ModelConfig, ViTConfig, match_preset


def infer_config(sd: dict[str, Tensor]) -> ModelConfig:
    """The architecture these official-layout tensors were made for, read off their shapes."""
    if "downsample_layers.0.0.weight" in sd:
        dims = tuple(sd[f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"].shape[0] for i in range(4))
        depths = tuple(1 + max(int(k.split(".")[2]) for k in sd if k.startswith(f"stages.{i}.")) for i in range(4))
        return ConvNeXtConfig(depths=depths, dims=dims, in_chans=sd["downsample_layers.0.0.weight"].shape[1],
                              layerscale_init=1e-6 if "stages.0.0.gamma" in sd else None)
    if "patch_embed.proj.weight" not in sd:
        raise CheckpointError(
            f"not a DINOv3 backbone: found neither patch_embed.proj.weight (ViT) nor downsample_layers (ConvNeXt); "
            f"first keys: {', '.join(list(sd)[:4])}"
        )
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


def check_family(cfg: ModelConfig, sd: dict) -> ModelConfig:
    is_convnext = "downsample_layers.0.0.weight" in sd
    if is_convnext != (cfg.family == "convnext"):
        found = "ConvNeXt" if is_convnext else "ViT"
        raise CheckpointError(f"the weights are a {found} checkpoint, but the model {cfg.name} is a {cfg.family}")
    return cfg
