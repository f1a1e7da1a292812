"""Severity sweep: int8 on weights with DINOv3-like activation outliers, plain against SmoothQuant + the auto policy.

    python benchmarks/int8_outliers.py --test-images ../shared/data/vtest.avi --out benchmarks/results/<machine>

For each model and severity (edgedino.bench.stress_weights; 0 is the seeded random weights as they are) it records
the statistic each site reaches, then exports to every target:
- int8 plain: every layer quantized, no SmoothQuant: what `edgedino export` did before --int8-policy;
- int8 auto: SmoothQuant folded in, --int8-policy auto (the default now);
- Core ML palettize4, strict and auto; and fp32 at severity 0, for scale.
Each artifact gets its cls and patch cosine against PyTorch on the 8 held-out verification images (what the export
gate and the auto policy read) and on test images neither calibration nor the policy saw, the layers auto kept in
float, and its latency: a fresh process per measurement, 2 threads, plain and auto measured alternately in the
same run (`--rounds` times), so `x plain` is a ratio from one run. Core ML cannot run on Linux: its parity is the
reference interpreter's and it has no latency. Results are saved after each model and severity; a rerun with the
same --out skips what is there (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgedino import save_backbone
from edgedino.bench.machine import describe, versions
from edgedino.bench.outlier_stats import statistics
from edgedino.bench.runner import run_worker
from edgedino.bench.stress_weights import stress_weights
from edgedino.export import export
from edgedino.export.parity import cosines
from edgedino.runtime.frames import model_inputs, read_frames

RUNTIME_TARGETS = ("onnx", "openvino", "tflite")  # the ones this machine can time


def _weights(model: str, severity: float, work: Path, size: tuple[int, int]) -> tuple[Path, dict]:
    import torch

    net = stress_weights(model, severity, size=size[0])
    stats = statistics(net, torch.from_numpy(model_inputs(read_frames(None, 4), size)))
    return save_backbone(net, work / f"{model}_stress{severity:g}.pt", "edgedino"), stats


def _exports(weights: Path, severity: float, work: Path, size: tuple[int, int], log) -> list[tuple[str, object]]:
    """(int8 setting, ArtifactResult) for every artifact of one model and severity."""
    runs = [("plain", dict(precisions=["int8", "palettize4"], int8_policy="strict", smoothquant=None)),
            ("auto", dict(precisions=["int8", "palettize4"], int8_policy="auto"))]
    if severity == 0:
        runs.append(("-", dict(precisions=["fp32"])))
    found = []
    for setting, kwargs in runs:
        result = export(targets="all", weights=str(weights), imgsz=size, out=work / setting, log=log, **kwargs)
        found += [("strict" if a.precision == "palettize4" and setting == "plain" else setting, a)
                  for a in result.artifacts]
    return found


def _test_parity(target: str, path: str, inputs: np.ndarray, reference: dict, features: Path
                 ) -> list[float] | None:
    """cls and patch cosine on the test images: from the timing worker's features, or the Core ML interpreter."""
    if target == "coreml":
        from edgedino.export.coreml.numeric_check import InterpreterRuntime

        runtime = InterpreterRuntime(path)
        got = [runtime.run(x[None]) for x in inputs]
        outs = {k: np.concatenate([g[k] for g in got]) for k in ("cls", "patch_tokens")}
    elif features.exists():
        outs = dict(np.load(features))
    else:
        return None
    return [float(cosines(outs[k][:len(inputs)], reference[k]).mean()) for k in ("cls", "patch_tokens")]


def _time(rows: list[dict], inputs_file: Path, work: Path, size: tuple[int, int], rounds: int, seconds: float,
          log) -> None:
    """Median latency of every runnable artifact, measured round-robin `rounds` times (median of the medians)."""
    runnable = [i for i, r in enumerate(rows) if r["target"] in RUNTIME_TARGETS and r["path"]]
    samples: dict[int, list[float]] = {i: [] for i in runnable}
    for _ in range(rounds):
        for i in runnable:
            job = {"backend": "artifact", "path": rows[i]["path"], "weights": "", "imgsz": list(size), "batch": 1,
                   "threads": 2, "warmup": 3, "iters": 10, "seconds": seconds, "inputs": str(inputs_file),
                   "features": str(work / f"features_{i}.npz")}
            try:
                samples[i].append(float(np.median(run_worker(job, 600)["latency_ms"])))
            except Exception as e:  # a crashed runtime is a row without latency, the sweep goes on
                rows[i]["note"] = str(e)[:200]
    for i in runnable:
        rows[i]["latency_ms"] = float(np.median(samples[i])) if samples[i] else None
        log(f"  {rows[i]['target']} {rows[i]['precision']} {rows[i]['int8']}: {rows[i]['latency_ms']} ms")


