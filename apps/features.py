#!/usr/bin/env python3
"""Live view of dense DINO features: the first three principal components of the patch features as RGB
(the "DINO rainbow"), side by side with the frame, from any artifact edgedino exports. Torch-free.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

from edgedino.errors import EdgeDinoError

if TYPE_CHECKING:
    import numpy as np

WINDOW = "edgedino features"
EXAMPLES = """examples:
  python apps/features.py --model exports/vits16_int8.xml --source 0
  python apps/features.py --model vits16.onnx --source clip.mp4 --headless --save pca.mp4 --max-frames 100
keys: space pause, s snapshot (PNG in the current folder), q or Esc quit.
Each frame gets its own PCA, so colours may swap between frames; parts of one object share a colour within a frame.
exit status: 0 done, 1 the source failed mid-way (after retries), 2 bad input (model, source)."""


def feature_view(runtime, rgb: np.ndarray, short_side: int | None) -> tuple[np.ndarray, dict[str, float]]:
    """The frame and its PCA picture side by side (BGR), and the per-stage ms of making it."""
    import cv2

    from edgedino.viz import pca_rgb, side_by_side

    feats = runtime.features(rgb, short_side)
    t0 = time.perf_counter()
    view = cv2.cvtColor(side_by_side(rgb, pca_rgb(feats.patch_tokens[0])), cv2.COLOR_RGB2BGR)
    return view, {**feats.ms, "pca": (time.perf_counter() - t0) * 1e3}


def caption(bgr: np.ndarray, fps: float, ms: dict[str, float]) -> None:
    """FPS and per-stage ms in the top-left corner, outlined so it reads on any background."""
    import cv2

    text = f"{fps:.1f} FPS  " + " ".join(f"{k} {v:.1f}ms" for k, v in ms.items())
    for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(bgr, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, width, cv2.LINE_AA)


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgedino.atomic import atomic_path
    from edgedino.runtime import load
    from edgedino.runtime.source import FrameSource

    runtime = load(args.model, args.threads)
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    if not args.headless:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    frames, writer, paused, fps = source.frames(), None, False, 0.0
    count, seconds, totals = 0, 0.0, {}
    with ExitStack() as stack:
        stack.callback(frames.close)
        t_read = time.perf_counter()
        try:
            for frame in frames:
                read_ms = (time.perf_counter() - t_read) * 1e3
                view, ms = feature_view(runtime, frame.rgb, args.short_side)
                ms = {"read": read_ms, **ms}
                caption(view, fps, ms)
                if args.save and writer is None:
                    path = stack.enter_context(atomic_path(args.save))
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), source.fps or 25.0,
                                             view.shape[1::-1])
                    if not writer.isOpened():
                        raise EdgeDinoError(f"cannot write video {args.save} (OpenCV has no mp4v encoder for it)")
                    stack.callback(writer.release)
                if writer is not None:
                    writer.write(view)
                elapsed = time.perf_counter() - t_read
                count, seconds = count + 1, seconds + elapsed
                totals = {k: totals.get(k, 0.0) + v for k, v in ms.items()}
                fps = 1 / elapsed if count == 1 else 0.9 * fps + 0.1 / max(elapsed, 1e-6)
                while not args.headless:
                    cv2.imshow(WINDOW, view)
                    key = cv2.waitKey(0 if paused else 1) & 0xFF
                    if key in (ord("q"), 27):
                        return finish(count, seconds, totals, 0)
                    if key == ord("s"):
                        cv2.imwrite(f"features_{frame.index:05d}.png", view)
                        print(f"saved features_{frame.index:05d}.png", file=sys.stderr)
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
    return finish(count, seconds, totals, 1 if source.failure else 0)


def finish(count: int, seconds: float, totals: dict[str, float], status: int) -> int:
    """Print the summary (frames, FPS, mean ms per stage) and pass the exit status through."""
    print(f"{count} frames in {seconds:.1f} s: {count / max(seconds, 1e-9):.1f} FPS end to end", file=sys.stderr)
    print(f"{'stage':<11}{'mean ms':>8}", file=sys.stderr)
    for k, v in totals.items():
        print(f"{k:<11}{v / max(count, 1):8.1f}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apps/features.py", description=__doc__.strip(), epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="an exported artifact (.onnx, .xml, .tflite, .mlpackage on macOS), "
                   "or a .pth checkpoint when PyTorch is installed")
    p.add_argument("--source", default="0", help="camera index, video file, rtsp:// or http:// URL, or image folder "
                   "(default: 0, the first camera)")
    p.add_argument("--short-side", type=int, help="frame short side fed to the backbone; default: the artifact's "
                   "export size (fixed-size artifacts), else 224")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--save", metavar="MP4", help="write the side-by-side video (mp4v)")
    p.add_argument("--headless", action="store_true", help="no window (devices without a screen)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds without a frame before the source counts "
                   "as stalled (default: 10)")
    p.add_argument("--retries", type=int, default=3, help="times a failed or stalled source is reopened before "
                   "giving up (default: 3)")
    return p


def main(argv: list[str] | None = None) -> int:
    # One BLAS thread, set before numpy loads: numpy's small matrix work (propagation, PCA) would otherwise start
    # a thread per core and fight the backbone's runtime for them (2 cores: propagation 39 ms instead of 76 ms).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EdgeDinoError as e:
        print(f"features: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
