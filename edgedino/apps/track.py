"""Live object tracking with dense DINO features, from any artifact edgedino exports. Torch-free.

The first mask (a dragged box, clicked points, --box or --mask) is followed frame to frame by label propagation
over the backbone's patch features (edgedino.track.Tracker), drawn over the video with box, id, confidence,
LOST, FPS and per-stage milliseconds.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

from edgedino.errors import EdgeDinoError

if TYPE_CHECKING:
    import numpy as np

WINDOW = "edgedino track"
EXAMPLES = """examples:
  edgedino export --target openvino --precision int8 --out exports/   # no --weights: the demo model, not DINOv3
  edgedino-track --model exports/demo-vit8_224_int8.xml --source 0
  edgedino-track --model exports/vits16_int8.xml --source 0
      camera 0; drag a box around the object, Enter to start (several boxes: Enter after each, Esc to finish)
  edgedino-track --model vits16_int8.tflite --source clip.mp4 --init points
      click points on the object (n: next object, Enter: start)
  edgedino-track --model vits16.onnx --source rtsp://192.168.1.20/stream --box 120,80,60,140 --box 2:300,90,50,50
  edgedino-track --model vits16.onnx --source frames/ --mask first.png --headless \\
      --save out.mp4 --json tracks.jsonl
keys: r re-initialise, space pause, s snapshot (PNG in the current folder), q or Esc quit.
exit status: 0 done, 1 the source failed mid-way (after retries), 2 bad input (model, source, box, mask)."""


def parse_box(text: str, default_id: int) -> tuple[int, tuple[int, int, int, int]]:
    """'x,y,w,h' or 'ID:x,y,w,h' -> (id, box)."""
    m = re.fullmatch(r"\s*(?:(\d+)\s*:)?\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
    if not m:
        raise EdgeDinoError(f"--box {text!r} is not x,y,w,h or ID:x,y,w,h (pixels, e.g. 120,80,60,140)")
    x, y, w, h = (int(v) for v in m.groups()[1:])
    if w <= 0 or h <= 0:
        raise EdgeDinoError(f"--box {text!r} has zero width or height")
    return int(m[1] or default_id), (x, y, w, h)


def parse_boxes(texts: list[str], frame_hw: tuple[int, int]) -> dict[int, tuple[int, int, int, int]]:
    """Every --box, checked to lie inside the frame; ids default to 1, 2, ... in order."""
    boxes = dict(parse_box(t, i + 1) for i, t in enumerate(texts))
    if len(boxes) != len(texts):
        raise EdgeDinoError("two --box flags use the same object id")
    fh, fw = frame_hw
    for i, (x, y, w, h) in boxes.items():
        if not 1 <= i <= 255 or x < 0 or y < 0 or x + w > fw or y + h > fh:
            raise EdgeDinoError(f"box {i}: {x},{y},{w},{h} is not inside the {fw}x{fh} frame (or id not in 1..255)")
    return boxes


def read_mask(path: str, frame_hw: tuple[int, int]) -> np.ndarray:
    """An id mask from a palette PNG (DAVIS) or a grey PNG whose values are ids, at the frame's size: one of another
    size but the frame's shape is scaled to it (with a note), one of another shape is refused."""
    import cv2

    from edgedino.track.palette import read_indexed_png

    mask = read_indexed_png(path)
    (mh, mw), (fh, fw) = mask.shape[:2], frame_hw
    if (mh, mw) != (fh, fw):
        sizes = f"{path} is {mw}x{mh}, the frames are {fw}x{fh}"
        if abs(mh * fw / mw - fh) > 1:
            raise EdgeDinoError(f"{sizes}: a mask of another shape cannot mark the same objects; give one of the "
                                "frame's size")
        print(f"note: {sizes}: the mask is scaled to the frame (nearest neighbour)", file=sys.stderr)
        mask = cv2.resize(mask, (fw, fh), interpolation=cv2.INTER_NEAREST)
    if not mask.any():
        raise EdgeDinoError(f"{path}: the mask has no object (every pixel is 0)")
    return mask