def sweep(model: str, severity: float, work: Path, size: tuple[int, int], test: np.ndarray | None, rounds: int,
          seconds: float, log) -> dict:
    """Everything the tables show for one model at one severity."""
    work.mkdir(parents=True, exist_ok=True)
    weights, stats = _weights(model, severity, work, size)
    rows = []
    for setting, a in _exports(weights, severity, work, size, log):
        par = {p["output"]: p["cosine_mean"] for p in a.parity}
        rows.append({"target": a.target, "precision": a.precision, "int8": setting, "status": a.status,
                     "cls": par.get("cls"), "patch": par.get("patch_tokens"), "float_layers": a.float_layers,
                     "tries": len(a.tries), "size_mb": a.size_mb, "path": a.path, "message": a.message})
    timing = test if test is not None else model_inputs(read_frames(None, 1), size)
    inputs_file = work / "inputs.npz"
    np.savez(inputs_file, timing=timing[:1], eval=timing)
    _time(rows, inputs_file, work, size, rounds, seconds, log)
    reference = _reference(weights, test, size) if test is not None else None
    for i, r in enumerate(rows):
        if reference is not None and r["path"]:
            r["test"] = _test_parity(r["target"], r["path"], test, reference, work / f"features_{i}.npz")
        plain = next((p for p in rows if p["target"] == r["target"] and p["precision"] == r["precision"]
                      and p["int8"] in ("plain", "strict")), None)
        both = plain is not None and r.get("latency_ms") and plain.get("latency_ms")
        r["x_plain"] = r["latency_ms"] / plain["latency_ms"] if both else None
        r.pop("path")
    return {"model": model, "severity": severity, "imgsz": list(size), "statistics": stats, "rows": rows}


