"""One distillation run from a config: teacher, students, data, the shared loop, one backbone file per student."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from edgedino.errors import ConfigError
from edgedino.moved import forwarding
from edgedino.train import distributed
from edgedino.train.distill_config import DistillConfig, check, config_from_dict
from edgedino.train.loop import Result
from edgedino.train.run import check_config, check_resume, check_sources, make_transform, run_steps
from edgedino.train.rundir import check_out


def summary(result: Result) -> str:
    """The table printed at the end of a run: every student's last loss terms and its backbone file."""
    f = result.final
    rows = [("steps done", str(result.steps_done)), ("wall time", f"{result.seconds:.0f} s")]
    rows += [(k, f"{v:.4f}") for k, v in f.items() if k == "loss" or "." in k]
    rows += [("images/s (last step)", f"{f['images_per_s']:.1f}")] if f else []
    rows += [("checkpoint", str(result.checkpoint))] + [("student", str(p)) for p in result.exported]
    return "\n".join(f"{k:<22} {v}" for k, v in rows)


def teacher_size(cfg: DistillConfig, stride: int) -> int:
    """Side of the teacher's global crops; a ConfigError when the teacher cannot take it."""
    g = cfg.crops.get("global_size", 224)
    side = round(g * cfg.distill.teacher_scale)
    if side % stride:
        raise ConfigError(f"distill.teacher_scale={cfg.distill.teacher_scale} gives teacher crops of {side} px, "
                          f"not a multiple of the teacher's stride {stride}")
    return side


def make_distill_transform(cfg: DistillConfig, kind: str, teacher_side: int):
    """Multi-crop with the teacher's larger crops when teacher_scale != 1; no local crops for feature targets."""
    from edgedino.train.augment import MultiCrop

    crops = make_transform(cfg).cfg
    scale = cfg.distill.teacher_scale if teacher_side != crops.global_size else 0.0
    return MultiCrop(replace(crops, hr_scale=scale, n_local=crops.n_local if kind == "heads" else 0))


def check_students(cfg: DistillConfig, step) -> None:
    """Every student takes the crop sizes (a side that is not a multiple of its stride is named)."""
    g = cfg.crops.get("global_size", 224)
    for net in step.students.nets.values():
        net.backbone.grid(g, g)  # an InputSizeError naming the stride when the crop does not fit
        if cfg.crops.get("n_local", 8) and step.kind == "heads":
            net.backbone.grid(cfg.crops.get("local_size", 96), cfg.crops.get("local_size", 96))


def place_teacher(teacher, cfg: DistillConfig, d) -> None:
    """The frozen teacher takes no gradients; it is sharded over the processes under FSDP (bf16 parameters on
    CUDA), else held in bf16 when the run computes in bf16, so a ViT-L/H+ teacher fits beside a small student."""
    import torch

    from edgedino.train import parallel
    from edgedino.train.loop import uses_bf16

    if cfg.run.parallel == "fsdp" and d.active:
        parallel.prepare(teacher, d, cfg.run, trained=False)
    elif uses_bf16(cfg.run.amp, d.device):
        teacher.to(torch.bfloat16)


def distill(cfg: DistillConfig, out: str | Path, max_steps: int | None = None, resume: bool = False) -> Result:
    """Train (or continue) the run in `out`; rank 0 writes checkpoints, metrics.jsonl and <student>.pth files."""
    from edgedino.train.distill_step import DistillStep
    from edgedino.train.teacher import load_teacher

    d = distributed.init()
    try:
        check(cfg)
        check_config(cfg, d.world)
        check_sources(cfg)
        out = Path(out)
        check_out(out)
        if resume:
            check_resume(cfg, out, config_from_dict)
        dc = cfg.distill
        teacher, kind = load_teacher(dc.teacher_weights, dc.teacher, dc.targets, d.device, cfg.run.seed)
        place_teacher(teacher, cfg, d)
        side = teacher_size(cfg, teacher.backbone.stride)
        step = DistillStep(cfg, teacher, kind, d)
        check_students(cfg, step)
        transform = make_distill_transform(cfg, kind, side)
        if d.main:
            print(f"distilling {teacher.backbone.cfg.name} ({teacher.backbone.cfg.describe()}, {side} px) into "
                  f"{', '.join(dc.students)} ({transform.cfg.global_size} px) on {', '.join(cfg.data.sources)}: "
                  f"{cfg.run.total_steps} steps of {cfg.run.batch} images ({d.world} process(es))", file=sys.stderr)
        return run_steps(step, cfg, transform, d, out, max_steps, resume, [f"{n}.pth" for n in dc.students])
    finally:
        distributed.shutdown(d)



# the names of the old edgedino.train.distill (the step, now distill_step): deprecated
__getattr__ = forwarding("edgedino.train.distill", "edgedino.train.distill_step")
