"""`edgedino export`: artifacts for every target and precision, each verified against PyTorch."""

from __future__ import annotations

import sys

from edgedino.argtypes import at_least
from edgedino.atomic import check_output
from edgedino.cli.common import add_command, add_model_args
from edgedino.errors import EdgeDinoError
from edgedino.export.recipe import recipe_names
from edgedino.export.spec import GUARDED, INPUT_FORMATS, INT8_POLICIES, PRECISION_HELP, PRECISIONS, THRESHOLDS
from edgedino.flags import add_flag
from edgedino.runtime.formats import DEFAULT_TARGET, target_names

STATUS = {"ok": "✅", "verify-failed": "❎", "export-failed": "❌", "unverified": "➖"}
DEFAULTS = {"target": [DEFAULT_TARGET], "precision": ["fp32"], "imgsz": "224", "calib": None, "calib_size": 32,
            "input_format": "float32", "options": {}, "model": None, "verify_images": None, "int8_policy": "auto"}


def register(sub) -> None:
    precisions = "\n".join(f"  {p:<13} {PRECISION_HELP[p]} (cls and patch cosine >= {THRESHOLDS[p]})"
                           for p in PRECISIONS)
    policies = "\n".join(f"  {p:<13} {text}" for p, text in INT8_POLICIES.items())
    p = add_command(
        sub, "export", help="export to ONNX, OpenVINO, Core ML, TFLite; verify each against PyTorch",
        description="Export a backbone to edge formats. Each artifact is run in its runtime on real images "
                    "and compared with PyTorch fp32 (cosine per output); a result below the precision's "
                    "threshold fails the command (the artifact is kept). Core ML cannot run on Linux: there its "
                    "packages run in edgedino's reference interpreter of the ML program (on macOS: "
                    "both). Parity is measured on images calibration did not see (--verify-images).\n\n"
                    "int8 (and Core ML palettize4) first get SmoothQuant folded into the deploy form (exact in "
                    "float); --int8-policy then decides which layers stay float:\n" + policies +
                    "\n\nprecisions:\n" + precisions,
        examples="""
            edgedino export --target onnx --model vits16
            edgedino export --target all --precision fp32,int8 --calib my_images/ --out exports/
            edgedino export --target coreml --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth --precision fp16
            edgedino export --recipe intel-cpu --calib street.mp4 --json export.json
            edgedino export --head seg.pth --target onnx,tflite --precision fp32,int8
            edgedino export --target tflite --precision int8 --calib calib/ --verify-images held_out/
            edgedino export --target onnx --precision int8 --weights vits16.pth --int8-policy report
        """,
    )
    add_flag(p, "--target", f"{target_names()} or all; comma-separated for several")
    add_model_args(p)
    add_flag(p, "--head", "backbone + head as one artifact with a "
                                  "'logits' output (classify (B, C); segment (B, h, w, C) at the patch grid), "
                                  "verified like the features; the backbone is the one the head was trained on, "
                                  "at its training size unless --imgsz or a recipe says otherwise")
    add_flag(p, "--imgsz", "N is N x N; a multiple of the stride (default 224)")
    add_flag(p, "--precision", f"{', '.join(PRECISIONS)}; comma-separated for several (default fp32)")
    add_flag(p, "--calib", "default: the sample photos shipped with edgedino")
    p.add_argument("--verify-images", help="image folder or video the artifacts are checked on, 8 images; keep it "
                                           "apart from --calib (default: held-out photos shipped with edgedino, "
                                           "which the default calibration does not see)")
    p.add_argument("--int8-policy", choices=list(INT8_POLICIES),
                   help="which layers int8 / palettize4 keep in float: auto (default) the fewest most sensitive "
                        "ones that bring cls and patch parity to the threshold; strict none, and fail below it; "
                        "report none, and print each layer's sensitivity")
    p.add_argument("--calib-size", type=at_least(1), help="calibration images to use (default 32)")
    p.add_argument("--input-format", choices=INPUT_FORMATS,
                   help="float32: NCHW normalised (default); uint8: NHWC RGB 0-255 with normalisation inside")
    add_flag(p, "--batch", "static, of the artifacts (default 1)", type=int, default=1)
    p.add_argument("--dynamic", action="store_true", help="dynamic batch size (onnx only)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="target option, e.g. minimum_deployment_target=iOS18 for coreml")
    p.add_argument("--recipe", help=f"a device recipe: a shipped one by name ({', '.join(recipe_names())}) or a "
                   "YAML file; flags override it")
    add_flag(p, "--out", "default exports/", default="exports")
    p.add_argument("--no-verify", action="store_true", help="skip running the artifacts against PyTorch")
    add_flag(p, "--json")
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
            if not merged[key]:
                raise EdgeDinoError(f"--{key} {value!r} names no {key}")
    for key in ("imgsz", "calib", "calib_size", "input_format", "model", "verify_images", "int8_policy"):
        if getattr(args, key) is not None:
            merged[key] = getattr(args, key)
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EdgeDinoError(f"--option {item!r} is not KEY=VALUE")
        merged["options"] = {**merged["options"], key: value}
    unused = [k for k in ("calib", "calib_size", "int8_policy") if getattr(args, k) is not None]
    if unused and not set(merged["precision"]) & set(GUARDED):
        raise EdgeDinoError(f"--{unused[0].replace('_', '-')} is for the precisions that calibrate "
                            f"({', '.join(GUARDED)}), and --precision is {','.join(merged['precision'])}")
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
                    verify_outputs=not args.no_verify, options=s["options"],
                    log=lambda line: print(line, file=sys.stderr, flush=True), head=args.head,
                    verify_images=s["verify_images"], int8_policy=s["int8_policy"])
    print_table(result)
    if args.json:
        from edgedino.schemas import write_json

        write_json(args.json, "export", result.to_dict())
    return 0 if result.ok else 1


