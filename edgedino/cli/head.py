"""`edgedino head`: train a classification or segmentation head on a frozen backbone; make sample datasets."""

from __future__ import annotations

import sys
from pathlib import Path

from edgedino.cli.common import add_command, add_model_args, load_model
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag
from edgedino.runtime.preprocess import check_size, parse_imgsz


def register(sub) -> None:
    p = add_command(
        sub, "head", help="train a classification or segmentation head on a frozen backbone",
        description="Heads turn backbone features into answers. 'train' caches the backbone's features for a "
                    "labelled folder, trains a linear or MLP head on them, evaluates it on a held-out split "
                    "(accuracy and a confusion matrix, or mIoU and overlays) and writes a head file that records "
                    "the backbone (preset, weights SHA-256), input size, task and classes. "
                    "'edgedino export --head head.pth' then makes backbone + head one artifact.\n\n"
                    "classify data: DIR/<class>/*.jpg; segment data: DIR/images/*.jpg, DIR/masks/*.png (class "
                    "index per pixel, 255 unlabelled), optional DIR/classes.txt; DIR/train + DIR/val for a fixed "
                    "split. 'samples' writes small datasets of both kinds made from real images.",
        examples="""
            edgedino head samples --task segment --out data/shapes
            edgedino head train --task segment --data data/shapes --model vits16 --imgsz 224 --save seg.pth
            edgedino head train --task classify --data flowers/ --weights dinov3_vits16.pth \\
                --head-type mlp --save flowers.pth
            edgedino export --head seg.pth --target onnx,tflite --precision fp32,int8
        """,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = actions.add_parser("train", help="train and evaluate a head, write the head file")
    add_flag(t, "--task", required=True, choices=("classify", "segment"))
    add_flag(t, "--data", "a labelled folder (see edgedino head --help)", required=True)
    add_model_args(t)
    add_flag(t, "--head-type", "linear (default) or mlp", old=("--head",), default="linear", choices=("linear", "mlp"))
    t.add_argument("--hidden", type=int, default=256, help="MLP hidden width (default 256)")
    add_flag(t, "--imgsz", "N is N x N; a multiple of the stride (default 224)", default="224")
    t.add_argument("--val", type=float, default=0.2, help="held-out fraction without train/ and val/ (default 0.2)")
    t.add_argument("--steps", type=int, default=1500, help="optimiser steps (default 1500)")
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    t.add_argument("--cache", help="feature cache folder (default: none, features computed every run)")
    t.add_argument("--report", help="folder for the pictures (default: <head file stem>_eval/ beside it)")
    add_flag(t, "--save", "the head file (default head.pth)", old=("--out",), default="head.pth")
    t.set_defaults(run=run_train)
    s = actions.add_parser("samples", help="write a small labelled dataset made from real images")
    add_flag(s, "--task", required=True, choices=("classify", "segment"))
    add_flag(s, "--source", "classify: a sheet of 20x20 digits (default: a piece of OpenCV's "
                                    "digits.png shipped with edgedino); "
                                    "segment: a folder of photos (default: the photos shipped with edgedino)")
    s.add_argument("--textures", default="baboon,fruits", help="segment: the photos (file stems) cut into shapes "
                                                                "and pasted on the others; one class each "
                                                                "(default baboon,fruits)")
    s.add_argument("--size", type=int, default=160, help="segment: image side in pixels (default 160)")
    s.add_argument("--count", type=int, help="segment: images to make (default 120); classify: images per class "
                                             "(default: all on the sheet)")
    add_flag(s, "--out", "the dataset's, created", required=True)
    s.set_defaults(run=run_samples)


def run_train(args) -> int:
    from edgedino.heads import FitConfig, TrainConfig, fit_head

    if args.steps < 1 or args.hidden < 1:
        raise EdgeDinoError("--steps and --hidden must be at least 1")
    model = load_model(args)
    size = check_size(parse_imgsz(args.imgsz), model.stride)
    cfg = FitConfig(args.task, Path(args.data), Path(args.save), args.head_type, args.hidden, size, args.val,
                    Path(args.cache) if args.cache else None, Path(args.report) if args.report else None,
                    TrainConfig(steps=args.steps, lr=args.lr))
    result = fit_head(cfg, model, log=lambda line: print(line, file=sys.stderr, flush=True))
    print_summary(result)
    return 0


def print_summary(result) -> None:
    ev = result.evaluation
    print(f"\n{ev.task} head on {ev.images} held-out images ({result.train_images} trained on): "
          f"{ev.metric} {ev.score:.3f}, chance {ev.chance:.3f}")
    label = "recall" if ev.task == "classify" else "IoU"
    width = max(len(c) for c in (*ev.classes, "class"))
    print(f"  {'class'.ljust(width)}  {label}")
    for name, value in zip(ev.classes, ev.per_class, strict=True):
        print(f"  {name.ljust(width)}  {value:.3f}")
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    print(f"wrote {result.head_path} ({secs}); pictures: {result.pictures[0].parent}/ ({len(result.pictures)} PNG)")


def run_samples(args) -> int:
    from edgedino.heads import samples
    from edgedino.runtime.frames import IMAGE_SUFFIXES, sample_images

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise EdgeDinoError(f"--out {out} exists and is not empty")
    if args.task == "classify":
        sheet = Path(args.source) if args.source else Path(__file__).resolve().parents[1] / "assets" / "digits.png"
        if not sheet.is_file():
            raise EdgeDinoError(f"digits sheet not found: {sheet} "
                                 "(pass --source, e.g. OpenCV's samples/data/digits.png)")
        samples.digits(sheet, out, args.count)
    else:
        photos = (sorted(p for p in Path(args.source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                  if args.source else sample_images())
        names = [n.strip() for n in args.textures.split(",") if n.strip()]
        textures = [next((p for p in photos if p.stem == n), None) for n in names]
        if None in textures or len(photos) <= len(textures):
            raise EdgeDinoError(f"--textures {args.textures}: each must name a photo (file stem) of "
                                f"{args.source or 'the shipped samples'}, and at least one other photo is needed "
                                f"as a background (photos: {', '.join(p.stem for p in photos)})")
        samples.composites([p for p in photos if p not in textures], textures, out, args.count or 120, args.size)
    print(f"wrote {args.task} samples to {out}")
    return 0
