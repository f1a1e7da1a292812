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
from edgedino.models.config import ModelConfig
from edgedino.models.families import family_of, get_family, hf_family
from edgedino.readers import read_safetensors, torch_load

_HF_QKV = re.compile(r"(?:model\.)?layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)")


def _regex(template: str, hf: bool) -> re.Pattern:
    body = re.escape(template).replace(r"\{\}", r"([^.]+)")
    return re.compile((r"(?:model\.)?" if hf else "") + body)


def _table(pairs: list[tuple[str, str]], to_hf: bool) -> list[tuple[re.Pattern, str]]:
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


def from_hf(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """HF tensors -> official layout (without `rope_embed.periods`, which needs the head count)."""
    family = family_of(sd, hf=True)
    # the templates of a config with this MLP; from_hf has no config yet, only the keys
    probe = family.config(ffn="swiglu") if any(".gate_proj." in k for k in sd) else family.config()
    table = _table(family.hf_keys(probe), to_hf=False)
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for key, t in sd.items():
        m = _HF_QKV.fullmatch(key)
        if m:
            qkv.setdefault(f"blocks.{m[1]}.attn.qkv.{m[3]}", {})[m[2]] = t
            continue
        new = _rename(key, table)
        if new is None:
            raise CheckpointError(f"unexpected key {key!r} in a Hugging Face {family.name} checkpoint")
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
    family = get_family(cfg.family)
    if family.hf_keys is None:
        raise CheckpointError(f"transformers has no {cfg.family} model: cannot write the Hugging Face layout")
    hf_cfg = family.hf_config(cfg)
    table = _table(family.hf_keys(cfg), to_hf=True)
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
    return out, hf_cfg


def config_from_hf(hf: dict) -> ModelConfig:
    """An edgedino config from a transformers config.json dict (its values are checked by the config class)."""
    if not isinstance(hf, dict):
        raise CheckpointError(f"config.json holds {type(hf).__name__}, not a JSON object of settings")
    return hf_family(hf.get("model_type", "")).from_hf_config(hf)
