"""`edgedino export`: artifacts for every target and precision, each verified against PyTorch."""

from __future__ import annotations

import json
import sys

from edgedino.atomic import check_output
from edgedino.cli.common import add_command, add_model_args
from edgedino.errors import EdgeDinoError
from edgedino.export.spec import INPUT_FORMATS, PRECISION_HELP, PRECISIONS, THRESHOLDS
from edgedino.runtime.formats import DEFAULT_TARGET, target_names

STATUS = {"ok": "✅", "verify-failed": "❎", "export-failed": "❌", "unverified": "➖"}
DEFAULTS = {"target": [DEFAULT_TARGET], "precision": ["fp32"], "imgsz": "224", "calib": None, "calib_size": 32,
            "input_format": "float32", "options": {}, "model": None}


def register(sub) -> None:
    precisions = "\n".join(f"  {p:<13} {PRECISION_HELP[p]} (patch cosine >= {THRESHOLDS[p]})" for p in PRECISIONS)
    p = add_command(
        sub, "export", help="export to ONNX, OpenVINO, Core ML, TFLite; verify each against PyTorch",
        description="Export a backbone to edge formats. Each artifact is run in its runtime on real images "
                    "and compared with PyTorch fp32 (cosine per output); a result below the precision's "
                    "threshold fails the command (the artifact is kept). Core ML cannot run on Linux: there its "
                    "packages run in edgedino's reference interpreter of the ML program (on macOS: "
                    "both).\n\nprecisions:\n" + precisions,
        examples="""
            edgedino export --target onnx --model vits16
            edgedino export --target all --precision fp32,int8 --calib my_images/ --out exports/
            edgedino export --target coreml --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --precision fp16
            edgedino export --recipe export/intel-cpu.yaml --calib street.mp4 --json export.json
            edgedino export --head seg.pth --target onnx,tflite --precision fp32,int8
        """,
    )
    p.add_argument("--target", help=f"{target_names()} or all; comma-separated for several")
    add_model_args(p)
    p.add_argument("--head", help="a head file from 'edgedino head train': backbone + head as one artifact with a "
                                  "'logits' output (classify (B, C); segment (B, h, w, C) at the patch grid), "
                                  "verified like the features; the backbone is the one the head was trained on, "
                                  "at its training size unless --imgsz or a recipe says otherwise")
    p.add_argument("--imgsz", help="input size N or HxW, a multiple of the stride (default 224)")
    p.add_argument("--precision", help=f"{', '.join(PRECISIONS)}; comma-separated for several (default fp32)")
    p.add_argument("--calib", help="image folder or video for int8 calibration and verification "
                                   "(default: the sample photos shipped with edgedino)")
    p.add_argument("--calib-size", type=int, help="calibration images to use (default 32)")
    p.add_argument("--input-format", choices=INPUT_FORMATS,
                   help="float32: NCHW normalised (default); uint8: NHWC RGB 0-255 with normalisation inside")
    p.add_argument("--batch", type=int, default=1, help="static batch size of the artifacts (default 1)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch size (onnx only)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="target option, e.g. minimum_deployment_target=iOS18 for coreml")
    p.add_argument("--recipe", help="YAML recipe with the settings for a device (see export/); flags override it")
    p.add_argument("--out", default="exports", help="output directory (default exports/)")
    p.add_argument("--no-verify", action="store_true", help="skip running the artifacts against PyTorch")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.set_defaults(run=run)


def settings(args) -> dict:
    """Defaults, then the recipe, then the flags given on the command line."""
    from edgedino.export.recipe import load_recipe

    merged = dict(DEFAULTS)
    if args.recipe:
        merged.update(load_recipe(args.recipe))
    for key in ("target", "precision"):
        value = getattr(args, key)
        if value:
            merged[key] = [v.strip() for v in value.split(",") if v.strip()]
    for key in ("imgsz", "calib", "calib_size", "input_format", "model"):
        if getattr(args, key) is not None:
            merged[key] = getattr(args, key)
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise EdgeDinoError(f"--option {item!r} is not KEY=VALUE")
        merged["options"] = {**merged["options"], key: value}
    return merged


def run(args) -> int:
    import warnings

    from edgedino.checkpoints import RandomWeightsWarning
    from edgedino.demo import DEMO_NAME, DEMO_NOTICE
    from edgedino.export import export
    from edgedino.license import RANDOM_NOTICE

    if args.json:
        check_output(args.json, inputs=[args.weights, args.recipe, args.head, args.calib])
    s = settings(args)
    if args.head and args.imgsz is None and not args.recipe:
        from edgedino.heads import load_head

        s["imgsz"] = load_head(args.head).backbone.imgsz
    weights = args.weights
    if weights is None and s["model"] is None and not args.head:  # nothing named: the shipped demo model
        weights = DEMO_NAME
        print(f"note: {DEMO_NOTICE}", file=sys.stderr)
    elif weights is None and not args.head:
        print(f"note: {RANDOM_NOTICE}", file=sys.stderr)
        warnings.simplefilter("ignore", RandomWeightsWarning)
    result = export(targets=s["target"], model=s["model"], weights=weights, precisions=s["precision"],
                    imgsz=s["imgsz"], calib=s["calib"], calib_size=s["calib_size"], out=args.out,
                    input_format=s["input_format"], batch=args.batch, dynamic=args.dynamic,
                    verify_outputs=not args.no_verify,
                    options=s["options"], log=lambda line: print(line, file=sys.stderr, flush=True), head=args.head)
    print_table(result)
    if args.json:
        from edgedino.atomic import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if result.ok else 1


def print_table(result) -> None:
    h, w = result.imgsz
    print(f"\n{result.model} at {h}x{w}, {result.input_format} input, parity on {result.verify_images} real images")
    head = any(p["output"] == "logits" for a in result.artifacts for p in a.parity)
    rows = [("target", "precision", "file", "MB", "cls cos", "patch cos (min)", *(("logits cos",) if head else ()),
             "export s", "")]
    for a in result.artifacts:
        par = {p["output"]: p for p in a.parity}
        logits = (f"{par['logits']['cosine_mean']:.5f}" if "logits" in par else "-",) if head else ()
        cls = f"{par['cls']['cosine_mean']:.5f}" if "cls" in par else "-"
        patch = (f"{par['patch_tokens']['cosine_mean']:.5f} ({par['patch_tokens']['cosine_min']:.4f})"
                 if "patch_tokens" in par else "-")
        name = a.path.rsplit("/", 1)[-1] if a.path else "-"
        rows.append((a.target, a.precision, name, f"{a.size_mb:.1f}", cls, patch, *logits, f"{a.export_s:.1f}",
                     STATUS[a.status]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    print("✅ verified in its runtime · ❎ below its parity threshold (kept) · ❌ export failed · "
          "➖ no runtime here: static checks only")
    from edgedino.export.coreml.numeric_check import INTERPRETER

    interpreted = sorted({a.target for a in result.artifacts if any(p.get("runtime") == INTERPRETER for p in a.parity)})
    if interpreted:
        print(f"{', '.join(interpreted)} parity on this machine: {INTERPRETER}")
    for a in result.artifacts:
        if a.message:
            print(f"{STATUS[a.status]} {a.target} {a.precision}: {a.message}")
        if a.status == "unverified":
            for check in a.checks:
                print(f"   {check}")
