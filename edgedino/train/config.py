"""Training configuration: dataclasses filled from YAML stage/preset files plus `key=value` overrides."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from edgedino.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent / "configs"
STAGES = ("pretrain", "gram_anchor", "high_res_adapt")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but `1e-5` is a float as in YAML 1.2 (PyYAML reads it as a string, and dict-valued
    keys such as model.arch are not coerced by their field's type)."""


_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+.0123456789"))


@dataclass
class ModelSection:
    name: str = "vits16"  # a preset of edgedino.models
    arch: dict = field(default_factory=dict)  # overrides of the preset's fields (a custom architecture)
    drop_path: float = 0.1


@dataclass
class DataSection:
    sources: list = field(default_factory=list)  # folders, videos ("clip.mp4:stride=10"), list files, ":weight=w"
    workers: int = 2


@dataclass
class HeadSize:
    """One projection head's sizes (official dino.head_* / ibot.head_*)."""

    out_dim: int = 65536  # prototypes K
    hidden: int = 2048
    bottleneck: int = 256
    layers: int = 3


@dataclass
class HeadsSection:
    dino: HeadSize = field(default_factory=HeadSize)
    ibot: HeadSize = field(default_factory=HeadSize)
    ibot_separate: bool = True  # a second head for iBOT (else the DINO head is shared)
    norm_last_layer: bool = False  # row-normalised prototypes (DINOv1); the official DINOv3 head leaves them free


@dataclass
class LossSection:
    dino: float = 1.0
    ibot: float = 1.0
    koleo: float = 0.1
    koleo_group: int = 0  # images per KoLeo neighbour set (0: this process's images, as the official default)
    local_weight: float = 1.0  # DINO local-crop term weight, reached over the Gram ramp (official reweighting)
    student_temp: float = 0.1
    teacher_temp: float = 0.07
    teacher_temp_start: float = 0.04
    teacher_temp_warmup: float = 0.1  # fraction of the run (or steps when > 1)
    sinkhorn_iterations: int = 3
    mask_prob: float = 0.5
    mask_ratio: tuple = (0.1, 0.5)


@dataclass
class GramSection:
    weight: float = 0.0  # 0 turns Gram anchoring off
    start: float = 0.0  # first step with the Gram loss (fraction of the run or steps)
    warmup: float = 0.0  # steps (or fraction) over which the weight rises from 0 (cosine), from `start`
    refresh_every: int = 10000  # steps between Gram teacher snapshots of the EMA teacher (0: never refresh)
    max_refreshes: int = 0  # snapshots after the first one, at most (0: no limit)
    teacher_scale: float = 1.0  # Gram teacher crop side / student global crop side (2: the same views at 2x)
    no_distortions: bool = False  # the Gram teacher sees the crops before colour jitter, blur and solarisation


@dataclass
class OptimSection:
    lr: float = 5e-5  # peak lr after warm-up, for a batch of 1024 under scaling_rule (official schedules.lr.peak)
    min_lr: float = 5e-5  # the lr the cosine ends at (= lr: constant after warm-up, DINOv3; official lr.end)
    warmup: float = 0.1  # fraction of the run (or steps when > 1)
    cosine: float = 0.0  # length of the cosine from lr to min_lr (fraction or steps; 0: the rest of the run)
    scaling_rule: str = "sqrt_wrt_1024"  # lr x 4 sqrt(batch / 1024); "linear_wrt_256"; "none"
    weight_decay: float = 0.04
    weight_decay_end: float = 0.04
    layer_decay: float = 0.98  # ViT blocks only (the official code gives ConvNeXt none)
    patch_embed_lr: float = 0.2  # lr multiplier of the ViT patch embedding
    freeze_last_layer: float = 0.0  # heads' last layers get lr 0 (Adam moments kept) for this fraction / steps
    betas: tuple = (0.9, 0.99)
    clip: float = 30.0  # gradient-norm clip, applied to the backbone and to each head separately


@dataclass
class EMASection:
    momentum: float = 0.994
    momentum_end: float = 1.0


