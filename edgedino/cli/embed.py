"""`edgedino embed`: features out, for people who build on them: the cls and patch tokens (or pooled vectors) of
every image in a folder or of frames spread over a video, from a checkpoint or any exported artifact, as one .npz
(or a Parquet table, with pyarrow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedino.cli.common import add_command, is_model_file
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag


def register(sub) -> None:
    p = add_command(
        sub, "embed", help="cls and patch tokens (or pooled vectors) of a folder or video, as .npz or Parquet",
        description="Run a model (checkpoint or exported artifact) on every image of a folder (recursive, in name "
                    "order) or on frames spread evenly over a video, and write one .npz: names (the image paths, "
                    "or frame numbers), cls (N, D) and patch_tokens (N, h, w, D); with --pooled, cls and "
                    "patch_mean (N, D), the mean patch token, instead of the grid. A --save ending in .parquet "
                    "writes the same arrays as a Parquet table (needs pyarrow): one row per image, each array a "
                    "fixed-size float32 list column, its per-row shape in the schema metadata under "
                    "'edgedino.shapes'. A non-finite value is an error.",
        examples="""
            edgedino embed photos/ --model exports/vits16_224_int8.xml --save feats.npz
            edgedino embed clip.mp4 --model dinov3_vits16_pretrain_lvd1689m-08c60483.pth --limit 200 --pooled
            edgedino embed photos/ --model exports/vits16_224_int8.xml --pooled --save feats.parquet
            python -c "import numpy as np; f = np.load('feats.npz'); print(f['names'][:3], f['cls'].shape)"
        """,
    )
    p.add_argument("input", help="an image folder or a video")
    add_flag(p, "--model", "here a file: an exported artifact, or a checkpoint (needs PyTorch)", required=True)
    add_flag(p, "--short-side", "for models that take any size (default 224; an artifact of fixed size: its own)",
             type=int)
    p.add_argument("--pooled", action="store_true", help="write cls and the mean patch token, not the patch grid")
    p.add_argument("--limit", type=int, default=1000, help="at most this many images or video frames (default 1000)")
    add_flag(p, "--threads", "default: the runtime's choice", type=int)
    add_flag(p, "--save", "the .npz, or a .parquet (needs pyarrow) (default embeddings.npz)",
             default="embeddings.npz")
    p.set_defaults(run=run)


def read_inputs(source: Path, limit: int) -> tuple[list[str], list[np.ndarray]]:
    """(names, RGB frames): a folder's images by relative path, or a video's frames spread evenly over it."""
    from edgedino.runtime.frames import IMAGE_SUFFIXES, read_frames
    from edgedino.runtime.preprocess import read_image

    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        if not files:
            raise EdgeDinoError(f"{source} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [str(p.relative_to(source)) for p in files], [read_image(p) for p in files]
    if not source.is_file():
        raise EdgeDinoError(f"input not found: {source} (give an image folder or a video)")
    frames = read_frames(source, limit)
    return [f"frame {i}" for i in range(len(frames))], frames


def run(args) -> int:
    from edgedino import embeddings_file
    from edgedino.atomic import check_output
    from edgedino.progress import ProgressLine
    from edgedino.runtime import load

    if not is_model_file(args.model):
        raise EdgeDinoError(f"embed needs a model file, not the preset {args.model!r}: an exported artifact or a "
                            "checkpoint")
    if args.limit < 1:
        raise EdgeDinoError("--limit must be at least 1")
    check_output(args.save, inputs=[args.input, args.model])
    if embeddings_file.is_parquet(args.save):
        embeddings_file.require_pyarrow(args.save)
    runtime = load(args.model, args.threads)
    names, frames = read_inputs(Path(args.input), args.limit)
    cls, patches, bar = [], [], ProgressLine(len(frames))
    for i, frame in enumerate(frames):
        f = runtime.features(frame, args.short_side)
        cls.append(f.cls[0])
        patches.append(f.patch_tokens[0].mean((0, 1)) if args.pooled else f.patch_tokens[0])
        bar.update(i + 1)
    if not args.pooled and len({p.shape for p in patches}) > 1:
        raise EdgeDinoError("the images have different patch grids (their aspect ratios differ): use --pooled, or a "
                            "fixed-size artifact")
    arrays = {"names": np.array(names), "cls": np.stack(cls),
              ("patch_mean" if args.pooled else "patch_tokens"): np.stack(patches)}
    if not all(np.isfinite(v).all() for k, v in arrays.items() if k != "names"):
        raise EdgeDinoError(f"{runtime.path.name} gave non-finite values (NaN or inf): nothing written")
    embeddings_file.write(args.save, arrays)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if k != "names")
    print(f"wrote {args.save}: {len(names)} {'images' if Path(args.input).is_dir() else 'frames'}, {shapes}")
    return 0
