#!/usr/bin/env python3
"""Live image classification with a DINO backbone + head exported as one artifact (edgedino export --head).
Torch-free.

Each frame gets the head's top labels with their confidence (softmax of the logits), drawn over the video with
FPS and per-stage milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack

import numpy as np

from edgedino.errors import EdgeDinoError

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
    from edgedino.runtime.head import softmax

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

    from edgedino.atomic import atomic_path
    from edgedino.runtime import load
    from edgedino.runtime.head import require_head
    from edgedino.runtime.source import FrameSource

    if args.top < 1:
        raise EdgeDinoError("--top must be at least 1")
    runtime = load(args.model, args.threads)
    classes = require_head(runtime.metadata, runtime.path.name, "classify").classes
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    if not args.headless:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    frames, writer, jsonl, paused, fps = source.frames(), None, None, False, 0.0
    count, seconds, totals, votes = 0, 0.0, {}, {}
    with ExitStack() as stack:
        stack.callback(frames.close)
        if args.json:
            jsonl = stack.enter_context(open(stack.enter_context(atomic_path(args.json)), "w"))
        t_read = time.perf_counter()
        try:
            for frame in frames:
                read_ms = (time.perf_counter() - t_read) * 1e3
                labels, ms = classify(runtime, classes, frame.rgb, min(args.top, len(classes)))
                ms = {"read": read_ms, **ms}
                view = draw(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), labels, fps, ms)
                if args.save and writer is None:
                    writer = cv2.VideoWriter(str(stack.enter_context(atomic_path(args.save))),
                                             cv2.VideoWriter_fourcc(*"mp4v"), source.fps or 25.0, view.shape[1::-1])
                    if not writer.isOpened():
                        raise EdgeDinoError(f"cannot write video {args.save} (OpenCV has no mp4v encoder for it)")
                    stack.callback(writer.release)
                if writer is not None:
                    writer.write(view)
                if jsonl is not None:
                    jsonl.write(json.dumps({"frame": frame.index, "t": round(frame.t, 4),
                                            "labels": [[n, round(p, 4)] for n, p in labels]}) + "\n")
                elapsed = time.perf_counter() - t_read
                count, seconds = count + 1, seconds + elapsed
                totals = {k: totals.get(k, 0.0) + v for k, v in ms.items()}
                votes[labels[0][0]] = votes.get(labels[0][0], 0) + 1
                fps = 1 / elapsed if count == 1 else 0.9 * fps + 0.1 / max(elapsed, 1e-6)
                while not args.headless:
                    cv2.imshow(WINDOW, view)
                    key = cv2.waitKey(0 if paused else 1) & 0xFF
                    if key in (ord("q"), 27):
                        return finish(count, seconds, totals, votes, 0)
                    if key == ord("s"):
                        cv2.imwrite(f"classify_{frame.index:05d}.png", view)
                        print(f"saved classify_{frame.index:05d}.png", file=sys.stderr)
                    paused = paused != (key == 32)
                    if not paused:
                        break
                if args.max_frames and count >= args.max_frames:
                    break
                t_read = time.perf_counter()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
    if count == 0:
        raise EdgeDinoError(f"{args.source} gave no frame")
    return finish(count, seconds, totals, votes, 1 if source.failure else 0)


def finish(count: int, seconds: float, totals: dict[str, float], votes: dict[str, int], status: int) -> int:
    """Print frames, FPS, mean ms per stage and how often each label came first; pass the exit status through."""
    print(f"{count} frames in {seconds:.1f} s: {count / max(seconds, 1e-9):.1f} FPS end to end", file=sys.stderr)
    print(f"{'stage':<11}{'mean ms':>8}", file=sys.stderr)
    for k, v in totals.items():
        print(f"{k:<11}{v / max(count, 1):8.1f}", file=sys.stderr)
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    print("top label: " + ", ".join(f"{n} {c}/{count}" for n, c in ranked[:5]), file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apps/classify.py", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an artifact exported with a classify head "
                   "(.onnx, .xml, .tflite, .mlpackage on macOS)")
    p.add_argument("--source", default="0", help="camera index, video file, rtsp:// or http:// URL, or image folder "
                   "(default: 0, the first camera)")
    p.add_argument("--top", type=int, default=3, help="labels shown per frame (default 3)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--save", metavar="MP4", help="write the annotated video (mp4v)")
    p.add_argument("--json", metavar="JSONL", help="write one line per frame: frame, t, labels [[name, p], ...]")
    p.add_argument("--headless", action="store_true", help="no window (devices without a screen)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds without a frame before the source counts "
                   "as stalled (default: 10)")
    p.add_argument("--retries", type=int, default=3, help="times a failed or stalled source is reopened before "
                   "giving up (default: 3)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EdgeDinoError as e:
        print(f"classify: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
