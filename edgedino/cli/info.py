"""`edgedino info`: what a checkpoint is, how big, how costly, what it outputs."""

from __future__ import annotations

from edgedino.cli.common import add_command, add_model_args, load_model
from edgedino.license import DINOV3_NOTICE
from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD, check_size, parse_imgsz


def register(sub) -> None:
    p = add_command(
        sub, "info", help="describe a model: architecture, parameters, GMACs, outputs",
        description="Detect the architecture of a checkpoint (or describe a preset) and report its parameters, "
                    "multiply-accumulates at an input size, and the named outputs every edgedino model has.",
        examples="""
            edgedino info --model vits16
            edgedino info --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --imgsz 448
            edgedino info --weights ./dinov3-convnext-tiny-hf/ --imgsz 480x640
        """,
    )
    add_model_args(p)
    p.add_argument("--imgsz", default="224", help="input size N or HxW, multiples of the stride (default 224)")
    p.set_defaults(run=run)


def run(args) -> int:
    model = load_model(args)
    from edgedino.models.flops import count_macs

    cfg = model.cfg
    size = check_size(parse_imgsz(args.imgsz), model.stride)
    params = sum(p.numel() for p in model.parameters())
    source = model.source
    weights = "none (random init)" if source.path is None else f"{source.path} ({source.layout} layout)"
    how = "" if args.model else (" (inferred from the weights' shapes)" if source.path else " (default)")
    rows = [
        ("model", f"{cfg.name}{how}"),
        ("architecture", cfg.describe()),
        ("weights", weights),
        ("parameters", f"{params / 1e6:.2f} M"),
        ("input", f"1x{cfg.in_chans}x{size[0]}x{size[1]} float32 RGB, mean {IMAGENET_MEAN}, std {IMAGENET_STD}"),
        ("GMACs", f"{count_macs(model, size) / 1e9:.2f} at {size[0]}x{size[1]}"),
    ]
    rows += [(f"output {k}", str(v)) for k, v in model.output_shapes(*size).items()]
    rows.append(("license", DINOV3_NOTICE))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
