"""`edgedino features`: the classic DINO picture, patch features' first three PCA components as RGB."""

from __future__ import annotations

from pathlib import Path

from edgedino.caption import RANDOM_WEIGHTS, TextStyle, corner, draw_labels
from edgedino.cli.common import add_command, add_model_args, load_model
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag
from edgedino.runtime.preprocess import check_size, fit_size, parse_imgsz, preprocess, read_image


def register(sub) -> None:
    p = add_command(
        sub, "features", help="PCA picture of an image's patch features",
        description="Run the backbone on one image and write the image beside the first three principal "
                    "components of its patch features, shown as RGB. With --imgsz N the image keeps its aspect "
                    "ratio (short side N, each side rounded to a multiple of the stride); with HxW it is resized "
                    "to exactly that. Sizes that are not multiples of the stride are an error, never a crop.",
        examples="""
            edgedino features edgedino/assets/butterfly.jpg --save pca.png
            edgedino features photo.jpg --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --imgsz 672
            edgedino features photo.jpg --weights ./dinov3-convnext-tiny-hf/ --imgsz 448x640 --save pca.png
        """,
    )
    p.add_argument("image", help="image file (any format OpenCV reads)")
    add_model_args(p)
    add_flag(p, "--imgsz", "N is the short side (aspect kept), HxW exact (default 448; an exported artifact: the "
             "size it was exported for)")
    add_flag(p, "--save", "the picture (default pca.png)", old=("--out",), default="pca.png")
    p.set_defaults(run=run)


def run(args) -> int:
    import cv2

    from edgedino.atomic import atomic_path, check_output
    from edgedino.viz import pca_rgb, side_by_side

    out = check_output(args.save, inputs=[args.image, args.weights])
    rgb = read_image(args.image)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        raise EdgeDinoError(f"--save {out}: use an image file name (.png, .jpg, .webp, .bmp)")
    size, tokens, name, random = _features(args, rgb)
    shown = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    picture = side_by_side(shown, pca_rgb(tokens))
    if random:
        style = TextStyle.for_frame(picture.shape[:2])
        draw_labels(picture, [corner(RANDOM_WEIGHTS, style, picture.shape[:2], [])])
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp.with_suffix(out.suffix)), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise EdgeDinoError(f"could not write {out}")
        tmp.with_suffix(out.suffix).rename(tmp)
    print(f"wrote {out}: {args.image} at {size[0]}x{size[1]} -> {tokens.shape[0]}x{tokens.shape[1]} patches "
          f"of {tokens.shape[2]} dims, {name}")
    return 0


def _features(args, rgb) -> tuple[tuple[int, int], object, str, bool]:
    """(input size, patch tokens (h, w, D), what ran, whether its weights are random) from a backbone, or from an
    exported artifact's runtime."""
    from edgedino.runtime.base import is_artifact

    exact = "x" in str(args.imgsz) or "," in str(args.imgsz)
    if args.weights and is_artifact(args.weights):
        from edgedino.runtime import load

        runtime = load(args.weights)
        if exact:
            raise EdgeDinoError("--imgsz HxW resizes for a PyTorch model; an artifact runs at its own size (or, "
                                "exported with dynamic shapes, at --imgsz N short side)")
        f = runtime.features(rgb, short_side=parse_imgsz(args.imgsz)[0] if args.imgsz else None)
        return (f.input_hw, f.patch_tokens[0], f"{runtime.metadata.get('model', '?')} ({Path(args.weights).name})",
                runtime.random_weights)
    import torch

    model = load_model(args)
    h, w = parse_imgsz(args.imgsz or "448")
    if exact:
        size = check_size((h, w), model.stride)
    else:
        size = fit_size(rgb.shape[:2], check_size((h, h), model.stride)[0], model.stride)
    with torch.no_grad():
        tokens = model.forward_features(torch.from_numpy(preprocess(rgb, size)))["patch_tokens"][0].numpy()
    return size, tokens, model.cfg.name, getattr(model.source, "path", None) is None
