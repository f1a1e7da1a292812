"""Load and save backbones: official DINOv3 .pth, official training checkpoints, HF folders, edgedino files.

Weights can be named by a local path, a Hugging Face Hub id or a download link (edgedino.fetch). The
architecture is read off the tensors' shapes when not given; every missing, unexpected or mis-shaped key is a
CheckpointError that names it, found before the model is allocated. Pickles are always read with
weights_only=True.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from edgedino import dcp, fetch, hf_layout
from edgedino.atomic import atomic_path
from edgedino.digest import check_name_hash
from edgedino.errors import CheckpointError
from edgedino.models import FAMILIES, Backbone, ModelConfig, create_model, get_config, match_preset
from edgedino.models.config import config_from_dict, config_to_dict
from edgedino.models.infer import check_family, infer_config
from edgedino.models.rope import rope_periods
from edgedino.official_layout import add_aliases, drop_aliases
from edgedino.readers import torch_load
from edgedino.runtime.formats import format_of
from edgedino.version import __version__

LAYOUTS = ("official", "hf", "edgedino")
RANDOM_SEED = 0  # random weights are drawn from this seed unless told otherwise, so an artifact can be rebuilt


class RandomWeightsWarning(UserWarning):
    """The backbone has random weights: its features mean nothing."""


@dataclass
class Source:
    """Where a backbone's weights came from."""

    path: str | None  # the local file or folder; None: random init
    layout: str  # "official", "official-training", "official-dcp", "hf", "edgedino", "edgedino-training", "random"
    seed: int | None = None  # random init: the seed the weights were drawn from
    given: str | None = None  # what the user named, when not the local path (a Hub id or a download link)
    hash_checked: str | None = None  # the SHA-256 prefix in a release's file name, checked against the file


def load_backbone(weights: str | Path | None = None, model: str | None = None, device: str = "cpu",
                  seed: int = RANDOM_SEED) -> Backbone:
    """A backbone in eval mode from weights (a path, a Hub id or a link); `model=None` infers the preset from the
    shapes. Without weights it is `model` (default vits16) with random weights drawn from `seed`."""
    if weights is None:
        net = create_model(model or "vits16").reset_parameters(seed=seed)
        warnings.warn(f"no weights given: {net.cfg.name} has random weights (seed {seed})", RandomWeightsWarning,
                      stacklevel=2)
        net.source = Source(None, "random", seed=seed)
        return net.eval().to(device)
    path = fetch.resolve(weights)
    sd, layout, file_cfg = read_state_dict(path)
    cfg = _config(sd, model, file_cfg)
    if cfg.family == "vit" and "rope_embed.periods" not in sd:  # the HF layout stores only the base
        sd["rope_embed.periods"] = rope_periods(cfg.head_dim, cfg.rope_base)
    with torch.device("meta"):
        check_keys(create_model(cfg), sd)  # before any memory is spent on a model the weights do not fit
    net = create_model(cfg)
    load_checked(net, sd)
    given = None if str(weights) == str(path) else str(weights)
    net.source = Source(str(path), layout, given=given, hash_checked=check_name_hash(path))
    return net.eval().to(device)


def _config(sd: dict[str, Tensor], model: str | None, file_cfg: ModelConfig | None) -> ModelConfig:
    """The architecture: the preset asked for (checked against the weights' family), else the file's own."""
    if model is None:
        cfg = file_cfg or infer_config(sd)
        return match_preset(cfg) if cfg.name == "custom" else cfg
    cfg = check_family(get_config(model), sd)
    if cfg.family == "vit" and "local_cls_norm.weight" in sd:  # training-only norm (ViT-L/16 SAT-493M, 7B)
        cfg = replace(cfg, local_cls_norm=True)
    return cfg


