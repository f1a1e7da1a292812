#!/usr/bin/env python3
"""Live image classification with a DINO backbone + head exported as one artifact (edgedino export --head).
Torch-free.

Each frame gets the head's top labels with their confidence (softmax of the logits), drawn over the video with
FPS and per-stage milliseconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from edgedino.argtypes import at_least
from edgedino.errors import EdgeDinoError
from edgedino.runtime.app import add_run_args, app_parser, run_main

WINDOW = "edgedino classify"
EXAMPLES = """examples:
  edgedino head train --task classify --data flowers/ --weights dinov3_vits16.pth --out flowers.pth
  edgedino export --head flowers.pth --target openvino --precision int8 --out exports/
  python apps/classify.py --model exports/vits16_classify_224_int8.xml --source 0
  python apps/classify.py --model vits16_classify_224_fp32.onnx --source clip.mp4 --headless --save out.mp4 \\
      --json labels.jsonl --max-frames 100
keys: space pause, s snapshot (PNG in the current folder), q or Esc quit.
exit status: 0 done, 1 the source failed mid-way (after retries), 2 bad input (model without a classify head,
source)."""


def classify(runtime, classes: tuple[str, ...], rgb: np.ndarray, top: int) -> tuple[list[tuple[str, float]], dict]:
    """The frame's `top` (label, probability) pairs, best first, and the per-stage ms."""
    from edgedino.runtime.task_head import softmax

    feats = runtime.features(rgb)
    t0 = time.perf_counter()
    probs = softmax(feats.logits[0].astype(np.float64))
    best = np.argsort(-probs)[:top]
    return [(classes[i], float(probs[i])) for i in best], {**feats.ms, "head": (time.perf_counter() - t0) * 1e3}


def draw(bgr: np.ndarray, labels: list[tuple[str, float]], fps: float, ms: dict[str, float]) -> np.ndarray:
    """Top label large, the next ones with confidence bars, FPS and stage times: outlined to read on any frame."""
    import cv2

    def text(s: str, y: int, scale: float, thick: int) -> None:
        for colour, width in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):
            cv2.putText(bgr, s, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)

    name, p = labels[0]
    text(f"{name} {p:.0%}", 34, 1.0, 2)
    for i, (n, q) in enumerate(labels[1:], 1):
        y = 34 + 24 * i
        cv2.rectangle(bgr, (8, y - 12), (8 + int(120 * q), y + 2), (80, 200, 80), -1)
        text(f"{n} {q:.0%}", y, 0.5, 1)
    text(f"{fps:.1f} FPS  " + " ".join(f"{k} {v:.1f}ms" for k, v in ms.items()), bgr.shape[0] - 10, 0.45, 1)
    return bgr


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgedino.runtime import load
    from edgedino.runtime.app import run_frames
    from edgedino.runtime.source import FrameSource
    from edgedino.runtime.task_head import require_head

    if args.top < 1:
        raise EdgeDinoError("--top must be at least 1")
    runtime = load(args.model, args.threads)
    classes = require_head(runtime.metadata, runtime.path.name, "classify").classes
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    votes: dict[str, int] = {}

    def step(frame, read_ms: float, fps: float):
        labels, ms = classify(runtime, classes, frame.rgb, min(args.top, len(classes)))
        ms = {"read": read_ms, **ms}
        votes[labels[0][0]] = votes.get(labels[0][0], 0) + 1
        view = draw(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), labels, fps, ms)
        return view, ms, {"frame": frame.index, "t": round(frame.t, 4), "labels": [[n, round(p, 4)] for n, p in labels]}

    stats, status = run_frames(args, source, WINDOW, step)
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    print("top label: " + ", ".join(f"{n} {c}/{stats.frames}" for n, c in ranked[:5]), file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = app_parser("apps/classify.py", __doc__.split("\n\n")[0], EXAMPLES, "an artifact exported with a classify "
                   "head (.onnx, .xml, .tflite, .mlpackage on macOS)")
    p.add_argument("--top", type=at_least(1), default=3, help="labels shown per frame (default 3)")
    add_run_args(p, "write the annotated video (mp4v)", "write one line per frame: frame, t, labels [[name, p], ...]")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main("classify", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
