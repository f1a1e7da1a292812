"""THE training loop, shared by pretraining and distillation: a `Step` says what the loss is, the loop does the rest.

Per step: reseed, set lr/wd from the schedules, loss -> backward -> clip -> AdamW, `Step.update` (EMA), log,
checkpoint. Everything is a function of (config, step), so a resumed run continues the same run exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from edgedino.errors import RunError
from edgedino.train import checkpoint, distributed, rundir
from edgedino.train.config import RunSection
from edgedino.train.metrics import NAME, CollapseMonitor, MetricsLog, Progress
from edgedino.train.optim import apply_schedule, build_optimizer


class Step(Protocol):
    """What a recipe (SSL pretraining, distillation) plugs into the loop."""

    terms: list[str]  # loss terms shown on the progress line

    def modules(self) -> dict[str, nn.Module]: ...  # everything a checkpoint holds, by name

    def param_groups(self) -> list[dict]: ...  # optimizer groups with lr_scale / wd_scale

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]: ...  # "loss" plus terms, monitors

    def after_backward(self, step: int) -> None: ...  # before clipping: drop gradients that must not apply

    def update(self, step: int, sched) -> None: ...  # after the optimizer step (EMA teachers)

    def export(self, out: Path) -> list[Path]: ...  # the backbones to hand users


@dataclass
class Result:
    steps_done: int
    final: dict  # the last step's metrics
    seconds: float
    exported: list[Path]


def step_seed(seed: int, step: int, rank: int) -> None:
    """Reseed torch's RNG (drop path, RoPE jitter) from (seed, step, rank): resume needs no RNG state."""
    torch.manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


def autocast(amp: str, device: str):
    """bf16 autocast on CUDA ("auto"/"bf16") or CPU ("bf16" only); fp32 ("fp32", or "auto" on CPU) otherwise."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if amp == "bf16" or (amp == "auto" and kind == "cuda"):
        return torch.autocast(kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def stop_if_diverged(step: int, values: dict[str, float], out: Path, saved: int | None) -> None:
    """A RunError when a loss term (or the gradient norm) is not finite, raised before any weight is updated with
    it: the last checkpoint stays the last good one (the official trainer also aborts on NaN)."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if not bad:
        return
    shown = ", ".join(f"{k} {v}" for k, v in list(bad.items())[:4])
    kept = f"{out / checkpoint.NAME} (step {saved}) is kept" if saved else "no checkpoint was written"
    raise RunError(f"step {step}: training diverged ({shown}); it stops before this step changes any weight, "
                   f"so nothing non-finite is saved; {kept}. Lower optim.lr (or check the data) and start again")


def train(step_fn: Step, run: RunSection, optim_cfg, schedule: Callable[[int], object],
          batches: Callable[[int], Iterator[dict]], d: distributed.Dist, out: Path, config: dict,
          max_steps: int | None = None, resume: bool = False, monitor_after: int = 0) -> Result:
    """Train from step 0 (or the checkpoint in `out`) up to `max_steps` (None: the whole run)."""
    out = Path(out)
    opt = build_optimizer(step_fn.param_groups(), optim_cfg.betas)
    params = [p for g in opt.param_groups for p in g["params"]]
    start = checkpoint.restore(checkpoint.load_checkpoint(out), step_fn.modules(), opt) if resume else 0
    stop = run.total_steps if max_steps is None else min(max_steps, run.total_steps)
    with rundir.writing(out / NAME):
        log = MetricsLog(out, start) if d.main else None
    bar = Progress(start, stop, run.log_every) if d.main else None
    monitor = CollapseMonitor(monitor_after)
    stream, record, t_start, saved = batches(start), {}, time.perf_counter(), start or None
    try:
        for s in range(start, stop):
            t0 = time.perf_counter()
            batch = next(stream)  # first: starting the loader's workers draws from torch's global RNG
            step_seed(run.seed, s, d.rank)
            sched = schedule(s)
            apply_schedule(opt, sched.lr, sched.weight_decay)
            with autocast(run.amp, d.device):
                terms = step_fn.loss(batch, s, sched)
            values = distributed.all_reduce_mean({k: float(v.detach()) for k, v in terms.items()}, d)
            stop_if_diverged(s, values, out, saved)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            step_fn.after_backward(s)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, optim_cfg.clip or math.inf))
            stop_if_diverged(s, {"grad_norm": grad_norm}, out, saved)
            opt.step()
            step_fn.update(s, sched)
            dt = time.perf_counter() - t0
            record = {"step": s, **values, "grad_norm": grad_norm, "lr": sched.lr,
                      "weight_decay": sched.weight_decay, "momentum": sched.momentum,
                      "teacher_temp": sched.teacher_temp, "images_per_s": run.batch / dt, "seconds": dt}
            if d.main:
                with rundir.writing(out / NAME):
                    log.write(record)
                bar.update(s, record, step_fn.terms)
                monitor.check(s, record)
            if (s + 1) % run.checkpoint_every == 0 or s + 1 == stop:
                if d.main:
                    checkpoint.save_checkpoint(out, s + 1, config, step_fn.modules(), opt)
                saved = s + 1
                if d.active:
                    torch.distributed.barrier()
        exported = step_fn.export(out) if d.main and stop > start else []
    finally:
        if d.main:
            bar.close()
            log.close()
    return Result(stop, record, time.perf_counter() - t_start, exported)
