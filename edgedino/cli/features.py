"""`edgedino features`: the classic DINO picture, patch features' first three PCA components as RGB."""

from __future__ import annotations

from edgedino.cli.common import add_command, add_model_args, load_model
from edgedino.errors import EdgeDinoError
from edgedino.runtime.preprocess import check_size, fit_size, parse_imgsz, preprocess, read_image


def register(sub) -> None:
    p = add_command(
        sub, "features", help="PCA picture of an image's patch features",
        description="Run the backbone on one image and write the image beside the first three principal "
                    "components of its patch features, shown as RGB. With --imgsz N the image keeps its aspect "
                    "ratio (short side N, each side rounded to a multiple of the stride); with HxW it is resized "
                    "to exactly that. Sizes that are not multiples of the stride are an error, never a crop.",
        examples="""
            edgedino features edgedino/assets/butterfly.jpg --out pca.png
            edgedino features photo.jpg --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --imgsz 672
            edgedino features photo.jpg --weights ./dinov3-convnext-tiny-hf/ --imgsz 448x640 --out pca.png
        """,
    )
    p.add_argument("image", help="image file (any format OpenCV reads)")
    add_model_args(p)
    p.add_argument("--imgsz", default="448", help="short side N (aspect kept) or exact HxW (default 448)")
    p.add_argument("--out", default="pca.png", help="output picture (default pca.png)")
    p.set_defaults(run=run)


def run(args) -> int:
    import cv2
    import torch

    from edgedino.atomic import atomic_path, check_output
    from edgedino.viz import pca_rgb, side_by_side

    out = check_output(args.out, inputs=[args.image, args.weights])
    rgb = read_image(args.image)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        raise EdgeDinoError(f"--out {out}: use an image file name (.png, .jpg, .webp, .bmp)")
    model = load_model(args)
    h, w = parse_imgsz(args.imgsz)
    if "x" in str(args.imgsz) or "," in str(args.imgsz):
        size = check_size((h, w), model.stride)
    else:
        size = fit_size(rgb.shape[:2], check_size((h, h), model.stride)[0], model.stride)
    x = torch.from_numpy(preprocess(rgb, size))
    with torch.no_grad():
        tokens = model.forward_features(x)["patch_tokens"][0].numpy()
    shown = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    picture = side_by_side(shown, pca_rgb(tokens))
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp.with_suffix(out.suffix)), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise EdgeDinoError(f"could not write {out}")
        tmp.with_suffix(out.suffix).rename(tmp)
    print(f"wrote {out}: {args.image} at {size[0]}x{size[1]} -> {tokens.shape[0]}x{tokens.shape[1]} patches "
          f"of {tokens.shape[2]} dims, {model.cfg.name}")
    return 0
