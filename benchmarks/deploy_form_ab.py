"""Before/after of a change to the exported graph, and the by-hand peer path, measured interleaved in one process.

Every artifact is exported twice from the same weights: with the edgedino of a git ref (--before, default main,
unpacked with `git archive`) and with this checkout. The by-hand peer is what a user would do without edgedino:
Hugging Face DINOv3ViTModel -> ov.convert_model -> nncf.quantize(model_type=TRANSFORMER), defaults otherwise.
The weights are a seeded random init of transformers' own DINOv3 models (LayerScale 1, so every block matters),
saved as a Hugging Face folder that edgedino reads. All runtimes are loaded in one process and timed round-robin,
so the ratios between rows hold on a shared, noisy machine; absolute times do not.

    python benchmarks/deploy_form_ab.py --out benchmarks/results/amd-epyc-2c/deploy_form --work /tmp/ab
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PLAN = [  # (model, size, targets of both sides)
    ("vits16", 224, "openvino,onnx"), ("vits16", 448, "openvino,onnx"),
    ("convnext_tiny", 224, "openvino,onnx,tflite"), ("convnext_tiny", 448, "openvino,onnx"),
]
SUFFIX = {"openvino": ".xml", "onnx": ".onnx", "tflite": ".tflite"}
PARITY_IMAGES = 8


def hf_weights(model: str, work: Path) -> Path:
    """A seeded random-init transformers DINOv3 model with our preset's config, saved as a HF folder."""
    import torch
    from transformers import DINOv3ConvNextConfig, DINOv3ConvNextModel, DINOv3ViTConfig, DINOv3ViTModel

    from edgedino.hf_layout import hf_config
    from edgedino.models import create_model

    folder = work / "weights" / model
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        vit = model.startswith("vit")
        config = (DINOv3ViTConfig if vit else DINOv3ConvNextConfig)(**hf_config(create_model(model).cfg))
        (DINOv3ViTModel if vit else DINOv3ConvNextModel)(config).eval().save_pretrained(folder)
    return folder


def export_side(src: Path, out: Path, model: str, size: int, targets: str, weights: Path) -> dict[str, Path]:
    """{target: artifact} from `edgedino export` of one model and size with the edgedino found at `src`."""
    found = {t: next(out.glob(f"*{SUFFIX[t]}"), None) for t in targets.split(",")}
    if any(v is None for v in found.values()):
        print(f"export ({src.name}): {model} {size} {targets}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "edgedino", "export", "--target", targets, "--precision", "int8", "--model",
               model, "--weights", str(weights), "--imgsz", str(size), "--out", str(out), "--no-verify"]
        subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(src)}, check=True, stdout=subprocess.DEVNULL)
        found = {t: next(out.glob(f"*{SUFFIX[t]}")) for t in targets.split(",")}
    return found


def peer_openvino(weights: Path, size: int, calib: np.ndarray, path: Path) -> Path:
    """The by-hand OpenVINO path of `edgedino benchmark`'s peer-openvino row (edgedino.bench.peers)."""
    if path.exists():
        return path
    from transformers import AutoModel

    from edgedino.bench.peers import PEERS

    path.parent.mkdir(parents=True, exist_ok=True)
    PEERS["peer-openvino"].build(AutoModel.from_pretrained(weights).eval(), calib, path)
    return path


class PeerRuntime:
    """The peer IR in edgedino's OpenVINO runtime (f32, pinned threads), its output split as the benchmark does."""

    def __init__(self, path: Path, size: int, stride: int, threads: int):
        from edgedino.runtime import load

        self.runtime, self.size, self.stride = load(path, threads=threads), (size, size), stride

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        from edgedino.bench.peers import split

        return split(self.runtime.run(x), self.size, self.stride)


class EagerRuntime:
    """PyTorch eager fp32 of our model from the same weights: the parity reference and the ×eager baseline."""

    def __init__(self, weights: Path, size: int, threads: int):
        import torch

        from edgedino.checkpoints import load_backbone
        from edgedino.export.module import ExportModule

        torch.set_num_threads(threads)
        self.module = ExportModule(load_backbone(str(weights)), (size, size))

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(x))
        return dict(zip(self.module.output_names, (t.numpy() for t in out), strict=True))


def serve(conn, kind: str, path: str, size: int, threads: int) -> None:
    """One row in its own process (its thread pool spins only while it runs): answers ("time", x, n),
    ("outputs", images) and ("profile", x) until ("stop",)."""
    from edgedino.bench.opprofile import profile
    from edgedino.runtime import load

    makers = {"eager": lambda: EagerRuntime(Path(path), size, threads),
              "peer": lambda: PeerRuntime(Path(path), size, 16, threads)}
    runner = makers.get(kind, lambda: load(path, threads=threads))()
    while True:
        request = conn.recv()
        if request[0] == "time":
            runner.run(request[1])
            samples = []
            for _ in range(request[2]):
                start = time.perf_counter()
                runner.run(request[1])
                samples.append((time.perf_counter() - start) * 1000)
            conn.send(samples)
        elif request[0] == "outputs":
            conn.send(np.concatenate([runner.run(x[None])["patch_tokens"] for x in request[1]]))
        elif request[0] == "profile":
            conn.send(profile(Path(path), request[1], threads) if kind != "eager" else None)
        else:
            return


def start_rows(specs: dict[str, tuple[str, str]], size: int, threads: int) -> dict:
    """{row name: pipe to its serving process}, every process started and loaded before any timing."""
    import multiprocessing as mp

    ctx, pipes = mp.get_context("spawn"), {}
    for name, (kind, path) in specs.items():
        parent, child = ctx.Pipe()
        ctx.Process(target=serve, args=(child, kind, path, size, threads), daemon=True).start()
        pipes[name] = parent
    return pipes


