"""`edgedino benchmark`: every backend side by side, measured one after another in its own process."""

from __future__ import annotations

import sys

from edgedino.cli.common import add_command


def _list(text: str | None, cast=str):
    return None if text is None else [cast(v.strip()) for v in text.split(",") if v.strip()]


def register(sub) -> None:
    p = add_command(
        sub, "benchmark", help="latency, size, memory, parity and dense quality of every artifact",
        description="Export (or reuse from the cache) each artifact, then measure PyTorch eager fp32, "
                    "torch.compile and every artifact in its runtime, each in its own process with pinned "
                    "threads: warm-up, timed runs, peak memory, parity against PyTorch, dense correspondence "
                    "quality, and efficiency against this machine's GEMM peak. Random weights (seeded) unless "
                    "--weights is given. Artifacts are cached in $EDGEDINO_CACHE (default ~/.cache/edgedino).",
        examples="""
            edgedino benchmark --model vits16 --targets torch,onnx,openvino --precision fp32,int8
            edgedino benchmark --suite benchmarks/default.yaml --json r.json --md r.md --plot r.png
            edgedino benchmark latency --model convnext_tiny --imgsz 224,448 --threads 1,2 --iters 50
        """,
    )
    p.add_argument("kind", nargs="?", default="latency", choices=["latency"], help="what to measure (latency)")
    p.add_argument("--suite", help="YAML suite (see benchmarks/); the flags below override it")
    p.add_argument("--model", help="comma-separated presets (default vits16)")
    p.add_argument("--weights", help="weights file or folder for the model (default: seeded random weights)")
    p.add_argument("--targets", help="torch, torch.compile, onnx, openvino, tflite, coreml; comma-separated")
    p.add_argument("--precision", help="comma-separated precisions of the export targets (default fp32,int8)")
    p.add_argument("--imgsz", help="comma-separated sizes, N or HxW (default 224)")
    p.add_argument("--threads", help="comma-separated thread counts (default 2)")
    p.add_argument("--batch", help="comma-separated batch sizes (default 1)")
    p.add_argument("--warmup", type=int, help="warm-up runs (default 5)")
    p.add_argument("--iters", type=int, help="timed runs (default 20)")
    p.add_argument("--seconds", type=float, help="time at least this long (in addition to --iters)")
    p.add_argument("--calib", help="image folder or video for int8 calibration and parity")
    p.add_argument("--json", help="write every field as JSON")
    p.add_argument("--md", help="write the table as Markdown")
    p.add_argument("--plot", help="write a PNG plot of latency against size")
    p.set_defaults(run=run)


def run(args) -> int:
    from dataclasses import replace

    from edgedino.bench.report import table, write
    from edgedino.bench.runner import run_suite
    from edgedino.bench.suite import Suite, load_suite

    suite = load_suite(args.suite) if args.suite else Suite()
    overrides = {"models": _list(args.model), "targets": _list(args.targets), "precisions": _list(args.precision),
                 "imgsz": _list(args.imgsz), "threads": _list(args.threads, int), "batch": _list(args.batch, int),
                 "warmup": args.warmup, "iters": args.iters, "seconds": args.seconds, "calib": args.calib,
                 "weights": args.weights}
    suite = replace(suite, **{k: v for k, v in overrides.items() if v is not None})
    report = run_suite(suite, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(report))
    write(report, args.json, args.md, args.plot)
    return 0
