"""Load and save backbones: official DINOv3 .pth, official training checkpoints, HF folders, edgedino files.

The architecture is read off the tensors' shapes when not given; every missing, unexpected or
mis-shaped key is a CheckpointError that names it. Pickles are always read with weights_only=True.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from edgedino import hf_layout
from edgedino.atomic import atomic_path
from edgedino.errors import CheckpointError
from edgedino.models import MODELS, Backbone, ModelConfig, create_model, get_config, match_preset
from edgedino.models.config import ConvNeXtConfig, ViTConfig, config_from_dict, config_to_dict
from edgedino.models.rope import rope_periods
from edgedino.version import __version__

LAYOUTS = ("official", "hf", "edgedino")
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class RandomWeightsWarning(UserWarning):
    """The backbone has random weights: its features mean nothing."""


@dataclass
class Source:
    """Where a backbone's weights came from."""

    path: str | None  # None: random init
    layout: str  # "official", "official-training", "hf", "edgedino" or "random"


def load_backbone(weights: str | Path | None = None, model: str | None = None, device: str = "cpu") -> Backbone:
    """A backbone in eval mode from a weights file/folder; `model=None` infers the preset from the shapes."""
    if weights is None:
        net = create_model(model or "vits16")
        warnings.warn(f"no weights given: {net.cfg.name} has random weights", RandomWeightsWarning, stacklevel=2)
        net.source = Source(None, "random")
        return net.eval().to(device)
    sd, layout, file_cfg = read_state_dict(weights)
    if model is not None:
        cfg = _check_family(get_config(model), sd)
    else:
        cfg = file_cfg or infer_config(sd)
        cfg = match_preset(cfg) if cfg.name == "custom" else cfg
    if cfg.family == "vit" and "rope_embed.periods" not in sd:  # the HF layout stores only the base
        sd["rope_embed.periods"] = rope_periods(cfg.head_dim, cfg.rope_base)
    net = create_model(cfg)
    load_checked(net, sd)
    net.source = Source(str(weights), layout)
    return net.eval().to(device)


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], str, ModelConfig | None]:
    """Tensors in the official layout, the layout they came in, and the config if the file names one."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights not found: {path}")
    if path.is_dir() or path.suffix == ".safetensors":
        return _read_hf(path)
    obj = _torch_load(path)
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    if obj.get("format") == "edgedino-backbone":
        return dict(obj["state_dict"]), "edgedino", config_from_dict(obj["config"])
    layout = "official"
    if "teacher" in obj and isinstance(obj["teacher"], dict):
        obj = {k[len("backbone."):]: v for k, v in obj["teacher"].items() if k.startswith("backbone.")}
        layout = "official-training"
        if not obj:
            raise CheckpointError(f"{path}: the 'teacher' entry has no 'backbone.' tensors")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entry {bad[0]!r} is a {type(obj[bad[0]]).__name__}, not a tensor")
    if hf_layout.is_hf_state_dict(obj):
        return hf_layout.from_hf(obj), "hf", None
    return obj, layout, None


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} was refused: it holds pickled objects other than tensors, which could run code when "
            f"loaded (weights_only=True). First line of the refusal: {str(e).splitlines()[0]}"
        ) from None
    except Exception as e:  # a non-checkpoint file fails deep inside the unpickler, with any error type
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({type(e).__name__}: {e})") from None


def _read_hf(path: Path) -> tuple[dict[str, Tensor], str, ModelConfig | None]:
    folder = path if path.is_dir() else path.parent
    files = [folder / n for n in _HF_WEIGHTS if (folder / n).exists()] if path.is_dir() else [path]
    if not files:
        raise CheckpointError(f"{folder} has no {' or '.join(_HF_WEIGHTS)}: not a Hugging Face model folder")
    cfg = None
    if (folder / "config.json").exists():
        try:
            cfg = hf_layout.config_from_hf(json.loads((folder / "config.json").read_text()))
        except (json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"{folder / 'config.json'} is not a usable transformers config: {e}") from None
    if files[0].suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(files[0])
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{files[0]} is not a readable safetensors file: {e}") from None
    else:
        sd = _torch_load(files[0])
    return hf_layout.from_hf(sd), "hf", cfg


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


def _check_family(cfg: ModelConfig, sd: dict) -> ModelConfig:
    is_convnext = "downsample_layers.0.0.weight" in sd
    if is_convnext != (cfg.family == "convnext"):
        found = "ConvNeXt" if is_convnext else "ViT"
        raise CheckpointError(f"the weights are a {found} checkpoint, but the model {cfg.name} is a {cfg.family}")
    return cfg


def load_checked(net: Backbone, sd: dict[str, Tensor]) -> None:
    """load_state_dict that names the first missing, unexpected or mis-shaped key."""
    expected = net.state_dict()
    name = net.cfg.name
    for key, t in expected.items():
        if key not in sd:
            raise CheckpointError(f"key {key!r} of {name} is missing from the weights")
        if tuple(sd[key].shape) != tuple(t.shape):
            raise CheckpointError(
                f"weights do not fit {name}: {key!r} has shape {tuple(sd[key].shape)} in the weights "
                f"but {tuple(t.shape)} in {name}"
            )
    extra = [k for k in sd if k not in expected]
    if extra:
        raise CheckpointError(f"unexpected key {extra[0]!r} in the weights for {name} ({len(extra)} unexpected)")
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in sd.items()})


def _hf_folder(path: Path) -> bool:
    """An HF folder as save_backbone writes it (config.json and model.safetensors, nothing else): replaceable."""
    return {p.name for p in path.iterdir()} == {"config.json", "model.safetensors"}


def save_backbone(model: Backbone, path: str | Path, layout: str = "edgedino") -> Path:
    """Write the weights as an official .pth, an HF folder (config.json + model.safetensors) or an edgedino file."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path, is_dir=layout == "hf", ours=_hf_folder) as tmp:
        if layout == "official":
            torch.save(sd, tmp)
        elif layout == "edgedino":
            torch.save({"format": "edgedino-backbone", "edgedino": __version__,
                        "config": config_to_dict(model.cfg), "state_dict": sd}, tmp)
        else:
            from safetensors.torch import save_file

            tensors, config = hf_layout.to_hf(sd, model.cfg)
            save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path