def select_boxes(bgr: np.ndarray) -> dict[int, tuple[int, int, int, int]]:
    """Drag boxes in the window (cv2.selectROIs): Enter or space after each, Esc when done."""
    import cv2

    print("drag a box around each object, Enter after each box, Esc when done", file=sys.stderr)
    rois = cv2.selectROIs(WINDOW, bgr, showCrosshair=False)
    boxes = {i + 1: tuple(int(v) for v in r) for i, r in enumerate(rois) if r[2] > 0 and r[3] > 0}
    if not boxes:
        raise EdgeDinoError("no box was drawn")
    return boxes


def select_points(bgr: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    """Click points on each object: n starts the next object, Enter starts tracking, Esc cancels."""
    import cv2

    from edgedino.track.palette import davis_palette

    points: dict[int, list[tuple[int, int]]] = {1: []}
    cv2.setMouseCallback(WINDOW, lambda ev, x, y, *_: ev == cv2.EVENT_LBUTTONDOWN and points[max(points)].append(
        (x, y)))
    print("click points on the object; n: next object, Enter: start, Esc: cancel", file=sys.stderr)
    while True:
        view = bgr.copy()
        for i, pts in points.items():
            colour = tuple(int(c) for c in davis_palette()[i][::-1])
            for p in pts:
                cv2.circle(view, p, 5, colour, -1)
        cv2.imshow(WINDOW, view)
        key = cv2.waitKey(30) & 0xFF
        if key in (13, 10, 32):
            break
        if key == 27:
            raise EdgeDinoError("point selection cancelled")
        if key == ord("n") and points[max(points)]:
            points[max(points) + 1] = []
    cv2.setMouseCallback(WINDOW, lambda *_: None)
    points = {i: p for i, p in points.items() if p}
    if not points:
        raise EdgeDinoError("no point was clicked")
    return points


def initial_mask(args, tracker, rgb: np.ndarray, ask: bool = False) -> np.ndarray:
    """The first id mask: --mask or --box, else (or when `ask`, on r) a box dragged or points clicked in the window."""
    import cv2

    if args.mask and not ask:
        return read_mask(args.mask, rgb.shape[:2])
    if args.box and not ask:
        return tracker.mask_from_boxes(rgb, parse_boxes(args.box, rgb.shape[:2]), refine=not args.no_refine)
    if args.headless:
        raise EdgeDinoError("--headless needs --box or --mask to know what to track")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if args.init == "points":
        return tracker.mask_from_points(rgb, select_points(bgr))
    return tracker.mask_from_boxes(rgb, select_boxes(bgr), refine=not args.no_refine)


def objects_record(index: int, t: float, result) -> dict:
    """One JSONL record: frame index, time, and per object its id, box, area, confidence and lost state."""
    objs = [{"id": o.id, "box": list(o.box) if o.box else None, "area": o.area,
             "confidence": round(o.confidence, 4), "lost": o.lost} for o in result.objects]
    return {"frame": index, "t": round(t, 4), "objects": objs}


def lost_since(result, index: int, since: int | None) -> int | None:
    """The first frame of the current run of frames on which every object is lost (None while one is tracked)."""
    if not result.objects or not all(o.lost for o in result.objects):
        return None
    return index if since is None else since


def run(args: argparse.Namespace) -> int:
    import cv2

    from edgedino.caption import RANDOM_WEIGHTS
    from edgedino.runtime import load
    from edgedino.runtime.app import Outputs, RunStats, open_window, show
    from edgedino.runtime.source import FrameSource
    from edgedino.track import Tracker, TrackParams
    from edgedino.track.draw import draw_tracks

    if args.box and args.mask:
        raise EdgeDinoError("give --box or --mask, not both")
    tracker = Tracker(load(args.model, args.threads), TrackParams(protocol=args.protocol), short_side=args.short_side)
    note = RANDOM_WEIGHTS if tracker.runtime.random_weights else None
    source = FrameSource(args.source, timeout=args.timeout, retries=args.retries)
    frames = source.frames()
    frame = next(frames, None)
    if frame is None:
        raise EdgeDinoError(f"{args.source} gave no frame")
    if not args.headless:
        open_window(WINDOW)
    result = tracker.start(frame.rgb, initial_mask(args, tracker, frame.rgb))
    stats, paused, count, t_read, write, all_lost = RunStats(), False, 1, None, True, None
    with ExitStack() as stack:
        stack.callback(frames.close)
        outputs = Outputs(stack, args.save, args.json, source.fps, "track-jsonl", (args.source, args.model, args.mask))
        try:
            while True:
                t0 = time.perf_counter()
                bgr = draw_tracks(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), result, stats.fps or None, result.ms,
                                  note)
                t1 = time.perf_counter()
                if write:
                    outputs.write(bgr, objects_record(frame.index, frame.t, result))
                t2 = time.perf_counter()
                action = None
                if not args.headless:
                    action, paused = show(WINDOW, bgr, f"snapshot_{frame.index:05d}.png", paused, keys="r")
                if t_read is not None:  # the first frame's time is initialisation, not tracking
                    t3 = time.perf_counter() if not paused else t2
                    stats.add({**result.ms, "draw": (t1 - t0) * 1e3, "output": (t3 - t1) * 1e3}, t3 - t_read)
                    t_read = None
                if action == "quit" or (args.max_frames and count >= args.max_frames):
                    break
                if action == "r":
                    try:
                        result = tracker.start(frame.rgb, initial_mask(args, tracker, frame.rgb, ask=True))
                        all_lost = None
                    except EdgeDinoError as e:
                        print(f"re-initialisation skipped: {e}", file=sys.stderr)
                    write = False  # the same frame is drawn again with the new objects, not written twice
                    continue
                t_read = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                read_ms = (time.perf_counter() - t_read) * 1e3
                result = tracker.step(frame.rgb)
                result.ms = {"read": read_ms, **result.ms}
                all_lost = lost_since(result, frame.index, all_lost)
                count, write = count + 1, True
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
    print(stats.summary(f"tracked {stats.frames} frames after the first"), file=sys.stderr)
    if all_lost is not None:
        print(f"every object was lost from frame {all_lost} to the end (mark them again: r in the window, or a new "
              "--box or --mask)", file=sys.stderr)
    return 1 if source.failure else 0


