"""The ConvNeXt family's entry: reading its architecture off official tensors, lr-decay layers, the official
layout's alias of the final norm, Hugging Face names."""

from __future__ import annotations

from edgedino.models.config import ConvNeXtConfig
from edgedino.models.families import Family


def infer(sd: dict) -> ConvNeXtConfig:
    """The ConvNeXt these official-layout tensors were made for, read off their shapes."""
    dims = tuple(sd[f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"].shape[0] for i in range(4))
    depths = tuple(1 + max(int(k.split(".")[2]) for k in sd if k.startswith(f"stages.{i}.")) for i in range(4))
    return ConvNeXtConfig(depths=depths, dims=dims, in_chans=sd["downsample_layers.0.0.weight"].shape[1],
                          layerscale_init=1e-6 if "stages.0.0.gamma" in sd else None)


# (official, hf) templates; each "{}" is one dotted part.
HF_KEYS = [
    ("downsample_layers.{}.{}.{}", "stages.{}.downsample_layers.{}.{}"),
    ("stages.{}.{}.dwconv.{}", "stages.{}.layers.{}.depthwise_conv.{}"),
    ("stages.{}.{}.norm.{}", "stages.{}.layers.{}.layer_norm.{}"),
    ("stages.{}.{}.pwconv1.{}", "stages.{}.layers.{}.pointwise_conv1.{}"),
    ("stages.{}.{}.pwconv2.{}", "stages.{}.layers.{}.pointwise_conv2.{}"),
    ("stages.{}.{}.gamma", "stages.{}.layers.{}.gamma"),
    ("norm.{}", "layer_norm.{}"),
]


def hf_config(cfg: ConvNeXtConfig) -> dict:
    """transformers' DINOv3ConvNextModel config.json for this architecture."""
    return {
        "architectures": ["DINOv3ConvNextModel"], "model_type": "dinov3_convnext",
        "hidden_sizes": list(cfg.dims), "depths": list(cfg.depths), "num_channels": cfg.in_chans,
        "layer_norm_eps": cfg.layer_norm_eps, "layer_scale_init_value": cfg.layerscale_init or 0.0,
        "hidden_act": "gelu",
    }


def from_hf_config(hf: dict) -> ConvNeXtConfig:
    return ConvNeXtConfig(
        depths=tuple(hf["depths"]), dims=tuple(hf["hidden_sizes"]), in_chans=hf.get("num_channels", 3),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-6), layerscale_init=hf.get("layer_scale_init_value", 1e-6),
    )


FAMILY = Family(
    name="convnext", title="ConvNeXt", config=ConvNeXtConfig, module="edgedino.models.convnext:ConvNeXt",
    marker="downsample_layers.0.0.weight", infer=infer,  # no layer_id: no layer-wise lr decay, as the official
    # The official model keeps its final norm twice: `norms` is three identities then `norm`, so its state_dict()
    # holds norms.3.* beside norm.* (the same tensors).
    aliases={"norms.3.weight": "norm.weight", "norms.3.bias": "norm.bias"},
    hf_marker="downsample_layers", hf_keys=lambda cfg: HF_KEYS, hf_config=hf_config, from_hf_config=from_hf_config,
    hf_model_type="dinov3_convnext",
)
