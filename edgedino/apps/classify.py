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
from edgedino.caption import RANDOM_WEIGHTS, Label, TextStyle, draw_labels, fit, noted, stack, stats_lines
from edgedino.errors import EdgeDinoError
from edgedino.runtime.app import add_run_args, app_parser, run_main

WINDOW = "edgedino classify"
EXAMPLES = """examples:
  edgedino head train --task classify --data flowers/ --weights dinov3_vits16.pth --out flowers.pth
  edgedino export --head flowers.pth --target openvino --precision int8 --out exports/
  edgedino-classify --model exports/vits16_classify_224_int8.xml --source 0
  edgedino-classify --model vits16_classify_224_fp32.onnx --source clip.mp4 --headless --save out.mp4 \\
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


def overlay_labels(labels: list[tuple[str, float]], fps: float | None, ms: dict[str, float],
                   frame_hw: tuple[int, int], note: str | None = None) -> list[Label]:
    """Where each text goes: the top label large at the top left, the next ones under it, FPS and stage times
    wrapped at the bottom, `note` (the random-weights warning) at the bottom right."""
    style = TextStyle.for_frame(frame_hw)
    width = frame_hw[1] - 2 * style.pad
    (name, p), rest = labels[0], labels[1:]
    big = TextStyle.for_frame(frame_hw, 1.6)
    placed = stack([fit(f"{name} {p:.0%}", width, big)], big, frame_hw, [])
    placed += stack([fit(f"{n} {q:.0%}", width, style) for n, q in rest], style, frame_hw, placed)
    placed += stack(stats_lines(fps, ms, width, style), style, frame_hw, placed, bottom=True)
    return noted(placed, note, style, frame_hw)


def draw(bgr: np.ndarray, labels: list[tuple[str, float]], fps: float | None, ms: dict[str, float],
         note: str | None = None) -> np.ndarray:
    """The labels (each runner-up with a bar as long as its probability), the stage times and `note`, on `bgr`."""
    import cv2

    placed = overlay_labels(labels, fps, ms, bgr.shape[:2], note)
    draw_labels(bgr, placed)
    for label, (_, q) in zip(placed[1:len(labels)], labels[1:], strict=True):
        x, y, w, h = label.rect
        cv2.rectangle(bgr, (x, y + h - 3), (x + max(int(w * q) - 1, 0), y + h - 1), (80, 200, 80), -1)
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
    note = RANDOM_WEIGHTS if runtime.random_weights else None

    def step(frame, read_ms: float, fps: float):
        labels, ms = classify(runtime, classes, frame.rgb, min(args.top, len(classes)))
        ms = {"read": read_ms, **ms}
        votes[labels[0][0]] = votes.get(labels[0][0], 0) + 1
        view = draw(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), labels, fps, ms, note)
        return view, ms, {"frame": frame.index, "t": round(frame.t, 4), "labels": [[n, round(p, 4)] for n, p in labels]}

    stats, status = run_frames(args, source, WINDOW, step, "classify-jsonl")
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    print("top label: " + ", ".join(f"{n} {c}/{stats.frames}" for n, c in ranked[:5]), file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = app_parser("edgedino-classify", __doc__.split("\n\n")[0], EXAMPLES, "an artifact exported with a classify "
                   "head (.onnx, .xml, .tflite, .mlpackage on macOS)")
    p.add_argument("--top", type=at_least(1), default=3, help="labels shown per frame (default 3)")
    add_run_args(p, "the annotated video (mp4v)", "labels [[name, p], ...]")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main("classify", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