@dataclass
class RunSection:
    total_steps: int = 100000  # the schedules' length (--max-steps stops earlier without changing them)
    batch: int = 1024  # global batch, split evenly across processes
    checkpoint_every: int = 1000
    log_every: int = 10
    seed: int = 0
    amp: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU), "bf16" or "fp32"
    parallel: str = "ddp"  # "ddp" (replicated models) or "fsdp" (FSDP2: parameters, gradients, Adam state sharded)
    activation_checkpointing: bool = False  # recompute each block's activations in the backward pass
    memory_gb: float = 0.0  # memory a step may plan on, per process (0: what is available when the run starts)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    crops: dict = field(default_factory=dict)  # edgedino.train.augment.MultiCropConfig fields
    heads: HeadsSection = field(default_factory=HeadsSection)
    loss: LossSection = field(default_factory=LossSection)
    gram: GramSection = field(default_factory=GramSection)
    optim: OptimSection = field(default_factory=OptimSection)
    ema: EMASection = field(default_factory=EMASection)
    run: RunSection = field(default_factory=RunSection)
    init: str | None = None  # a training checkpoint or backbone to start a new run from (high-res adaptation)
    continue_from: str | None = None  # a run folder or checkpoint whose run this one continues (Gram anchoring)


def fill(obj, values: dict, where: str):
    """Set the fields of dataclass `obj` from a nested dict; an unknown key is a ConfigError naming it."""
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key '{where}{key}'; known: {', '.join(known)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {where}{key} is a section: give a mapping, not {value!r}")
            fill(current, value, f"{where}{key}.")
        elif isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            setattr(obj, key, _coerce(value, current, f"{where}{key}"))
    return obj


def _coerce(value, current, where: str):
    """`value` in the type of the field's current value (YAML reads 1e-3 as a string, lists for tuples)."""
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"config key {where} needs a number, got {value!r}") from None
    if isinstance(current, (bool, int, str)) and value is not None and type(value) is not type(current):
        hint = " (YAML reads on/off/yes/no as booleans: quote it)" if isinstance(value, bool) else ""
        raise ConfigError(f"config key {where} needs a {type(current).__name__}, got {value!r}{hint}")
    return value


def _read(path: Path, seen: tuple = ()) -> list[dict]:
    """A YAML file's dicts, its `base:` chain first (a stage name or a path relative to the file)."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    data = _yaml(path.read_text(), f"{path} is not valid YAML") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a YAML mapping")
    base = data.pop("base", None)
    if base is None:
        return [data]
    base_path = CONFIGS / f"{base}.yaml" if base in STAGES else (path.parent / base)
    if base_path.resolve() in seen:
        raise ConfigError(f"{path}: circular base {base!r}")
    return _read(base_path, seen + (base_path.resolve(),)) + [data]


def parse_override(text: str) -> dict:
    """`a.b.c=value` (value parsed as YAML) -> {"a": {"b": {"c": value}}}."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. optim.lr=1e-3)")
    key, value = text.split("=", 1)
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = _yaml(value, f"override {text!r}: the value is not valid YAML")
    return out


def _yaml(text: str, what: str):
    """Plain YAML data (safe: a !!python tag is an error, never code), or a ConfigError saying where it fails."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} ({' '.join(str(e).split())})") from None


def preset_path(name: str) -> Path:
    """The YAML file of a preset (vits16, convnext_tiny, tiny-cpu) or a stage."""
    path = CONFIGS / ("presets" if name not in STAGES else "") / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONFIGS / "presets").glob("*.yaml")) + list(STAGES)
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(known)}")
    return path


def load_config(path: str | Path, overrides: list[str] = (), kind: type = TrainConfig) -> TrainConfig:
    """A config of `kind` (TrainConfig or a subclass) from a YAML file (with its base chain) and `key=value`
    overrides, applied in order."""
    from edgedino.train.ranges import check_ranges

    cfg = kind()
    for layer in _read(Path(path)) + [parse_override(o) for o in overrides]:
        fill(cfg, layer, "")
    check_ranges(cfg)
    return cfg


def config_dict(cfg: TrainConfig) -> dict:
    """Plain JSON/YAML-friendly dict of a config (what checkpoints store)."""
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> TrainConfig:
    return fill(TrainConfig(), d, "")


def fraction(value: float, total: int) -> int:
    """A schedule length given as a fraction of the run (<= 1) or as steps (> 1)."""
    return int(round(value * total)) if value <= 1 else int(value)
