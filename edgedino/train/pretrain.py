"""One pretraining run from a config: data, the SSL step, the loop, the exported backbone and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

from edgedino.train import distributed
from edgedino.train.config import TrainConfig
from edgedino.train.loop import Result
from edgedino.train.run import check_config, check_resume, check_sources, make_transform, run_steps
from edgedino.train.rundir import check_out


def summary(result: Result) -> str:
    """The table printed at the end of a run."""
    f = result.final
    rows = [("steps done", str(result.steps_done)), ("wall time", f"{result.seconds:.0f} s")]
    rows += [(k, f"{f[k]:.4f}") for k in ("loss", "dino", "ibot", "koleo", "gram", "teacher_entropy",
                                          "feature_std") if k in f]
    rows += [("images/s (last step)", f"{f['images_per_s']:.1f}")] if f else []
    rows += [("checkpoint", str(result.checkpoint))] + [("backbone", str(p)) for p in result.exported]
    return "\n".join(f"{k:<22} {v}" for k, v in rows)


def pretrain(cfg: TrainConfig, out: str | Path, max_steps: int | None = None, resume: bool = False) -> Result:
    """Train (or continue) the run in `out`; rank 0 writes checkpoints, metrics.jsonl and backbone.pth."""
    from edgedino.train.pretrain_step import SSLStep

    d = distributed.init()
    try:
        check_config(cfg, d.world)
        check_sources(cfg)
        out = Path(out)
        check_out(out)
        if resume:
            check_resume(cfg, out)
        step = SSLStep(cfg, d, init=None if resume else cfg.init)
        if d.main:
            print(f"pretraining {step.student.backbone.cfg.describe()} on {', '.join(cfg.data.sources)}: "
                  f"{cfg.run.total_steps} steps of {cfg.run.batch} images ({d.world} process(es)), "
                  f"terms {', '.join(step.terms)}", file=sys.stderr)
        return run_steps(step, cfg, make_transform(cfg), d, out, max_steps, resume, ["backbone.pth"])
    finally:
        distributed.shutdown(d)
