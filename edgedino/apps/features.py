"""Live view of dense DINO features: the first three principal components of the patch features as RGB
(the "DINO rainbow"), side by side with the frame, from any artifact edgedino exports. Torch-free.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

WINDOW = "edgedino features"
EXAMPLES = """examples:
  edgedino export --target onnx --out exports/     # no --weights: the shipped demo model (not DINOv3)
  edgedino-features --model exports/demo-vit8_224_fp32.onnx --source 0
  edgedino-features --model exports/vits16_int8.xml --source 0
  edgedino-features --model vits16.onnx --source clip.mp4 --headless --save pca.mp4 --max-frames 100
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


def caption(bgr: np.ndarray, fps: float | None, ms: dict[str, float], note: str | None = None) -> None:
    """FPS and per-stage ms at the top left, wrapped to the view, on dark boxes that read on any background; `note`
    (the random-weights warning) at the bottom right."""
    from edgedino.caption import TextStyle, draw_labels, noted, stack, stats_lines

    style = TextStyle.for_frame(bgr.shape[:2])
    stats = stack(stats_lines(fps, ms, bgr.shape[1] - 2 * style.pad, style), style, bgr.shape[:2], [])
    draw_labels(bgr, noted(stats, note, style, bgr.shape[:2]))


def run(args: argparse.Namespace) -> int:
    from edgedino.caption import RANDOM_WEIGHTS
    from edgedino.runtime import load
    from edgedino.runtime.app import run_frames
    from edgedino.runtime.source import FrameSource

    runtime = load(args.model, args.threads)
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    note = RANDOM_WEIGHTS if runtime.random_weights else None

    def step(frame, read_ms: float, fps: float):
        view, ms = feature_view(runtime, frame.rgb, args.short_side)
        ms = {"read": read_ms, **ms}
        caption(view, fps, ms, note)
        return view, ms, None

    return run_frames(args, source, WINDOW, step)[1]


def build_parser() -> argparse.ArgumentParser:
    from edgedino.argtypes import at_least
    from edgedino.flags import add_flag
    from edgedino.runtime.app import add_run_args, app_parser

    p = app_parser("edgedino-features", __doc__.strip(), EXAMPLES, "an exported artifact (.onnx, .xml, .tflite, "
                   ".mlpackage on macOS), or a .pth checkpoint when PyTorch is installed")
    add_flag(p, "--short-side", "default: the "
                   "artifact's export size (fixed-size artifacts), else 224", type=at_least(1))
    add_run_args(p, "the side-by-side video (mp4v)")
    return p


def main(argv: list[str] | None = None) -> int:
    from edgedino.runtime.app import run_main

    return run_main("features", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
