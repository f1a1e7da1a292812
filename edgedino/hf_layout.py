"""Translate between the official DINOv3 key layout (edgedino's own) and Hugging Face transformers'.

Both directions use one table of templates. HF names are matched with an optional `model.` prefix,
because transformers moved them between versions (`layer.N` vs `model.layer.N`); writing uses the
layout `save_pretrained` writes, which every transformers version with DINOv3 reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import Tensor

from edgedino.digest import hf_weight_files
from edgedino.errors import CheckpointError, ConfigError
from edgedino.models.config import ConvNeXtConfig, ModelConfig, ViTConfig
from edgedino.readers import read_safetensors, torch_load

# (official, hf) templates; each "{}" is one dotted part (a block index, weight/bias).
_KEYS = [
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
_MLP_KEYS = [
    ("blocks.{}.mlp.fc1.{}", "layer.{}.mlp.up_proj.{}"),
    ("blocks.{}.mlp.fc2.{}", "layer.{}.mlp.down_proj.{}"),
]
_SWIGLU_KEYS = [
    ("blocks.{}.mlp.w1.{}", "layer.{}.mlp.gate_proj.{}"),
    ("blocks.{}.mlp.w2.{}", "layer.{}.mlp.up_proj.{}"),
    ("blocks.{}.mlp.w3.{}", "layer.{}.mlp.down_proj.{}"),
]
_CONVNEXT_KEYS = [
    ("downsample_layers.{}.{}.{}", "stages.{}.downsample_layers.{}.{}"),
    ("stages.{}.{}.dwconv.{}", "stages.{}.layers.{}.depthwise_conv.{}"),
    ("stages.{}.{}.norm.{}", "stages.{}.layers.{}.layer_norm.{}"),
    ("stages.{}.{}.pwconv1.{}", "stages.{}.layers.{}.pointwise_conv1.{}"),
    ("stages.{}.{}.pwconv2.{}", "stages.{}.layers.{}.pointwise_conv2.{}"),
    ("stages.{}.{}.gamma", "stages.{}.layers.{}.gamma"),
    ("norm.{}", "layer_norm.{}"),
]
_HF_QKV = re.compile(r"(?:model\.)?layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)")


def _regex(template: str, hf: bool) -> re.Pattern:
    body = re.escape(template).replace(r"\{\}", r"([^.]+)")
    return re.compile((r"(?:model\.)?" if hf else "") + body)


def _table(family: str, swiglu: bool, to_hf: bool) -> list[tuple[re.Pattern, str]]:
    pairs = _CONVNEXT_KEYS if family == "convnext" else _KEYS + (_SWIGLU_KEYS if swiglu else _MLP_KEYS)
    return [(_regex(off if to_hf else hf, hf=not to_hf), hf if to_hf else off) for off, hf in pairs]


def _rename(key: str, table: list[tuple[re.Pattern, str]]) -> str | None:
    for pattern, template in table:
        m = pattern.fullmatch(key)
        if m:
            return template.format(*m.groups())
    return None


def read(path: Path) -> tuple[dict[str, Tensor], ModelConfig | None]:
    """Official-layout tensors and the config (from config.json, if any) of a transformers folder or file."""
    folder = path if path.is_dir() else path.parent
    files = hf_weight_files(folder) if path.is_dir() else [path]
    cfg = None
    if (folder / "config.json").exists():
        try:
            cfg = config_from_hf(json.loads((folder / "config.json").read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as e:
            raise CheckpointError(f"{folder / 'config.json'} is not a usable transformers config: {e}") from None
    sd: dict[str, Tensor] = {}
    for file in files:
        sd.update(read_safetensors(file) if file.suffix == ".safetensors" else torch_load(file))
    return from_hf(sd), cfg


def is_hf_state_dict(sd: dict) -> bool:
    return any(k.startswith(("embeddings.", "layer_norm.", "model.")) or ".layers." in k or "_proj." in k for k in sd)


def hf_family(sd: dict) -> str:
    return "convnext" if any("downsample_layers" in k for k in sd) else "vit"


def from_hf(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """HF tensors -> official layout (without `rope_embed.periods`, which needs the head count)."""
    family = hf_family(sd)
    table = _table(family, any(".gate_proj." in k for k in sd), to_hf=False)
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for key, t in sd.items():
        m = _HF_QKV.fullmatch(key)
        if m:
            qkv.setdefault(f"blocks.{m[1]}.attn.qkv.{m[3]}", {})[m[2]] = t
            continue
        new = _rename(key, table)
        if new is None:
            raise CheckpointError(f"unexpected key {key!r} in a Hugging Face {family} checkpoint")
        out[new] = t.reshape(1, -1) if new == "mask_token" else t
    for key, parts in qkv.items():
        if key.endswith("weight"):
            out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
        else:  # HF drops the key bias (it cancels in softmax); the official layout masks it instead.
            zeros = torch.zeros_like(parts["q"])
            out[key] = torch.cat([parts["q"], parts.get("k", zeros), parts["v"]])
            out[key + "_mask"] = torch.cat([torch.ones_like(zeros), zeros, torch.ones_like(zeros)])
    return out


def to_hf(sd: dict[str, Tensor], cfg: ModelConfig) -> tuple[dict[str, Tensor], dict]:
    """Official-layout tensors -> (HF tensors, HF config.json dict)."""
    if cfg.family == "vit" and cfg.untie_cls_norm:
        raise CheckpointError("transformers' DINOv3ViTModel has no separate CLS norm (cls_norm); cannot write HF")
    table = _table(cfg.family, getattr(cfg, "ffn", "") == "swiglu", to_hf=True)
    out: dict[str, Tensor] = {}
    for key, t in sd.items():
        if key in ("rope_embed.periods",) or key.endswith("bias_mask") or key.startswith("local_cls_norm."):
            continue  # derived from the config, folded into the bias, or training-only
        m = re.fullmatch(r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", key)
        if m:
            if m[2] == "bias":
                t = t * sd.get(key + "_mask", torch.ones_like(t))
            q, k, v = t.chunk(3)
            out[f"layer.{m[1]}.attention.q_proj.{m[2]}"] = q.contiguous()
            out[f"layer.{m[1]}.attention.v_proj.{m[2]}"] = v.contiguous()
            if m[2] == "weight":
                out[f"layer.{m[1]}.attention.k_proj.weight"] = k.contiguous()
            continue
        new = _rename(key, table)
        if new is None:
            raise CheckpointError(f"no Hugging Face name for key {key!r}")
        out[new] = (t.reshape(1, 1, -1) if key == "mask_token" else t).contiguous()
    return out, hf_config(cfg)


def hf_config(cfg: ModelConfig) -> dict:
    if isinstance(cfg, ConvNeXtConfig):
        return {
            "architectures": ["DINOv3ConvNextModel"], "model_type": "dinov3_convnext",
            "hidden_sizes": list(cfg.dims), "depths": list(cfg.depths), "num_channels": cfg.in_chans,
            "layer_norm_eps": cfg.layer_norm_eps, "layer_scale_init_value": cfg.layerscale_init or 0.0,
            "hidden_act": "gelu",
        }
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


def config_from_hf(hf: dict) -> ModelConfig:
    """An edgedino config from a transformers config.json dict (its values are checked by the config class)."""
    if not isinstance(hf, dict):
        raise CheckpointError(f"config.json holds {type(hf).__name__}, not a JSON object of settings")
    kind = hf.get("model_type", "")
    if kind == "dinov3_convnext":
        return ConvNeXtConfig(
            depths=tuple(hf["depths"]), dims=tuple(hf["hidden_sizes"]), in_chans=hf.get("num_channels", 3),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-6), layerscale_init=hf.get("layer_scale_init_value", 1e-6),
        )
    if kind == "dinov3_vit":
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
    raise CheckpointError(f"config.json has model_type {kind!r}; expected dinov3_vit or dinov3_convnext")
