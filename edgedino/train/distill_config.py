"""Distillation configuration: the pretraining config plus a `distill` section (teacher, students, targets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgedino.errors import ConfigError
from edgedino.train import config as train_config
from edgedino.train.config import CONFIGS, TrainConfig, fill

STAGE = CONFIGS / "distill.yaml"
PRESETS = CONFIGS / "distill"
TARGETS = ("auto", "heads", "features")


@dataclass
class DistillSection:
    teacher: str | None = None  # preset of the teacher; read off the weights when None (vitl16 without weights)
    teacher_weights: str | None = None  # anything load_backbone reads; a training checkpoint brings its heads
    students: list = field(default_factory=lambda: ["vits16"])  # presets, trained together on one teacher pass
    targets: str = "auto"  # auto: heads when the teacher file has DINO/iBOT heads, else features
    teacher_scale: float = 1.0  # teacher crop side / student crop side (2: the teacher sees the same view at 2x)
    cosine: float = 1.0  # feature targets: weight of 1 - cos(student, teacher)
    smooth_l1: float = 1.0  # feature targets: weight of smooth-L1(student, teacher)
    cls_weight: float = 1.0  # feature targets: CLS term weight
    patch_weight: float = 1.0  # feature targets: patch-token term weight


@dataclass
class DistillConfig(TrainConfig):
    distill: DistillSection = field(default_factory=DistillSection)


def preset_path(name: str) -> Path:
    """The stage `distill` or a preset under configs/distill/ (tiny-cpu, ...)."""
    path = STAGE if name == "distill" else PRESETS / f"{name}.yaml"
    if not path.exists():
        known = ["distill"] + sorted(p.stem for p in PRESETS.glob("*.yaml"))
        raise ConfigError(f"unknown distill preset {name!r}; known: {', '.join(known)}")
    return path


def load_config(path: str | Path, overrides: list[str] = ()) -> DistillConfig:
    """A DistillConfig from a YAML file (with its base chain) and `key=value` overrides, applied in order."""
    return train_config.load_config(path, overrides, DistillConfig)


def config_from_dict(d: dict) -> DistillConfig:
    return fill(DistillConfig(), d, "")


def check(cfg: DistillConfig) -> None:
    """Distillation settings that cannot work, named before any work starts."""
    from edgedino.models import get_config

    dc = cfg.distill
    if dc.targets not in TARGETS:
        raise ConfigError(f"distill.targets={dc.targets!r}: use {', '.join(TARGETS)}")
    if not dc.students:
        raise ConfigError("no student: give --student (e.g. vits16, convnext_tiny)")
    if len(set(dc.students)) != len(dc.students):
        raise ConfigError(f"a student is named twice in {dc.students}: each student trains once per run")
    for name in dc.students:
        get_config(name)
    if dc.teacher is not None:
        get_config(dc.teacher)
    if dc.teacher_scale <= 0:
        raise ConfigError(f"distill.teacher_scale={dc.teacher_scale} must be positive (2: teacher sees 2x crops)")
