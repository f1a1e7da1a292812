"""`edgedino distill`: small students that reproduce a large teacher on your images (one process; torchrun for more)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgedino.cli.common import add_command
from edgedino.cli.pretrain import add_run_flags, split_data
from edgedino.flags import add_flag


def register(sub) -> None:
    p = add_command(
        sub, "distill", help="distil a frozen teacher into one or more small students (ViT-S/16, ConvNeXt-T, ...)",
        description="Train students from scratch on a frozen teacher's outputs for your images and video frames. "
                    "A teacher training checkpoint with DINO/iBOT heads (e.g. from `edgedino pretrain`) gives head "
                    "targets (Sinkhorn-centred prototype scores for the students' DINO + iBOT + KoLeo losses); a "
                    "plain backbone (a released DINOv3 .pth, an HF folder) gives feature targets (CLS and patch "
                    "tokens, cosine + smooth-L1 through a learned projection, teacher grid aligned to each "
                    "student's, + KoLeo). All students share one teacher pass per batch. --out gets checkpoint.pth, "
                    "metrics.jsonl and <student>.pth per student (its EMA backbone, for `edgedino export` and "
                    "load_backbone as it is). distill.teacher_scale=2 shows the teacher the same views at 2x.",
        examples="""
            edgedino distill --teacher-weights dinov3_vitl16.pth --student vits16 --student convnext_tiny \\
                --data photos/ clip.mp4:stride=5 --out runs/d
            edgedino distill --preset tiny-cpu --teacher-weights runs/tiny/checkpoint.pth --student vit_test \\
                --data photos/ --out runs/d --max-steps 100
            edgedino distill --teacher-weights vitb.pth --data photos/ --out runs/d distill.teacher_scale=2
            edgedino distill --teacher-weights vitb.pth --data photos/ --out runs/d --resume
            torchrun --nproc_per_node 8 -m edgedino.train distill --teacher-weights vitl.pth --student vits16 \\
                --data /data --out runs/d
        """,
    )
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `edgedino distill` and `python -m edgedino.train distill` (one definition for both)."""
    src = p.add_mutually_exclusive_group()
    add_flag(src, "--preset", "distill (full size, default), tiny-cpu or teacher2x", default="distill")
    add_flag(src, "--config", "it may name `base: distill.yaml`")
    p.add_argument("--teacher-weights", help="the teacher: official .pth, HF folder, edgedino file, or a training "
                   "checkpoint (with heads: head targets); random init when omitted (smoke tests only)")
    p.add_argument("--teacher", help="teacher preset (vitl16, vitb16, ...); read off --teacher-weights when omitted")
    p.add_argument("--student", action="append", metavar="PRESET",
                   help="a student preset, repeatable (vits16, convnext_tiny, ...); default: vits16")
    add_run_flags(p, "checkpoint.pth, metrics.jsonl, <student>.pth", "distill.teacher_scale=2")


def config_from_args(args):
    """Preset or file, then the key=value overrides, then the flags (teacher, students, data)."""
    from edgedino.train.distill_config import load_config, preset_path

    overrides, sources = split_data(args)
    cfg = load_config(Path(args.config) if args.config else preset_path(args.preset), overrides)
    cfg.data.sources = sources
    if args.teacher_weights is not None:
        cfg.distill.teacher_weights = args.teacher_weights
    if args.teacher is not None:
        cfg.distill.teacher = args.teacher
    if args.student:
        cfg.distill.students = list(args.student)
    return cfg


def run(args) -> int:
    from edgedino.train.distill import distill, summary

    result = distill(config_from_args(args), args.out, args.max_steps, args.resume)
    print(summary(result))
    return 0