def _reference(weights: Path, images: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """PyTorch fp32 cls and patch tokens of the stressed model on the test images."""
    import torch

    from edgedino.checkpoints import load_backbone
    from edgedino.export.module import ExportModule

    module = ExportModule(load_backbone(str(weights)), size)
    with torch.no_grad():
        out = module(torch.from_numpy(images))
    return {"cls": out[0].numpy(), "patch_tokens": out[1].numpy()}


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _worst(row: dict) -> float | None:
    return None if row["cls"] is None or row["patch"] is None else min(row["cls"], row["patch"])


def _verdicts(model: str, runs: list[dict]) -> list[str]:
    """Per severity and precision: where quantizing everything misses the threshold, and whether auto holds on
    every target, with the layers it kept and what they cost."""
    lines = ["", f"## {model}: verdict (min of cls and patch cosine on the held-out images)", ""]
    for run in runs:
        for precision in dict.fromkeys(r["precision"] for r in run["rows"] if r["int8"] != "-"):
            rows = [r for r in run["rows"] if r["precision"] == precision]
            everything = [r for r in rows if r["int8"] in ("plain", "strict")]
            missed = [f"{r['target']} {_fmt(_worst(r))}" for r in everything if r["status"] != "ok"]
            auto = [r for r in rows if r["int8"] == "auto"]
            failed = [f"{r['target']} {_fmt(_worst(r))}" for r in auto if r["status"] != "ok"]
            cost = [f"{r['target']} {len(r['float_layers'])} float, x{_fmt(r.get('x_plain'), '.2f')}" for r in auto]
            lines.append(f"- severity {run['severity']:g}, {precision}: quantizing everything "
                         + (f"misses on {', '.join(missed)}" if missed else f"holds on all {len(everything)}")
                         + "; auto " + (f"MISSES on {', '.join(failed)}" if failed else f"holds on all {len(auto)}")
                         + f" ({'; '.join(cost)})")
    return lines


def markdown(report: dict) -> str:
    """The severity sweep as Markdown: machine, command, outlier statistics, parity and latency, kept layers."""
    cpu = report["machine"]["cpu"]
    lines = ["# int8 on DINOv3-like outliers: severity sweep", "",
             f"Machine: {cpu['model']}, {cpu['cores']} cores, flags {', '.join(cpu['flags'])}; "
             f"{report['when']}. Commands: "
             + "; ".join(f"`{c}`" for c in dict.fromkeys(r.get("command", report.get("command"))
                                                         for r in report["runs"].values())), "",
             "Parity: mean cosine with PyTorch fp32 on the 8 held-out verification images (the export gate and the "
             "auto policy read these) and on the test images (`test`, seen by neither). int8 plain: every layer "
             "quantized, no SmoothQuant (edgedino before --int8-policy); auto: SmoothQuant + --int8-policy auto. "
             "Latency: median ms, 2 threads, one process per measurement, the rows of one model and severity "
             "measured round-robin; `x plain` = auto / plain from the same run. Core ML: reference interpreter, "
             "no latency on Linux. At severity 0 auto found no outlier channels and kept no layer float, so its "
             "artifacts are the plain ones (checked for this page: the OpenVINO .bin files are byte-identical, the "
             "ONNX files have the same nodes and initializers; only the metadata differs): their `x plain` is this "
             "machine's timing noise, not a cost. Input size: "
             + ", ".join(sorted({"x".join(map(str, r.get("imgsz", (224, 224)))) for r in report["runs"].values()}))
             + ".", ""]
    for model in dict.fromkeys(run["model"] for run in report["runs"].values()):
        runs = sorted((r for r in report["runs"].values() if r["model"] == model), key=lambda r: r["severity"])
        sites = list(runs[0]["statistics"])
        lines += [f"## {model}: outlier statistics (max |x| / median |x|; sanity rows as named)", "",
                  "| site | " + " | ".join(f"severity {r['severity']:g}" for r in runs) + " |",
                  "| --- |" + " --- |" * len(runs)]
        lines += [f"| {site} | " + " | ".join(f"{r['statistics'][site]:.3g}" for r in runs) + " |" for site in sites]
        lines += ["", f"## {model}: parity and latency", "",
                  "| severity | target | precision | int8 | cls cos | patch cos | test cls / patch | float layers | "
                  "ms | x plain | |", "| --- |" + " --- |" * 10]
        for run in runs:
            for r in run["rows"]:
                test = r.get("test")
                ok = {"ok": "✅", "verify-failed": "❎", "unverified": "➖"}.get(r["status"], "❌")
                lines.append(f"| {run['severity']:g} | {r['target']} | {r['precision']} | {r['int8']} | "
                             f"{_fmt(r['cls'])} | {_fmt(r['patch'])} | "
                             f"{'-' if not test else f'{test[0]:.4f} / {test[1]:.4f}'} | "
                             f"{len(r['float_layers']) if r['int8'] == 'auto' else '-'} | "
                             f"{_fmt(r.get('latency_ms'), '.1f')} | {_fmt(r.get('x_plain'), '.2f')} | {ok} |")
        lines += _verdicts(model, runs)
        lines += ["", f"## {model}: layers auto kept in float", ""]
        for run in runs:
            for r in run["rows"]:
                if r["int8"] == "auto":
                    kept = ", ".join(r["float_layers"]) or "none"
                    lines.append(f"- severity {run['severity']:g}, {r['target']} {r['precision']} "
                                 f"({r['tries']} {'try' if r['tries'] == 1 else 'tries'}): {kept}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="vits16,convnext_tiny")
    p.add_argument("--severity", default="0,1,3,10")
    p.add_argument("--test-images", help="image folder or video for the test parity (8 images); none: no test column")
    p.add_argument("--out", required=True, help="results folder, benchmarks/results/<machine>")
    p.add_argument("--work", default="/tmp/edgedino_int8_outliers", help="folder for weights and artifacts")
    p.add_argument("--imgsz", type=int, default=224, help="input size (square)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin latency rounds")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds of timed runs per measurement")
    p.add_argument("--fresh", action="store_true", help="ignore results already saved in --out")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "int8_outliers.json"
    report = json.loads(saved.read_text()) if saved.exists() and not args.fresh else {"runs": {}}
    report.update(machine=describe(), versions=versions(), when=time.strftime("%Y-%m-%d"))
    command = "python benchmarks/int8_outliers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    size = (args.imgsz, args.imgsz)
    test = model_inputs(read_frames(args.test_images, 8), size) if args.test_images else None
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    for model in args.models.split(","):
        for severity in (float(s) for s in args.severity.split(",")):
            key = f"{model}@{severity:g}"
            if key in report["runs"]:
                log(f"{key}: already in {saved}, skipped")
                continue
            log(f"== {key}")
            report["runs"][key] = sweep(model, severity, Path(args.work) / key, size, test, args.rounds,
                                        args.seconds, log) | {"command": command}
            saved.write_text(json.dumps(report, indent=1) + "\n")
            (out / "int8_outliers.md").write_text(markdown(report))
    (out / "int8_outliers.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
