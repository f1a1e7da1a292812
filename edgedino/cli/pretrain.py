"""`edgedino pretrain`: the DINOv3 self-supervised recipe on your images (one process; torchrun for more)."""

from __future__ import annotations

import re
from pathlib import Path

from edgedino.argtypes import at_least
from edgedino.cli.common import add_command
from edgedino.flags import add_flag

OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def add_run_flags(p, outputs: str, example: str) -> None:
    """The flags every training run has (pretrain and distill): data, run folder, step limit, resume, overrides."""
    add_flag(p, "--data", "image folders (recursive), videos (clip.mp4:stride=10), list files; DIR:weight=2 mixes",
             nargs="+", required=True, metavar="SRC")
    add_flag(p, "--out", f"the run's: {outputs}", required=True)
    add_flag(p, "--max-steps", "the schedules stay the full run's (default: run.total_steps)", type=at_least(1))
    add_flag(p, "--resume", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {example}")


def split_data(args) -> tuple[list[str], list[str]]:
    """(overrides, data sources): `--data a b optim.lr=1e-3` hands the override to --data, and a bare dotted
    key=value is an override, not a path."""
    return ([d for d in args.data if OVERRIDE.match(d)] + list(args.overrides),
            [d for d in args.data if not OVERRIDE.match(d)])


def register(sub) -> None:
    p = add_command(
        sub, "pretrain", help="self-supervised DINOv3 pretraining on image folders and videos",
        description="Train a backbone with the DINOv3 recipe (multi-crop DINO + iBOT + KoLeo, EMA teacher, Gram "
                    "anchoring from a refreshed Gram teacher) on unlabelled images and video frames. --out gets "
                    "checkpoint.pth (atomic, every run.checkpoint_every steps), metrics.jsonl (a line per step) and "
                    "backbone.pth (the teacher backbone, for `edgedino export` and load_backbone as it is). "
                    "--max-steps stops early with the full run's schedules; --resume continues exactly. For several "
                    "processes or machines run the same flags through `torchrun ... -m edgedino.train`; "
                    "run.parallel=fsdp shards parameters, gradients and optimizer state (FSDP2) and saves sharded "
                    "checkpoints (checkpoint.dcp). The presets follow the official DINOv3 recipe: docs/recipe.md.",
        examples="""
            edgedino pretrain --preset tiny-cpu --data ../shared/data ../shared/data/vtest.avi:stride=5 --out runs/tiny
            edgedino pretrain --preset tiny-cpu --data photos/ --out runs/tiny --max-steps 100 run.batch=16
            edgedino pretrain --preset tiny-cpu --data photos/ --out runs/tiny --resume
            torchrun --nproc_per_node 8 -m edgedino.train --preset vits16 --data /data/images --out runs/vits16
            torchrun --nproc_per_node 8 -m edgedino.train --preset gram_anchor --data /data/images \
                --out runs/vits16_gram continue_from=runs/vits16
            torchrun --nproc_per_node 8 -m edgedino.train --preset high_res_adapt --data /data/images \
                --out runs/vits16_hr init=runs/vits16_gram/checkpoint.pth
            torchrun --nproc_per_node 8 -m edgedino.train --preset vits16 --data /data/images --out runs/big \
                model.name=vitl16 run.parallel=fsdp run.activation_checkpointing=true
        """,
    )
    add_arguments(p)
    p.set_defaults(run=run)


def add_arguments(p) -> None:
    """The flags of `edgedino pretrain` and `python -m edgedino.train` (one definition for both)."""
    src = p.add_mutually_exclusive_group(required=True)
    add_flag(src, "--preset", "tiny-cpu, demo-dense, vits16 or convnext_tiny (a stage: pretrain, "
                     "gram_anchor, high_res_adapt)")
    add_flag(src, "--config", "it may name a stage as `base:`")
    add_run_flags(p, "checkpoint.pth, metrics.jsonl, backbone.pth", "optim.lr=1e-3")


def config_from_args(args):
    """The run's config: preset or file, then the key=value overrides, then --data."""
    from edgedino.train.config import load_config, preset_path

    overrides, sources = split_data(args)
    cfg = load_config(preset_path(args.preset) if args.preset else Path(args.config), overrides)
    cfg.data.sources = sources
    return cfg


def run(args) -> int:
    from edgedino.train.pretrain import pretrain, summary

    result = pretrain(config_from_args(args), args.out, args.max_steps, args.resume)
    print(summary(result))
    return 0
