"""`edgedino benchmark`: every backend side by side, measured one after another in its own process; or
`edgedino benchmark tracking`: J&F and end-to-end FPS of video object tracking on DAVIS-format sequences."""

from __future__ import annotations

import sys

from edgedino.bench.peers import PEERS
from edgedino.bench.suite import BASELINES
from edgedino.cli.common import add_command
from edgedino.flags import add_flag
from edgedino.runtime.formats import target_names


def _list(text: str | None, cast=str):
    from edgedino.errors import EdgeDinoError

    try:
        return None if text is None else [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EdgeDinoError(f"{text!r}: give comma-separated whole numbers, e.g. 1,2") from None


def register(sub) -> None:
    p = add_command(
        sub, "benchmark", help="latency, size, memory, parity and dense quality of every artifact",
        description="Export (or reuse from the cache) each artifact, then measure PyTorch eager fp32, "
                    "torch.compile and every artifact in its runtime, each in its own process with pinned "
                    "threads: warm-up, timed runs, peak memory, parity against PyTorch, dense correspondence "
                    "quality, and efficiency against this machine's GEMM peak. Random weights (seeded) unless "
                    "--weights is given. Artifacts are cached in $EDGEDINO_CACHE (default ~/.cache/edgedino). "
                    "`tracking` instead scores video object tracking on DAVIS-format sequences: J (IoU) and F "
                    "(boundary F-measure) as the DAVIS toolkit defines them, and end-to-end FPS of label propagation, "
                    "beside the no-motion, CSRT and KCF baselines; presets are exported at the frames' aspect ratio "
                    "(--target openvino --precision int8 unless given).",
        examples="""
            edgedino benchmark --model vits16 --target torch,onnx,openvino --precision fp32,int8
            edgedino benchmark --target torch,openvino,peer-openvino --precision fp32,int8,bf16 --avx2 --batch 1,8
            edgedino benchmark --suite benchmarks/default.yaml --json r.json --md r.md --plot r.png
            edgedino benchmark latency --model convnext_tiny --imgsz 224,448 --threads 1,2 --iters 50
            edgedino benchmark tracking --data synth:4 --model vits16 --target openvino --precision int8
            edgedino benchmark tracking --data DAVIS --model vits16_int8.xml --short-side 448 --json t.json
            edgedino benchmark tracking --data DAVIS --model vits16 --weights w.pth --short-side 960 --protocol dinov3
        """,
    )
    p.add_argument("kind", nargs="?", default="latency", choices=["latency", "tracking"],
                   help="what to measure: latency (default), or tracking (J&F and FPS of label propagation on a "
                        "DAVIS-format folder, with the no-motion, CSRT and KCF baselines)")
    add_flag(p, "--data", "tracking: a DAVIS-2017-format folder (JPEGImages/480p/<seq>/*.jpg, "
                   "Annotations/480p/<seq>/*.png), or synth:N for N generated sequences")
    add_flag(p, "--short-side", "tracking: comma-separated (default: an "
                   "artifact's own size; 224 for presets, exported at the frames' aspect ratio)")
    add_flag(p, "--protocol", "tracking: comma-separated, one row each on the same sequences (default edgedino). "
             "The J&F of DINOv3's paper (Table 14, DAVIS-2017 val at short side 960: ViT-S/16 72.7, ViT-S+/16 75.5, "
             "ViT-B/16 77.2) compares only with --protocol dinov3 --short-side 960 on the real DAVIS-2017 val "
             "folder with the official weights")
    p.add_argument("--suite", help="YAML suite (see benchmarks/); the flags below override it")
    add_flag(p, "--model", "comma-separated presets (default vits16); tracking also takes artifact files")
    add_flag(p, "--weights", "default: seeded random weights")
    add_flag(p, "--target", f"{', '.join(BASELINES)}, {target_names()}, or the by-hand peers "
                            f"{', '.join(PEERS)}; comma-separated")
    add_flag(p, "--precision", "comma-separated, of the export targets (default fp32,int8); bf16: OpenVINO's fp32 "
                               "IR computed in bf16 where the CPU has AMX-BF16 or AVX512-BF16")
    add_flag(p, "--imgsz", "comma-separated, N (N x N) or HxW (default 224)")
    add_flag(p, "--threads", "comma-separated thread counts (default 2)")
    add_flag(p, "--batch", "comma-separated batch sizes (default 1)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default 5)")
    p.add_argument("--iters", type=int, help="timed runs (default 20)")
    p.add_argument("--seconds", type=float, help="time at least this long (in addition to --iters)")
    add_flag(p, "--calib")
    p.add_argument("--profile", action="store_true", default=None,
                   help="per-op time of every artifact by op type (OpenVINO perf counters, onnxruntime profiler), "
                        "with the share of matmul/conv/attention kernels; in the table, JSON and Markdown")
    p.add_argument("--avx2", action="store_true", default=None,
                   help="also time every PyTorch and OpenVINO row with its runtime limited to AVX2 "
                        "(ONEDNN_MAX_CPU_ISA=AVX2 and the like, checked in the run): the AVX2 ms column")
    add_flag(p, "--json", "every field")
    p.add_argument("--md", help="write the table as Markdown")
    p.add_argument("--plot", help="write a PNG: latency against parity (size as marker area); tracking: J&F "
                                   "against FPS")
    p.set_defaults(run=run)


def run(args) -> int:
    from edgedino.atomic import check_output

    for path in (args.json, args.md, args.plot):
        if path:
            check_output(path, inputs=[args.suite, args.weights, args.calib])
    if args.kind == "tracking":
        return run_tracking(args)
    from dataclasses import replace

    from edgedino.bench.report import table, write
    from edgedino.bench.runner import run_suite
    from edgedino.bench.suite import Suite, check_suite, load_suite

    suite = load_suite(args.suite) if args.suite else Suite()
    overrides = {"models": _list(args.model), "targets": _list(args.target), "precisions": _list(args.precision),
                 "imgsz": _list(args.imgsz), "threads": _list(args.threads, int), "batch": _list(args.batch, int),
                 "warmup": args.warmup, "iters": args.iters, "seconds": args.seconds, "calib": args.calib,
                 "weights": args.weights, "profile": args.profile,
                 "avx2": args.avx2}
    suite = check_suite(replace(suite, **{k: v for k, v in overrides.items() if v is not None}))
    report = run_suite(suite, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(report))
    write(report, args.json, args.md, args.plot)
    return 0


def run_tracking(args) -> int:
    from edgedino.bench.tracking_report import table, write
    from edgedino.bench.tracking_run import TrackingSetup, run
    from edgedino.errors import EdgeDinoError
    from edgedino.track.protocol import PROTOCOLS

    if not args.data or not args.model:
        raise EdgeDinoError("benchmark tracking needs --data (a DAVIS folder or synth:N) and --model "
                            "(an artifact file or a preset)")
    try:
        sides = _list(args.short_side, int)
    except ValueError:
        raise EdgeDinoError(f"--short-side {args.short_side!r}: give whole numbers, e.g. 224 or 224,448") from None
    protocols = _list(args.protocol) or ["edgedino"]
    unknown = [name for name in protocols if name not in PROTOCOLS]
    if unknown:
        raise EdgeDinoError(f"--protocol {','.join(unknown)}: unknown (known: {', '.join(PROTOCOLS)})")
    setup = TrackingSetup(data=args.data, models=_list(args.model), weights=args.weights, protocols=protocols,
                          targets=_list(args.target) or ["openvino"], precisions=_list(args.precision) or ["int8"],
                          short_sides=sides, threads=(_list(args.threads, int) or [2])[0],
                          calib=args.calib)
    report = run(setup, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(report))
    write(report, args.json, args.md, args.plot)
    return 0
