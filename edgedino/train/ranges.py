"""The allowed values of every training setting, checked when a config is read: NaN, a negative learning rate or
a zero batch is a one-line error naming the key, before any work starts. One table, read by `check_ranges`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields, replace

from edgedino.train.parallel import PARALLEL
from edgedino.train.schedules import SCALING_RULES


@dataclass(frozen=True)
class Range:
    """Finite numbers between `low` and `high` (either end open or absent); a tuple setting is checked per item."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, v: float) -> bool:
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        below = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return math.isfinite(v) and above and below

    def describe(self) -> str:
        low, high = (str(int(v)) if float(v).is_integer() else f"{v:g}" for v in (self.low or 0, self.high or 0))
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return "finite"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)
PROBABILITY = Range(0, 1)
FRACTION_OR_STEPS = NON_NEGATIVE  # a schedule length: a fraction of the run (<= 1) or a step count (> 1)

RANGES: dict[str, Range] = {
    "model.drop_path": Range(0, 1, high_open=True),
    "data.workers": NON_NEGATIVE,
    **{f"heads.{h}.{k}": r for h in ("dino", "ibot") for k, r in (
        ("out_dim", Range(2)), ("hidden", AT_LEAST_1), ("bottleneck", AT_LEAST_1), ("layers", AT_LEAST_1))},
    "loss.dino": NON_NEGATIVE, "loss.ibot": NON_NEGATIVE, "loss.koleo": NON_NEGATIVE,
    "loss.koleo_group": NON_NEGATIVE, "loss.local_weight": NON_NEGATIVE,
    "loss.student_temp": POSITIVE, "loss.teacher_temp": POSITIVE, "loss.teacher_temp_start": POSITIVE,
    "loss.teacher_temp_warmup": FRACTION_OR_STEPS, "loss.sinkhorn_iterations": AT_LEAST_1,
    "loss.mask_prob": PROBABILITY, "loss.mask_ratio": PROBABILITY,
    "gram.weight": NON_NEGATIVE, "gram.start": FRACTION_OR_STEPS, "gram.warmup": FRACTION_OR_STEPS,
    "gram.refresh_every": NON_NEGATIVE, "gram.max_refreshes": NON_NEGATIVE, "gram.teacher_scale": POSITIVE,
    "optim.lr": NON_NEGATIVE, "optim.min_lr": NON_NEGATIVE, "optim.warmup": FRACTION_OR_STEPS,
    "optim.cosine": FRACTION_OR_STEPS, "optim.patch_embed_lr": NON_NEGATIVE,
    "optim.freeze_last_layer": FRACTION_OR_STEPS,
    "optim.weight_decay": NON_NEGATIVE, "optim.weight_decay_end": NON_NEGATIVE,
    "optim.layer_decay": Range(0, 1, low_open=True), "optim.betas": Range(0, 1, high_open=True),
    "optim.clip": NON_NEGATIVE,
    "ema.momentum": PROBABILITY, "ema.momentum_end": PROBABILITY,
    "run.total_steps": AT_LEAST_1, "run.batch": AT_LEAST_1, "run.checkpoint_every": AT_LEAST_1,
    "run.log_every": AT_LEAST_1, "run.seed": Range(0, 2**32 - 1), "run.memory_gb": NON_NEGATIVE,
    "distill.teacher_scale": POSITIVE, "distill.cosine": NON_NEGATIVE, "distill.smooth_l1": NON_NEGATIVE,
    "distill.cls_weight": NON_NEGATIVE, "distill.patch_weight": NON_NEGATIVE,
    "crops.global_size": AT_LEAST_1, "crops.local_size": AT_LEAST_1, "crops.n_local": NON_NEGATIVE,
    "crops.global_scale": Range(0, 1, low_open=True), "crops.local_scale": Range(0, 1, low_open=True),
    "crops.jitter": NON_NEGATIVE, "crops.jitter_p": PROBABILITY, "crops.grayscale_p": PROBABILITY,
    "crops.blur_p": PROBABILITY, "crops.solarize_p": PROBABILITY, "crops.flip_p": PROBABILITY,
    "crops.hr_scale": NON_NEGATIVE, "crops.resolutions": NON_NEGATIVE, "crops.mean": Range(), "crops.std": POSITIVE,
}
CHOICES: dict[str, tuple[str, ...]] = {"run.amp": ("auto", "bf16", "fp32"), "run.parallel": PARALLEL,
                                       "optim.scaling_rule": SCALING_RULES,
                                       "distill.targets": ("auto", "heads", "features")}
