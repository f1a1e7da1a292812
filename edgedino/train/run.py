"""What a pretraining and a distillation run share: checking the config, the data and a resume, the multi-crop
transform, and feeding the loop in the run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgedino.errors import ConfigError
from edgedino.train import metrics, run_state, schedules, sharded
from edgedino.train.config import TrainConfig, config_dict, config_from_dict, fraction
from edgedino.train.loop import Result, train
from edgedino.train.ranges import check_ranges
from edgedino.train.rundir import run_folder


def check_config(cfg: TrainConfig, world: int) -> None:
    """Settings that cannot work, named before any work starts."""
    check_ranges(cfg)
    if not cfg.data.sources:
        raise ConfigError("no training data: give --data (image folders, videos, list files)")
    if cfg.run.batch % world:
        raise ConfigError(f"run.batch={cfg.run.batch} does not split evenly over {world} processes")
    if cfg.loss.koleo > 0 and (cfg.loss.koleo_group or cfg.run.batch // world) < 2:
        raise ConfigError(f"run.batch={cfg.run.batch}: KoLeo compares each image with its nearest neighbour among "
                          f"its process's images ({world} process(es)); use at least 2 per process (or loss.koleo=0)")
    family = model_family(cfg)
    if cfg.loss.ibot > 0 and not family.mask_token:
        raise ConfigError(f"iBOT needs a mask token, which {family.title} has not: set loss.ibot=0")
    check_recipe(cfg)


def check_recipe(cfg: TrainConfig) -> None:
    """Settings that exclude each other, and crop sides the model's stride must divide (ranges: train/ranges.py)."""
    if cfg.init and cfg.continue_from:
        raise ConfigError("init= starts a new run from weights, continue_from= continues a run: give one of them")
    stride = get_stride(cfg)
    for row in cfg.crops.get("resolutions", ()):
        sides = [row[0], round(row[0] * cfg.gram.teacher_scale)]
        if any(int(v) != v or v % stride for v in sides) or row[1] < stride:
            raise ConfigError(f"crops.resolutions row {row!r}: global and Gram teacher sides must be multiples of "
                              f"the model's stride {stride}, the local side at least that")


def check_sources(cfg: TrainConfig) -> None:
    """Every data source exists and holds items, before anything is written."""
    from edgedino.data.sources import index_source, parse_sources

    for source in parse_sources(list(cfg.data.sources)):
        index_source(source)


def model_family(cfg: TrainConfig):
    """The backbone family (edgedino.models.families) of the run's model."""
    from edgedino.models import get_config, get_family

    return get_family(get_config(cfg.model.name).family)


def get_stride(cfg: TrainConfig) -> int:
    from edgedino.models import get_config

    return replace(get_config(cfg.model.name), **cfg.model.arch).stride


def saved_config(out: Path) -> dict:
    """The config a run folder's checkpoint (checkpoint.pth or the sharded one) was written with."""
    from edgedino.train import sharded

    return (sharded.read_info(out) if sharded.folder(out) else run_state.load_checkpoint(out))["config"]


def check_resume(cfg: TrainConfig, out: Path, from_dict=config_from_dict) -> None:
    """A resumed run must be the same run: its checkpoint's config has to match this one."""
    a = flat(config_dict(from_dict(saved_config(out))))
    b = flat(config_dict(cfg))
    diff = [f"{k}={b.get(k)!r} (was {a.get(k)!r})" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if diff:
        raise ConfigError(f"--resume: the run in {out} was started with other settings: {', '.join(diff)}; "
                          "resume with the same config, or use a new --out")


def flat(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def make_transform(cfg: TrainConfig):
    """Multi-crop for the config; with Gram anchoring at gram.teacher_scale != 1, the Gram teacher's larger global
    crops too (undistorted when gram.no_distortions)."""
    from edgedino.train.augment import MultiCrop, MultiCropConfig

    try:
        crops = MultiCropConfig(**cfg.crops)
    except TypeError as e:
        raise ConfigError(f"crops: {e}") from None
    crops = replace(crops, **{k: tuple(tuple(r) if isinstance(r, list) else r for r in v)
                              for k, v in cfg.crops.items() if isinstance(v, list)})
    if cfg.gram.weight > 0 and cfg.gram.teacher_scale != 1:
        crops = replace(crops, hr_scale=cfg.gram.teacher_scale, hr_undistorted=cfg.gram.no_distortions)
    return MultiCrop(crops)


def run_steps(step, cfg: TrainConfig, transform, d, out: Path, max_steps: int | None, resume: bool,
              outputs: list[str]) -> Result:
    """Check that a step fits in memory, then, in the run folder (`outputs`: the names written there), feed the
    shared loop: this process's share of each global batch, from the step it starts at."""
    from edgedino.data.loader import DataConfig, make_loader
    from edgedino.train.memory import check_memory

    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps={max_steps}: stop after at least 1 step (None runs the whole schedule)")
    check_memory(step, cfg, transform, schedules.at(cfg, 0), d)

    data = DataConfig(sources=list(cfg.data.sources), workers=cfg.data.workers)
    per_rank = cfg.run.batch // d.world

    def batches(start: int):
        return iter(make_loader(data, transform, batch_size=per_rank, seed=cfg.run.seed, rank=d.rank,
                                world=d.world, start_step=start))

    with run_folder(out, [run_state.NAME, sharded.DIR, metrics.NAME, *outputs], d.main):
        return train(step, cfg.run, cfg.optim, lambda s: schedules.at(cfg, s), batches, d, out, config_dict(cfg),
                     max_steps, resume, monitor_after=fraction(cfg.optim.warmup, cfg.run.total_steps),
                     continue_from=cfg.continue_from)
