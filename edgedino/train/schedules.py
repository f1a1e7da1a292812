"""Every schedule as a pure function of the step and the FULL run length, so stopping early never changes them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgedino.train.config import TrainConfig, fraction


def cosine(step: int, total: int, start: float, end: float, warmup: int = 0, warmup_from: float = 0.0) -> float:
    """Linear warm-up from `warmup_from` to `start` over `warmup` steps, then cosine from `start` to `end`."""
    if step < warmup:
        return warmup_from + (start - warmup_from) * step / warmup
    span = max(total - warmup, 1)
    t = min(max(step - warmup, 0) / span, 1.0)
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


def linear_warmup(step: int, warmup: int, start: float, end: float) -> float:
    """`start` rising linearly to `end` over `warmup` steps, then `end`."""
    if step >= warmup:
        return end
    return start + (end - start) * step / warmup


@dataclass(frozen=True)
class Schedule:
    """The values every schedule takes at one step."""

    lr: float
    weight_decay: float
    momentum: float
    teacher_temp: float
    gram_weight: float
    refresh_gram: bool  # take a new Gram teacher snapshot before this step


def at(cfg: TrainConfig, step: int) -> Schedule:
    """All schedules of `cfg` at `step` (0-based), for a run of cfg.run.total_steps steps."""
    total = cfg.run.total_steps
    o = cfg.optim
    gram_start = fraction(cfg.gram.start, total)
    every = cfg.gram.refresh_every
    refresh = cfg.gram.weight > 0 and step >= gram_start and (
        step == gram_start or (every > 0 and (step - gram_start) % every == 0))
    return Schedule(
        lr=cosine(step, total, o.lr, o.min_lr, fraction(o.warmup, total)),
        weight_decay=cosine(step, total, o.weight_decay, o.weight_decay_end),
        momentum=cosine(step, total, cfg.ema.momentum, cfg.ema.momentum_end),
        teacher_temp=linear_warmup(step, fraction(cfg.loss.teacher_temp_warmup, total),
                                   cfg.loss.teacher_temp_start, cfg.loss.teacher_temp),
        gram_weight=cfg.gram.weight if step >= gram_start else 0.0,
        refresh_gram=refresh,
    )