ORDERED = ("loss.mask_ratio", "crops.global_scale", "crops.local_scale")  # (low, high) pairs


def _fail(key: str, value, need: str) -> None:
    from edgedino.errors import ConfigError

    raise ConfigError(f"{key}={value!r}: {need}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_value(key: str, value: object, default: object) -> None:
    """One setting against the type of its default and its range in RANGES (a ConfigError naming it)."""
    rule = RANGES.get(key, Range())
    if key in CHOICES and value not in CHOICES[key]:
        _fail(key, value, f"use one of {', '.join(CHOICES[key])}")
    if isinstance(default, bool) or default is None or isinstance(default, str):
        kind = str if default is None or isinstance(default, str) else bool
        if not (isinstance(value, kind) or (default is None and value is None)):
            _fail(key, value, f"must be {'true or false' if kind is bool else 'text'}")
    elif isinstance(default, int):
        if not (isinstance(value, int) and not isinstance(value, bool) and rule.holds(value)):
            _fail(key, value, f"must be an integer {rule.describe()}")
    elif isinstance(default, float):
        if not (_is_number(value) and rule.holds(value)):
            _fail(key, value, f"must be a finite number {rule.describe()}")
    elif isinstance(default, tuple):
        n = len(default)
        if not (isinstance(value, (tuple, list)) and len(value) == n and all(_is_number(v) and rule.holds(v)
                                                                            for v in value)):
            _fail(key, value, f"must be {n} numbers, each {rule.describe()}")
        if key in ORDERED and value[0] > value[1]:
            _fail(key, value, "must be (low, high) with low <= high")


def _leaves(obj, prefix: str = ""):
    """(dotted key, value, default) of every plain setting of a config dataclass, sections recursed."""
    blank = type(obj)()
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{f.name}.")
        elif not isinstance(value, dict):
            yield f"{prefix}{f.name}", value, getattr(blank, f.name)


def check_crops(crops: dict) -> None:
    """The `crops` mapping: known keys only (MultiCropConfig's fields), each in range."""
    from edgedino.errors import ConfigError
    from edgedino.train.augment import MultiCropConfig

    known = {f.name: f.default for f in fields(MultiCropConfig)}
    for key, value in crops.items():
        if key not in known:
            raise ConfigError(f"unknown config key 'crops.{key}'; known: {', '.join(known)}")
        if key == "resolutions":
            check_resolutions(value)
        else:
            check_value(f"crops.{key}", value, known[key])


def check_resolutions(rows) -> None:
    """crops.resolutions: rows of [global side, local side, weight], sides >= 1, weights >= 0 and not all 0."""
    if not isinstance(rows, (list, tuple)):
        _fail("crops.resolutions", rows, "must be a list of [global, local, weight] rows")
    for row in rows:
        check_value("crops.resolutions", row, (0, 0, 0.0))
        if row[0] < 1 or row[1] < 1:
            _fail("crops.resolutions", row, "crop sides must be at least 1")
    if rows and not sum(row[2] for row in rows) > 0:
        _fail("crops.resolutions", rows, "the weights must not all be 0")


def check_model(model) -> None:
    """model.name is a preset and model.arch changes only its fields, to values its config class accepts."""
    from edgedino.errors import ConfigError
    from edgedino.models import get_config

    preset = get_config(model.name)
    known = [f.name for f in fields(preset) if f.init and f.name != "name"]
    for key in model.arch:
        if key not in known:
            raise ConfigError(f"unknown config key 'model.arch.{key}' for {model.name}; known: {', '.join(known)}")
    replace(preset, name="custom", **model.arch).checked()  # the config class checks every value (a ConfigError)


def check_ranges(cfg) -> None:
    """Every setting of a TrainConfig (or DistillConfig) in range, and the settings that depend on each other."""
    for key, value, default in _leaves(cfg):
        check_value(key, value, default)
    for key in ("data.sources", "distill.students"):
        section, name = key.split(".")
        items = getattr(getattr(cfg, section, None), name, [])
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            _fail(key, items, "must be a list of names")
    check_crops(cfg.crops)
    check_model(cfg.model)
    if cfg.optim.lr == 0 and cfg.optim.min_lr == 0:
        from edgedino.errors import ConfigError

        raise ConfigError("optim.lr=0 and optim.min_lr=0: the learning rate is 0 for the whole run, nothing trains")
    if cfg.loss.koleo_group == 1:
        _fail("loss.koleo_group", 1, "a KoLeo group needs at least 2 images (0: this process's images)")