def read_state_dict(path: str | Path) -> tuple[dict[str, Tensor], str, ModelConfig | None]:
    """Tensors in edgedino's (the official) layout without aliases, the layout they came in, and the config if
    the file names one. Reads released .pth files, training checkpoints (their teacher), DCP folders, HF folders
    and files, and edgedino files."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights not found: {path}")
    if format_of(path) is not None:
        raise CheckpointError(f"{path} is an exported artifact, not weights: `edgedino info --weights` shows its "
                              "metadata; `features` and `eval` run it; export again from the weights it was "
                              "exported from")
    if dcp.is_dcp(path):
        return _official(_backbone_of(read_teacher(path, ("backbone.",))[0], path)), "official-dcp", None
    if path.is_dir() or path.suffix == ".safetensors":
        sd, cfg = hf_layout.read(path)
        return sd, "hf", cfg
    check_name_hash(path)
    obj = torch_load(path)
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    if obj.get("format") == "edgedino-backbone":
        return dict(obj["state_dict"]), "edgedino", config_from_dict(obj["config"])
    layout = "official"
    teacher = _teacher_of(obj)
    if teacher is not None:
        layout = "edgedino-training" if obj.get("format") == "edgedino-train" else "official-training"
        obj = _backbone_of(teacher, path)
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entry {bad[0]!r} is a {type(obj[bad[0]]).__name__}, not a tensor")
    if hf_layout.is_hf_state_dict(obj):
        return hf_layout.from_hf(obj), "hf", None
    return _official(obj), layout, None


def read_teacher(path: str | Path, parts: tuple[str, ...]) -> tuple[dict[str, Tensor], dict | None] | None:
    """The teacher's tensors whose names start with one of `parts` ("backbone.", "dino_head.", ...) in a training
    checkpoint, with its edgedino config if it has one; None for a file that is not a training checkpoint.

    Training checkpoints: the official teacher_checkpoint.pth ({"teacher": ...}), a DCP folder as official runs
    save them (the whole run: model.teacher.*, or the sharded teacher: model.backbone.*), such a folder converted
    to one file by dcp_to_torch_save ({"model": ...}), and edgedino's own (edgedino.train.run_state)."""
    path = fetch.resolve(path)
    if dcp.is_dcp(path):
        names = dcp.tensor_names(path)
        prefix = next((p for p in ("model.teacher.", "model.") if any(n.startswith(p + "backbone.") for n in names)),
                      None)
        if prefix is None:
            raise CheckpointError(f"sharded checkpoint {path} holds no teacher backbone (model.teacher.backbone.* "
                                  "or model.backbone.*)")
        wanted = [n for n in names if n[len(prefix):].startswith(parts)]
        return {n[len(prefix):]: t for n, t in dcp.load_tensors(path, wanted).items()}, None
    if not path.is_file() or path.suffix == ".safetensors" or format_of(path) is not None:
        return None
    obj = torch_load(path)
    teacher = _teacher_of(obj) if isinstance(obj, dict) else None
    if teacher is None:
        return None
    config = obj.get("config") if obj.get("format") == "edgedino-train" else None
    return {k: v for k, v in teacher.items() if k.startswith(parts)}, config


def _teacher_of(obj: dict) -> dict | None:
    """The teacher's state dict inside a loaded training checkpoint, or None."""
    if isinstance(obj.get("teacher"), dict):
        return obj["teacher"]
    model = obj.get("model")
    if isinstance(model, dict):  # a DCP checkpoint converted to one file
        if any(str(k).startswith("teacher.backbone.") for k in model):
            return {k[len("teacher."):]: v for k, v in model.items() if k.startswith("teacher.")}
        if any(str(k).startswith("backbone.") for k in model):
            return model
    return None


def _backbone_of(teacher: dict, path: Path) -> dict:
    sd = {k[len("backbone."):]: v for k, v in teacher.items() if k.startswith("backbone.")}
    if not sd:
        raise CheckpointError(f"{path}: the training checkpoint's teacher has no 'backbone.' tensors")
    return sd


def _official(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official-layout tensors without the aliases the official state_dict() adds (checked equal)."""
    family = next((f for f in FAMILIES.values() if f.marker in sd), None)
    return drop_aliases(sd, family.name) if family else sd  # not a backbone at all: said when its config is read


def check_keys(net: Backbone, sd: dict[str, Tensor]) -> None:
    """The first missing, unexpected or mis-shaped key as a CheckpointError (works on a meta-device model)."""
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


def load_checked(net: Backbone, sd: dict[str, Tensor]) -> None:
    """load_state_dict that names the first missing, unexpected or mis-shaped key."""
    check_keys(net, sd)
    expected = net.state_dict()
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in sd.items()})


def official_state_dict(model: Backbone) -> dict[str, Tensor]:
    """The tensors exactly as the official model's state_dict() has them: its names, order and aliases."""
    return add_aliases(dict(model.state_dict()), model.cfg.family)


def _hf_folder(path: Path) -> bool:
    """An HF folder as save_backbone writes it (config.json and model.safetensors, nothing else): replaceable."""
    return {p.name for p in path.iterdir()} == {"config.json", "model.safetensors"}


def save_backbone(model: Backbone, path: str | Path, layout: str = "edgedino") -> Path:
    """Write the weights as an official .pth, an HF folder (config.json + model.safetensors) or an edgedino file."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if getattr(model, "deployed_for", None):
        raise CheckpointError(f"{model.cfg.name} was deployed for {model.deployed_for} (its layers are in export "
                              "form, which no checkpoint layout holds): save or export it before deploy(), or deploy "
                              "a copy")
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path, is_dir=layout == "hf", ours=_hf_folder) as tmp:
        if layout == "official":
            torch.save({k: v.detach().cpu().contiguous() for k, v in official_state_dict(model).items()}, tmp)
        elif layout == "edgedino":
            torch.save({"format": "edgedino-backbone", "edgedino": __version__,
                        "config": config_to_dict(model.cfg), "state_dict": sd}, tmp)
        else:
            from safetensors.torch import save_file

            tensors, config = hf_layout.to_hf(sd, model.cfg)
            save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path

