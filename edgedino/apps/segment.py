"""Live semantic segmentation with a DINO backbone + head exported as one artifact (edgedino export --head).
Torch-free.

The head's patch-grid logits are upsampled to the frame (bilinear), and each pixel is tinted with its class
colour (a class named "background" is left unpainted); a legend, FPS and per-stage milliseconds are drawn on top.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from edgedino.caption import RANDOM_WEIGHTS, Label, TextStyle, draw_labels, fit, noted, stack, stats_lines
from edgedino.errors import EdgeDinoError
from edgedino.runtime.app import add_run_args, app_parser, run_main

WINDOW = "edgedino segment"
EXAMPLES = """examples:
  edgedino head samples --task segment --out data/shapes
  edgedino head train --task segment --data data/shapes --model vits16 --head mlp --out shapes.pth
  edgedino export --head shapes.pth --target onnx --out exports/
  edgedino-segment --model exports/vits16_segment_224_fp32.onnx --source 0
  edgedino-segment --model vits16_segment_224_int8.tflite --source data/shapes/images --headless \\
      --save masks.mp4 --json coverage.jsonl
keys: space pause, s snapshot (PNG in the current folder), q or Esc quit.
exit status: 0 done, 1 the source failed mid-way (after retries), 2 bad input (model without a segment head,
source)."""


def segment(runtime, rgb: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The frame's (H, W) class-index mask and the per-stage ms."""
    from edgedino.runtime.task_head import segment_mask

    feats = runtime.features(rgb)
    t0 = time.perf_counter()
    mask = segment_mask(feats.logits[0], rgb.shape[:2])
    return mask, {**feats.ms, "mask": (time.perf_counter() - t0) * 1e3}


def legend_labels(present: list[int], classes: tuple[str, ...], colors: np.ndarray, fps: float | None,
                  ms: dict[str, float], frame_hw: tuple[int, int], note: str | None = None) -> list[Label]:
    """Where each text goes: a legend of the classes present (with their colours) at the top left, FPS and stage
    times wrapped at the bottom, `note` (the random-weights warning) at the bottom right."""
    style = TextStyle.for_frame(frame_hw)
    width = frame_hw[1] - 2 * style.pad
    legend = stack([fit(classes[c], width, style) for c in present], style, frame_hw, [],
                   swatches=[tuple(int(v) for v in colors[c][::-1]) for c in present])
    labels = legend + stack(stats_lines(fps, ms, width, style), style, frame_hw, legend, bottom=True)
    return noted(labels, note, style, frame_hw)


def draw(rgb: np.ndarray, mask: np.ndarray, classes: tuple[str, ...], colors: np.ndarray, alpha: float,
         fps: float | None, ms: dict[str, float], note: str | None = None) -> np.ndarray:
    """The frame tinted by class (the background class left unpainted), a legend of the painted classes present,
    FPS and stage times, and `note` (the random-weights warning) (BGR)."""
    import cv2

    from edgedino.runtime.task_head import background_class, overlay

    background = background_class(classes)
    bgr = cv2.cvtColor(overlay(rgb, mask, colors, alpha, background), cv2.COLOR_RGB2BGR)
    present = [int(c) for c in np.unique(mask) if c != background]
    return draw_labels(bgr, legend_labels(present, classes, colors, fps, ms, bgr.shape[:2], note))


def run(args: argparse.Namespace) -> int:
    from edgedino.runtime import load
    from edgedino.runtime.app import run_frames
    from edgedino.runtime.source import FrameSource
    from edgedino.runtime.task_head import palette, require_head

    if not 0 <= args.alpha <= 1:
        raise EdgeDinoError("--alpha must be between 0 and 1")
    runtime = load(args.model, args.threads)
    classes = require_head(runtime.metadata, runtime.path.name, "segment").classes
    colors = palette(len(classes))
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    cover = np.zeros(len(classes))
    note = RANDOM_WEIGHTS if runtime.random_weights else None

    def step(frame, read_ms: float, fps: float):
        nonlocal cover
        mask, ms = segment(runtime, frame.rgb)
        ms = {"read": read_ms, **ms}
        view = draw(frame.rgb, mask, classes, colors, args.alpha, fps, ms, note)
        share = np.bincount(mask.ravel(), minlength=len(classes)) / mask.size
        cover = cover + share
        return view, ms, {"frame": frame.index, "t": round(frame.t, 4), "coverage": {
            classes[c]: round(float(s), 4) for c, s in enumerate(share) if s > 0}}

    stats, status = run_frames(args, source, WINDOW, step, "segment-jsonl")
    shares = ", ".join(f"{n} {s / max(stats.frames, 1):.0%}" for n, s in zip(classes, cover, strict=True))
    print(f"pixels per class: {shares}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    p = app_parser("edgedino-segment", __doc__.split("\n\n")[0], EXAMPLES, "an artifact exported with a segment "
                   "head (.onnx, .xml, .tflite, .mlpackage on macOS)")
    p.add_argument("--alpha", type=float, default=0.5, help="mask opacity, 0-1 (default 0.5)")
    add_run_args(p, "the annotated video (mp4v)", "coverage {class: share}")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_main("segment", build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
