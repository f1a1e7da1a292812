"""Every schedule as a pure function of the step and the FULL run length, so stopping early never changes them.

Each follows the official "schedules v2" shape: a linear warm-up from `start` to `peak`, a cosine from `peak` to
`end` (the last cosine step lands on `end`), then `end` held. DINOv3's main runs use peak == end (constant after
warm-up); DINOv2's cosine decay is the same shape with end < peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgedino.train.config import TrainConfig, fraction

SCALING_RULES = ("sqrt_wrt_1024", "linear_wrt_256", "none")


def warmup_cosine(step: int, start: float, peak: float, end: float, warmup: int, cosine: int) -> float:
    """`start` -> `peak` linearly over `warmup` steps, `peak` -> `end` by a half cosine over `cosine` steps,
    then `end` (official linear_warmup_cosine_decay, one step at a time)."""
    if step < warmup:
        return start + (peak - start) * step / warmup
    k = step - warmup
    if k >= cosine:
        return end
    if cosine == 1:
        return peak
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * k / (cosine - 1)))


def cosine(step: int, total: int, start: float, end: float, warmup: int = 0, warmup_from: float = 0.0) -> float:
    """Linear warm-up from `warmup_from` to `start` over `warmup` steps, then cosine from `start` to `end` over the
    rest of the run."""
    return warmup_cosine(step, warmup_from, start, end, warmup, total - warmup)


def lr_scale(rule: str, batch: int) -> float:
    """The official lr scaling rules: 4 sqrt(B / 1024) (DINOv3), B / 256 (DINOv2's linear rule) or 1."""
    if rule == "sqrt_wrt_1024":
        return 4 * math.sqrt(batch / 1024)
    if rule == "linear_wrt_256":
        return batch / 256
    return 1.0


@dataclass(frozen=True)
class Schedule:
    """The values every schedule takes at one step."""

    lr: float
    last_layer_lr: float  # 0 while the heads' last layers are frozen (their Adam moments stay)
    weight_decay: float
    momentum: float
    teacher_temp: float
    gram_weight: float
    local_weight: float  # weight of the DINO local-crop term (official reweight_dino_local_loss)
    refresh_gram: bool  # take a new Gram teacher snapshot before this step


def gram_refresh(cfg: TrainConfig, step: int) -> bool:
    """A Gram teacher snapshot before `step`: at the Gram start, then every refresh_every steps, at most
    max_refreshes times after the first (official: every 10k iterations, at most 3 updates)."""
    g = cfg.gram
    start = fraction(g.start, cfg.run.total_steps)
    if g.weight <= 0 or step < start:
        return False
    if step == start:
        return True
    k, rest = divmod(step - start, g.refresh_every) if g.refresh_every > 0 else (0, 1)
    return rest == 0 and (g.max_refreshes <= 0 or k <= g.max_refreshes)


def at(cfg: TrainConfig, step: int) -> Schedule:
    """All schedules of `cfg` at `step` (0-based), for a run of cfg.run.total_steps steps."""
    total = cfg.run.total_steps
    o = cfg.optim
    scale = lr_scale(o.scaling_rule, cfg.run.batch)
    warmup = fraction(o.warmup, total)
    span = fraction(o.cosine, total) if o.cosine > 0 else total - warmup
    lr = warmup_cosine(step, 0.0, o.lr * scale, o.min_lr * scale, warmup, span)
    gram_start, gram_ramp = fraction(cfg.gram.start, total), fraction(cfg.gram.warmup, total)
    ramp = warmup_cosine(step, 0.0, 0.0, 1.0, gram_start, gram_ramp) if gram_ramp else float(step >= gram_start)
    return Schedule(
        lr=lr,
        last_layer_lr=0.0 if step < fraction(o.freeze_last_layer, total) else lr,
        weight_decay=cosine(step, total, o.weight_decay, o.weight_decay_end),
        momentum=cosine(step, total, cfg.ema.momentum, cfg.ema.momentum_end),
        teacher_temp=warmup_cosine(step, cfg.loss.teacher_temp_start, cfg.loss.teacher_temp, cfg.loss.teacher_temp,
                                   fraction(cfg.loss.teacher_temp_warmup, total), 0),
        gram_weight=cfg.gram.weight * ramp,
        local_weight=1.0 + (cfg.loss.local_weight - 1.0) * ramp,
        refresh_gram=gram_refresh(cfg, step),
    )