def ask(pipes: dict, *request) -> dict:
    """Each row's answer, one row at a time."""
    answers = {}
    for name, pipe in pipes.items():
        pipe.send(request)
        answers[name] = pipe.recv() if request[0] != "stop" else None
    return answers


def cosine(patches: np.ndarray, ref: np.ndarray, name: str) -> float:
    from edgedino.export.parity import cosines

    if not np.isfinite(patches).all():
        raise SystemExit(f"{name}: non-finite outputs")
    return float(cosines(patches.reshape(ref.shape), ref).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="main", help="git ref of the 'before' edgedino (default main)")
    p.add_argument("--work", type=Path, required=True, help="scratch folder (exports are reused from it)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=5)
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # the serving processes inherit it
    work = args.work.resolve()
    before_src = work / f"src-{args.before}"
    if not before_src.exists():
        before_src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive.stdout, check=True)
    commits = {side: subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True,
                                    text=True).stdout.strip()
               for side, ref in (("before", args.before), ("after", "HEAD"))}
    rows, profiles, load = [], {}, [os.getloadavg()[0]]
    for model, size, targets in PLAN:
        measure_group(model, size, targets, work, before_src, args, rows, profiles)
        load.append(os.getloadavg()[0])
    from edgedino.bench.machine import describe, versions

    report = {"machine": describe(), "versions": versions(), "commits": commits, "threads": args.threads,
              "rounds": args.rounds, "per_round": args.per_round, "load_average": load, "rows": rows,
              "profiles": profiles}
    write(report, args.out)


def measure_group(model: str, size: int, targets: str, work: Path, before_src: Path, args, rows: list,
                  profiles: dict) -> None:
    """Export both sides (and the peer), time every row interleaved, add the rows and their op profiles."""
    from edgedino.runtime.frames import model_inputs, read_frames

    weights = hf_weights(model, work)
    images = model_inputs(read_frames(None, 32), (size, size))
    sides = {side: export_side(src, work / side / f"{model}_{size}", model, size, targets, weights)
             for side, src in (("before", before_src), ("after", ROOT))}
    specs = {"pytorch eager fp32": ("eager", str(weights))}
    specs |= {f"{t} int8 {side}": ("artifact", str(path)) for side, arts in sides.items() for t, path in arts.items()}
    if model.startswith("vit"):
        specs["openvino int8 by-hand peer"] = ("peer", str(peer_openvino(weights, size, images,
                                                                        work / "peer" / f"{model}_{size}_int8.xml")))
    pipes = start_rows(specs, size, args.threads)
    outputs = ask(pipes, "outputs", images[:PARITY_IMAGES])
    print(f"timing {model} {size}: {len(pipes)} rows, each in its own process, interleaved", file=sys.stderr)
    times = {name: [] for name in pipes}
    for _ in range(args.rounds):
        for name, pipe in pipes.items():
            pipe.send(("time", images[:1], args.per_round))
            times[name] += pipe.recv()
    op_times = ask(pipes, "profile", images[:1])
    ask(pipes, "stop")
    medians = {name: float(np.median(t)) for name, t in times.items()}
    for name in pipes:
        row = {"model": model, "size": size, "row": name, "median_ms": medians[name],
               "p90_ms": float(np.percentile(times[name], 90)), "samples": len(times[name]),
               "x_eager": medians["pytorch eager fp32"] / medians[name],
               "parity_cos": cosine(outputs[name], outputs["pytorch eager fp32"], name)}
        if name.endswith("after"):
            row["after_vs_before"] = medians[name.replace("after", "before")] / medians[name]
        if "openvino int8 by-hand peer" in medians and name == "openvino int8 after":
            row["vs_peer"] = medians["openvino int8 by-hand peer"] / medians[name]
        rows.append(row)
        if op_times[name] is not None:
            profiles[f"{model} {size} {name}"] = op_times[name]
        print(f"  {name}: {medians[name]:.1f} ms, parity {row['parity_cos']:.4f}", file=sys.stderr, flush=True)


def write(report: dict, out: Path) -> None:
    from edgedino.atomic import atomic_path
    from edgedino.bench.opprofile import markdown

    cpu = report["machine"]["cpu"]
    lines = ["# Deploy form before/after, and the by-hand peer path", "",
             f"- machine: {cpu['model']}, {cpu['cores']} cores, flags {' '.join(cpu['flags'])}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v),
             f"- before: {report['commits']['before']}, after: {report['commits']['after']}; {report['threads']} "
             f"threads, batch 1; {report['rounds']} rounds x {report['per_round']} runs of every row, interleaved",
             "- the machine is shared (1-minute load average before and after each model and size: "
             f"{', '.join(f'{v:.1f}' for v in report['load_average'])}): compare ratios within one model and "
             "size, not absolute times", "",
             "| model | size | row | median ms | p90 ms | ×eager | after/before | ours/peer | patch cos |",
             "|---|---|---|---|---|---|---|---|---|"]
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)
    lines += [f"| {r['model']} | {r['size']} | {r['row']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | "
              f"{r['x_eager']:.2f} | {f(r.get('after_vs_before'), '.2f')} | {f(r.get('vs_peer'), '.2f')} | "
              f"{r['parity_cos']:.4f} |" for r in report["rows"]]
    lines += ["", "## Per-op profiles", ""] + [markdown(title, prof) for title, prof in report["profiles"].items()]
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