def print_table(result, export_times: bool = True) -> None:
    """The artifacts' table (with each one's export seconds when `export_times`: verify has none) and notes."""
    h, w = result.imgsz
    print(f"\n{result.model} at {h}x{w}, {result.input_format} input, parity on {result.verify_images} images: "
          f"{result.verify_set}")
    if result.calib_images:
        print(f"int8 calibrated on {result.calib_images} images: {result.calib_set}; int8 policy {result.int8_policy}")
    head = any(p["output"] == "logits" for a in result.artifacts for p in a.parity)
    guarded = any(a.precision in GUARDED for a in result.artifacts)
    rows = [("target", "precision", "file", "MB", "cls cos", "patch cos (min)", *(("logits cos",) if head else ()),
             *(("float layers",) if guarded else ()), *(("export s",) if export_times else ()), "")]
    for a in result.artifacts:
        par = {p["output"]: p for p in a.parity}
        logits = (f"{par['logits']['cosine_mean']:.5f}" if "logits" in par else "-",) if head else ()
        kept = (str(len(a.float_layers)) if a.precision in GUARDED else "-",) if guarded else ()
        cls = f"{par['cls']['cosine_mean']:.5f}" if "cls" in par else "-"
        patch = (f"{par['patch_tokens']['cosine_mean']:.5f} ({par['patch_tokens']['cosine_min']:.4f})"
                 if "patch_tokens" in par else "-")
        name = a.path.rsplit("/", 1)[-1] if a.path else "-"
        seconds = (f"{a.export_s:.1f}",) if export_times else ()
        rows.append((a.target, a.precision, name, f"{a.size_mb:.1f}", cls, patch, *logits, *kept, *seconds,
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
        if a.float_layers:
            tries = f" ({len(a.tries)} tries)" if len(a.tries) > 1 else ""
            print(f"{a.target} {a.precision} kept in float{tries}: {', '.join(a.float_layers)}")
        if a.message:
            print(f"{STATUS[a.status]} {a.target} {a.precision}: {a.message}")
        if a.status == "unverified":
            for check in a.checks:
                print(f"   {check}")
    if result.int8_policy == "report":
        print_sensitivity(result.sensitivity)


def print_sensitivity(sensitivity: dict[str, list[dict]]) -> None:
    """Each layer's parity when it alone is quantized (simulated on the verification images), most sensitive first."""
    for precision, table in sensitivity.items():
        print(f"\n{precision} sensitivity: cosine with PyTorch when only this layer is quantized (simulated)")
        print(f"{'layer':<28} {'input max/median':>16} {'cls cos':>9} {'patch cos':>9}")
        for s in table:
            print(f"{s['layer']:<28} {s['outlier_ratio']:>16.1f} {s['cls_cos']:>9.5f} {s['patch_cos']:>9.5f}")
