#!/usr/bin/env python3
"""Live semantic segmentation with a DINO backbone + head exported as one artifact (edgedino export --head).
Torch-free.

The head's patch-grid logits are upsampled to the frame (bilinear), and each pixel is tinted with its class
colour; a legend, FPS and per-stage milliseconds are drawn on top.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack

import numpy as np

from edgedino.errors import EdgeDinoError

WINDOW = "edgedino segment"
EXAMPLES = """examples:
  edgedino head samples --task segment --out data/shapes
  edgedino head train --task segment --data data/shapes --model vits16 --head mlp --out shapes.pth
  edgedino export --head shapes.pth --target onnx --out exports/
  python apps/segment.py --model exports/vits16_segment_224_fp32.onnx --source 0
  python apps/segment.py --model vits16_segment_224_int8.tflite --source data/shapes/images --headless \\
      --save masks.mp4 --json coverage.jsonl
keys: space pause, s snapshot (PNG in the current folder), q or Esc quit.
exit status: 0 done, 1 the source failed mid-way (after retries), 2 bad input (model without a segment head,
source)."""


def segment(runtime, rgb: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The frame's (H, W) class-index mask and the per-stage ms."""
    from edgedino.runtime.head import segment_mask

    feats = runtime.features(rgb)
    t0 = time.perf_counter()
    mask = segment_mask(feats.logits[0], rgb.shape[:2])
    return mask, {**feats.ms, "mask": (time.perf_counter() - t0) * 1e3}


def draw(rgb: np.ndarray, mask: np.ndarray, classes: tuple[str, ...], colors: np.ndarray, alpha: float,
         fps: float, ms: dict[str, float]) -> np.ndarray:
    """The frame tinted by class, a legend of the classes present, FPS and stage times (BGR)."""
    import cv2

    from edgedino.runtime.head import overlay

    bgr = cv2.cvtColor(overlay(rgb, mask, colors, alpha), cv2.COLOR_RGB2BGR)

    def text(s: str, x: int, y: int) -> None:
        for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(bgr, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, width, cv2.LINE_AA)

    for row, c in enumerate(np.unique(mask)):
        y = 20 + 20 * row
        cv2.rectangle(bgr, (8, y - 11), (20, y + 1), tuple(int(v) for v in colors[c][::-1]), -1)
        text(classes[c], 26, y)
    text(f"{fps:.1f} FPS  " + " ".join(f"{k} {v:.1f}ms" for k, v in ms.items()), 8, bgr.shape[0] - 10)
    return bgr


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgedino.atomic import atomic_path
    from edgedino.runtime import load
    from edgedino.runtime.head import palette, require_head
    from edgedino.runtime.source import FrameSource

    if not 0 <= args.alpha <= 1:
        raise EdgeDinoError("--alpha must be between 0 and 1")
    runtime = load(args.model, args.threads)
    classes = require_head(runtime.metadata, runtime.path.name, "segment").classes
    colors = palette(len(classes))
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    if not args.headless:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    frames, writer, jsonl, paused, fps = source.frames(), None, None, False, 0.0
    count, seconds, totals, cover = 0, 0.0, {}, np.zeros(len(classes))
    with ExitStack() as stack:
        stack.callback(frames.close)
        if args.json:
            jsonl = stack.enter_context(open(stack.enter_context(atomic_path(args.json)), "w"))
        t_read = time.perf_counter()
        try:
            for frame in frames:
                read_ms = (time.perf_counter() - t_read) * 1e3
                mask, ms = segment(runtime, frame.rgb)
                ms = {"read": read_ms, **ms}
                view = draw(frame.rgb, mask, classes, colors, args.alpha, fps, ms)
                if args.save and writer is None:
                    writer = cv2.VideoWriter(str(stack.enter_context(atomic_path(args.save))),
                                             cv2.VideoWriter_fourcc(*"mp4v"), source.fps or 25.0, view.shape[1::-1])
                    if not writer.isOpened():
                        raise EdgeDinoError(f"cannot write video {args.save} (OpenCV has no mp4v encoder for it)")
                    stack.callback(writer.release)
                if writer is not None:
                    writer.write(view)
                share = np.bincount(mask.ravel(), minlength=len(classes)) / mask.size
                if jsonl is not None:
                    jsonl.write(json.dumps({"frame": frame.index, "t": round(frame.t, 4), "coverage": {
                        classes[c]: round(float(s), 4) for c, s in enumerate(share) if s > 0}}) + "\n")
                elapsed = time.perf_counter() - t_read
                count, seconds, cover = count + 1, seconds + elapsed, cover + share
                totals = {k: totals.get(k, 0.0) + v for k, v in ms.items()}
                fps = 1 / elapsed if count == 1 else 0.9 * fps + 0.1 / max(elapsed, 1e-6)
                while not args.headless:
                    cv2.imshow(WINDOW, view)
                    key = cv2.waitKey(0 if paused else 1) & 0xFF
                    if key in (ord("q"), 27):
                        return finish(count, seconds, totals, classes, cover, 0)
                    if key == ord("s"):
                        cv2.imwrite(f"segment_{frame.index:05d}.png", view)
                        print(f"saved segment_{frame.index:05d}.png", file=sys.stderr)
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
    return finish(count, seconds, totals, classes, cover, 1 if source.failure else 0)


def finish(count: int, seconds: float, totals: dict[str, float], classes: tuple[str, ...], cover: np.ndarray,
           status: int) -> int:
    """Print frames, FPS, mean ms per stage and each class's mean share of the pixels; pass the status through."""
    print(f"{count} frames in {seconds:.1f} s: {count / max(seconds, 1e-9):.1f} FPS end to end", file=sys.stderr)
    print(f"{'stage':<11}{'mean ms':>8}", file=sys.stderr)
    for k, v in totals.items():
        print(f"{k:<11}{v / max(count, 1):8.1f}", file=sys.stderr)
    shares = ", ".join(f"{n} {s / max(count, 1):.0%}" for n, s in zip(classes, cover, strict=True))
    print(f"pixels per class: {shares}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apps/segment.py", description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an artifact exported with a segment head "
                   "(.onnx, .xml, .tflite, .mlpackage on macOS)")
    p.add_argument("--source", default="0", help="camera index, video file, rtsp:// or http:// URL, or image folder "
                   "(default: 0, the first camera)")
    p.add_argument("--alpha", type=float, default=0.5, help="mask opacity, 0-1 (default 0.5)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--save", metavar="MP4", help="write the annotated video (mp4v)")
    p.add_argument("--json", metavar="JSONL", help="write one line per frame: frame, t, coverage {class: share}")
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
        print(f"segment: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
