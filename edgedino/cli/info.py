"""`edgedino info`: what a checkpoint or an exported artifact is, how big, how costly, what it outputs."""

from __future__ import annotations

from pathlib import Path

from edgedino.cli.common import add_command, add_model_args, load_model
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag
from edgedino.license import weights_notice
from edgedino.runtime.preprocess import IMAGENET_MEAN, IMAGENET_STD, check_size, parse_imgsz


def register(sub) -> None:
    p = add_command(
        sub, "info", help="describe a model: architecture, parameters, GMACs, outputs",
        description="Detect the architecture of a checkpoint (or describe a preset) and report its parameters, "
                    "multiply-accumulates at an input size, and the named outputs every edgedino model has. "
                    "--weights takes a file or folder, a Hugging Face Hub id or a download link (see `edgedino "
                    "models`). Given an exported artifact (.onnx, .xml, .tflite, .mlpackage), print its metadata.",
        examples="""
            edgedino info --model vits16
            edgedino info --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --imgsz 448
            edgedino info --weights ./dinov3-convnext-tiny-hf/ --imgsz 480x640
            edgedino info --weights facebook/dinov3-convnext-tiny-pretrain-lvd1689m
            edgedino info --weights exports/vits16_224_int8.xml
        """,
    )
    add_model_args(p)
    add_flag(p, "--imgsz", "N is N x N; multiples of the stride (default 224)", default="224")
    p.set_defaults(run=run)


def run(args) -> int:
    from edgedino.runtime.base import is_artifact

    if args.weights and is_artifact(args.weights):
        return _artifact(Path(args.weights))
    model = load_model(args)
    from edgedino.models.flops import count_macs

    cfg = model.cfg
    size = check_size(parse_imgsz(args.imgsz), model.stride)
    params = sum(p.numel() for p in model.parameters())
    source = model.source
    weights = (f"none (random init, seed {source.seed})" if source.path is None
               else f"{source.given or source.path} ({source.layout} layout)")
    how = "" if args.model else (" (inferred from the weights' shapes)" if source.path else " (default)")
    rows = [
        ("model", f"{cfg.name}{how}"),
        ("architecture", cfg.describe()),
        ("weights", weights),
        *([("checked", f"SHA-256 starts with {source.hash_checked}, as the release's file name says")]
          if source.hash_checked else []),
        *([("local copy", source.path)] if source.given else []),
        ("parameters", f"{params / 1e6:.2f} M"),
        ("input", f"1x{cfg.in_chans}x{size[0]}x{size[1]} float32 RGB, mean {IMAGENET_MEAN}, std {IMAGENET_STD}"),
        ("GMACs", f"{count_macs(model, size) / 1e9:.2f} at {size[0]}x{size[1]}"),
    ]
    rows += [(f"output {k}", str(v)) for k, v in model.output_shapes(*size).items()]
    rows.append(("license", weights_notice(source.path)))
    _print_rows(rows)
    return 0


def _artifact(path: Path) -> int:
    """An exported artifact's metadata: what it was exported from, its input, outputs and tools."""
    from edgedino.export.target import artifact_runtimes

    target, runtimes, meta = artifact_runtimes(path)
    if not meta.get("model"):
        raise EdgeDinoError(f"{path.name} has no edgedino metadata: was it exported by edgedino?")
    weights = (f"{meta['weights']} (SHA-256 {meta['weights_sha256'][:12]}…)" if meta.get("weights")
               else f"random (seed {meta.get('random_seed', 'not recorded')})")
    inp = meta["input"]
    rows = [
        ("artifact", f"{path} ({target.name}; runs here in {', '.join(name for name, _ in runtimes)})"),
        ("model", meta["model"]),
        ("architecture", meta.get("architecture", "?")),
        ("weights", weights),
        ("precision", meta["precision"]),
        ("input", f"{inp['name']} {'x'.join(map(str, inp['shape']))} {inp['dtype']} {inp['layout']} "
                  f"{inp['color']}, {inp['range']}"),
        ("mean / std", f"{tuple(round(v, 4) for v in meta['mean'])} / {tuple(round(v, 4) for v in meta['std'])}"),
        *((f"output {k}", str(tuple(v))) for k, v in meta["outputs"].items()),
        ("versions", ", ".join(f"{k} {v}" for k, v in {**meta.get("versions", {}),
                                                        **meta.get("converter", {})}.items())),
        ("created", meta.get("created", "?")),
        ("license", meta.get("license", "?")),
    ]
    _print_rows(rows)
    return 0


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")