def build_parser() -> argparse.ArgumentParser:
    from edgedino.argtypes import at_least
    from edgedino.flags import add_flag
    from edgedino.runtime.app import add_run_args, app_parser
    from edgedino.track.protocol import PROTOCOLS

    p = app_parser("edgedino-track", __doc__.split("\n\n")[0], EXAMPLES, "an exported artifact (.onnx, .xml, .tflite, "
                   ".mlpackage on macOS), or a .pth checkpoint when PyTorch is installed")
    p.add_argument("--box", action="append", metavar="[ID:]X,Y,W,H", help="an object's box in first-frame pixels; "
                   "repeat for several objects (ids 1, 2, ... unless given)")
    p.add_argument("--mask", metavar="PNG", help="first-frame id mask: a palette PNG (DAVIS) or a grey PNG whose "
                   "values are object ids, 0 = background")
    p.add_argument("--init", choices=("box", "points"), default="box", help="how to mark objects in the window "
                   "when neither --box nor --mask is given: drag boxes, or click points (default: box)")
    p.add_argument("--no-refine", action="store_true", help="use boxes as they are instead of keeping the pixels "
                   "whose features look like the box's inside")
    add_flag(p, "--short-side", "default: the artifact's export size (fixed-size artifacts), else 224: there "
             "ViT-S/16 int8 (OpenVINO, 2 threads) takes 11 ms a frame on a 2-core Xeon, 60 ms at 448 "
             "(benchmarks/results/intel-xeon-2c)", type=at_least(1))
    add_flag(p, "--protocol", "dinov3 costs more per frame", default="edgedino", choices=list(PROTOCOLS))
    add_run_args(p, "the annotated video (mp4v)", "objects "
                 "[{id, box [x,y,w,h], area, confidence, lost}]", "needs --box or --mask")
    return p


def main(argv: list[str] | None = None) -> int:
    from edgedino.runtime.app import run_main

    return run_main("track", build_parser(), run, argv, " (with --box or --mask)")


if __name__ == "__main__":
    sys.exit(main())
