"""THE training loop, shared by pretraining and distillation: a `Step` says what the loss is, the loop does the rest.

Per step: reseed, set lr/wd from the schedules, loss -> backward -> clip (each part) -> AdamW, `Step.update`
(EMA), log, checkpoint. Everything is a function of (config, step), so a resumed run continues the same run exactly.
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

from edgedino.errors import CheckpointError, RunError
from edgedino.train import distributed, run_state, rundir, sharded
from edgedino.train.config import RunSection
from edgedino.train.metrics import NAME, CollapseMonitor, MetricsLog, Progress
from edgedino.train.optim import apply_schedule, build_optimizer, clip_parts, clip_per_part


class Step(Protocol):
    """What a recipe (SSL pretraining, distillation) plugs into the loop."""

    terms: list[str]  # loss terms shown on the progress line

    def modules(self) -> dict[str, nn.Module]: ...  # everything a checkpoint holds, by name

    def param_groups(self) -> list[dict]: ...  # optimizer groups with lr_scale / wd_scale

    trained: nn.Module  # what the optimizer trains (its parts are clipped separately)

    def loss(self, batch: dict, step: int, sched) -> dict[str, torch.Tensor]: ...  # "loss" plus terms, monitors

    def continued(self, loaded: set[str]) -> None: ...  # after continue_from restored the modules named in `loaded`

    def update(self, step: int, sched) -> None: ...  # after the optimizer step (EMA teachers)

    def export(self, out: Path) -> list[Path]: ...  # the backbones to hand users (called in every process)


@dataclass
class Result:
    steps_done: int
    final: dict  # the last step's metrics
    seconds: float
    exported: list[Path]
    checkpoint: Path  # checkpoint.pth, or the sharded checkpoint.dcp folder of an FSDP run


def step_seed(seed: int, step: int, rank: int) -> None:
    """Reseed torch's RNG (drop path, RoPE jitter) from (seed, step, rank): resume needs no RNG state."""
    torch.manual_seed(int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0]))


def uses_bf16(amp: str, device: str) -> bool:
    """bf16 on CUDA ("auto"/"bf16") or CPU ("bf16" only); fp32 ("fp32", or "auto" on CPU) otherwise."""
    return amp == "bf16" or (amp == "auto" and device.startswith("cuda"))


def autocast(amp: str, device: str):
    """bf16 autocast when the run computes in bf16 (uses_bf16), else nothing."""
    if uses_bf16(amp, device):
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def restore(path: str | Path, step_fn: Step, opt: torch.optim.Optimizer, optional: tuple[str, ...] = ()
            ) -> tuple[int, set[str]]:
    """Load a run's modules and optimizer from its checkpoint (checkpoint.pth or a sharded folder); modules named
    in `optional` may be missing from it. Returns (steps done, the modules loaded)."""
    if sharded.folder(path) is not None:
        return sharded.load(path, step_fn.modules(), opt, optional)
    if any(hasattr(p, "full_tensor") for p in step_fn.trained.parameters()):
        raise CheckpointError(f"{path} is a whole-model checkpoint (a run.parallel=ddp run): a run.parallel=fsdp "
                              "run continues only from a sharded one (checkpoint.dcp); continue it with ddp")
    state = run_state.load_checkpoint(path)
    mods = {k: m for k, m in step_fn.modules().items() if k in state["modules"] or k not in optional}
    return run_state.restore(state, mods, opt), set(mods)


def save(out: Path, step: int, config: dict, step_fn: Step, opt, run: RunSection, d: distributed.Dist) -> None:
    """The run's checkpoint after `step` steps: sharded by every process under FSDP, else checkpoint.pth."""
    if run.parallel == "fsdp" and d.active:
        sharded.save(out, step, config, step_fn.modules(), opt, d)
        return
    if d.main:
        run_state.save_checkpoint(out, step, config, step_fn.modules(), opt)
    if d.active:
        torch.distributed.barrier()


def stop_if_diverged(step: int, values: dict[str, float], ckpt: Path, saved: int | None) -> None:
    """A RunError when a loss term (or the gradient norm) is not finite, raised before any weight is updated with
    it: the last checkpoint stays the last good one (the official trainer also aborts on NaN)."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if not bad:
        return
    shown = ", ".join(f"{k} {v}" for k, v in list(bad.items())[:4])
    kept = f"{ckpt} (step {saved}) is kept" if saved else "no checkpoint was written"
    raise RunError(f"step {step}: training diverged ({shown}); it stops before this step changes any weight, "
                   f"so nothing non-finite is saved; {kept}. Lower optim.lr (or check the data) and start again")


def train(step_fn: Step, run: RunSection, optim_cfg, schedule: Callable[[int], object],
          batches: Callable[[int], Iterator[dict]], d: distributed.Dist, out: Path, config: dict,
          max_steps: int | None = None, resume: bool = False, monitor_after: int = 0,
          continue_from: str | None = None) -> Result:
    """Train from step 0 (or the checkpoint in `out`, or where the run `continue_from` stopped) up to `max_steps`
    (None: the whole run)."""
    out = Path(out)
    opt = build_optimizer(step_fn.param_groups(), optim_cfg.betas)
    parts = clip_parts(step_fn.trained)
    start = 0
    if resume:
        start = restore(out, step_fn, opt)[0]
    elif continue_from:
        start, loaded = restore(continue_from, step_fn, opt, optional=tuple(step_fn.modules()))
        step_fn.continued(loaded)
    stop = run.total_steps if max_steps is None else min(max_steps, run.total_steps)
    with rundir.writing(out / NAME):
        log = MetricsLog(out, start) if d.main else None
    bar = Progress(start, stop, run.log_every) if d.main else None
    monitor = CollapseMonitor(monitor_after)
    stream, record, t_start = batches(start), {}, time.perf_counter()
    saved = start if resume and start else None  # the step of the last checkpoint in `out`
    ckpt = out / (sharded.DIR if run.parallel == "fsdp" and d.active else run_state.NAME)
    try:
        for s in range(start, stop):
            t0 = time.perf_counter()
            batch = next(stream)  # first: starting the loader's workers draws from torch's global RNG
            step_seed(run.seed, s, d.rank)
            sched = schedule(s)
            apply_schedule(opt, sched)
            with autocast(run.amp, d.device):
                terms = step_fn.loss(batch, s, sched)
            values = distributed.all_reduce_mean({k: float(v.detach()) for k, v in terms.items()}, d)
            stop_if_diverged(s, values, ckpt, saved)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            grad_norm = float(clip_per_part(parts, optim_cfg.clip))
            stop_if_diverged(s, {"grad_norm": grad_norm}, ckpt, saved)
            opt.step()
            step_fn.update(s, sched)
            dt = time.perf_counter() - t0
            record = {"step": s, **values, "grad_norm": grad_norm, "lr": sched.lr,
                      "weight_decay": sched.weight_decay, "momentum": sched.momentum,
                      "teacher_temp": sched.teacher_temp, "images_per_s": run.batch / dt, "seconds": dt}
            if d.device.startswith("cuda"):
                record["gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9  # this process's peak so far
            if d.main:
                with rundir.writing(out / NAME):
                    log.write(record)
                bar.update(s, record, step_fn.terms)
                monitor.check(s, record)
            if (s + 1) % run.checkpoint_every == 0 or s + 1 == stop:
                save(out, s + 1, config, step_fn, opt, run, d)
                saved = s + 1
        exported = step_fn.export(out) if stop > start else []
    finally:
        if d.main:
            bar.close()
            log.close()
    return Result(stop, record, time.perf_counter() - t_start, exported, ckpt)
