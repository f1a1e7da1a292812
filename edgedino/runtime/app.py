"""What the live apps (edgedino.apps) share: their common flags, outputs, window keys, timing summary and error exit.
Torch-free: numpy and OpenCV only, so the apps run on a device with `edgedino[runtime]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgedino.argtypes import at_least, seconds
from edgedino.errors import EdgeDinoError
from edgedino.flags import add_flag
from edgedino.runtime.source import Frame, FrameSource
from edgedino.version import __version__


def app_parser(prog: str, description: str, examples: str, model_help: str) -> argparse.ArgumentParser:
    """The parser with the app's description and examples, --model and --source (every app reads frames alike)."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=examples,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-V", "--version", action="version", version=f"{prog} (edgedino {__version__})")
    add_flag(p, "--model", model_help, required=True)
    add_flag(p, "--source", "a camera index, video file, rtsp:// or http:// URL, or image folder (default: 0, the "
             "first camera)", default="0")
    return p


def add_run_args(p: argparse.ArgumentParser, save_help: str, json_help: str | None = None,
                 headless_help: str = "") -> None:
    """--threads, --save, --json (when the app writes one), --headless, --max-frames, --timeout, --retries."""
    add_flag(p, "--threads", "default: the runtime's choice", type=at_least(1))
    add_flag(p, "--save", save_help, metavar="MP4")
    if json_help:
        add_flag(p, "--json", "each line: frame, t (seconds into a video file, else since the source opened), "
                 + json_help, metavar="JSONL")
    add_flag(p, "--headless", headless_help, action="store_true")
    add_flag(p, "--max-frames", "default: at the source's end", type=at_least(1))
    add_flag(p, "--timeout", "default: 10", type=seconds, default=10.0)
    add_flag(p, "--retries", "default: 3", type=at_least(0), default=3)


@dataclass
class RunStats:
    """Frames, seconds and per-stage milliseconds summed over a run, and an FPS for the overlay (moving average)."""

    frames: int = 0
    seconds: float = 0.0
    ms: dict[str, float] = field(default_factory=dict)
    fps: float = 0.0

    def add(self, ms: dict[str, float], seconds: float) -> None:
        """Count one frame that took `seconds` end to end, with its per-stage ms."""
        self.frames += 1
        self.seconds += seconds
        for k, v in ms.items():
            self.ms[k] = self.ms.get(k, 0.0) + v
        fps = 1 / max(seconds, 1e-6)
        self.fps = fps if self.frames == 1 else 0.9 * self.fps + 0.1 * fps

    def summary(self, subject: str | None = None) -> str:
        """End-of-run table: '<subject> in S s: F FPS end to end', then the mean ms of each stage."""
        fps = self.frames / self.seconds if self.seconds else 0.0
        rows = [f"{k:<11}{v / max(self.frames, 1):8.1f}" for k, v in self.ms.items()]
        head = f"{subject or f'{self.frames} frames'} in {self.seconds:.1f} s: {fps:.1f} FPS end to end"
        return "\n".join([head, f"{'stage':<11}{'mean ms':>8}", *rows])


class Outputs:
    """The --save video (opened at the first frame's size) and the --json lines, each renamed into place at the end;
    each line carries the schema_version of `schema` (an output named in edgedino.schemas; None for an app with no
    --json)."""

    def __init__(self, stack: ExitStack, save: str | None, jsonl: str | None, fps: float, schema: str | None,
                 inputs: tuple = ()):
        from edgedino.atomic import atomic_path, check_output

        for path in (save, jsonl):
            if path:
                check_output(path, inputs=inputs)
        self.stack, self.save, self.fps, self.video, self.schema = stack, save, fps or 25.0, None, schema
        self.jsonl = stack.enter_context(open(stack.enter_context(atomic_path(jsonl)), "w")) if jsonl else None

    def write(self, bgr: np.ndarray, record: dict | None = None) -> None:
        """Append a frame to the video and its record as one JSON line (each only when asked for)."""
        import cv2

        from edgedino.atomic import atomic_path
        from edgedino.schemas import stamp

        if self.save and self.video is None:
            path = self.stack.enter_context(atomic_path(self.save))
            self.video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, bgr.shape[1::-1])
            if not self.video.isOpened():
                raise EdgeDinoError(f"cannot write video {self.save} (OpenCV has no mp4v encoder for it)")
            self.stack.callback(self.video.release)
        if self.video is not None:
            self.video.write(bgr)
        if self.jsonl is not None and record is not None:
            self.jsonl.write(json.dumps(stamp(self.schema, record)) + "\n")


def has_display() -> bool:
    """Whether a window can open: on Linux and BSD an X server (a DISPLAY whose local socket exists) or Wayland;
    elsewhere (macOS, Windows) the desktop is assumed. Checked before OpenCV tries, because Qt aborts the process
    (exit 134, "could not connect to display") where it finds none."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True
    if os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY", "")
    host, _, number = display.rpartition(":")
    if not number:
        return False
    return bool(host) or Path(f"/tmp/.X11-unix/X{number.split('.')[0]}").exists()


def open_window(name: str) -> None:
    """A window sized to the frames, without OpenCV's toolbar."""
    import cv2

    cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)


def show(window: str, bgr: np.ndarray, snapshot: str, paused: bool, keys: str = "") -> tuple[str | None, bool]:
    """Show a frame and read keys (all of them while paused): 'quit', one of `keys`, or None; and the pause state.
    s saves what is on screen as the PNG `snapshot` in the current folder; space toggles the pause."""
    import cv2

    while True:
        cv2.imshow(window, bgr)
        key = cv2.waitKey(0 if paused else 1) & 0xFF
        if key in (ord("q"), 27):
            return "quit", paused
        if chr(key) in keys:
            return chr(key), paused
        if key == ord("s"):
            cv2.imwrite(snapshot, bgr)
            print(f"saved {snapshot}", file=sys.stderr)
        paused = paused != (key == 32)
        if not paused:
            return None, paused


Step = Callable[[Frame, float, float], tuple[np.ndarray, dict[str, float], dict | None]]


def run_frames(args: argparse.Namespace, source: FrameSource, window: str, step: Step,
               schema: str | None = None) -> tuple[RunStats, int]:
    """Read, process (`step(frame, read_ms, fps)` -> view, ms, JSON record of output `schema`), save and show every
    frame until the source ends, q/Esc or --max-frames; print the summary; the stats and exit status (1: source
    failed mid-way)."""
    if not args.headless:
        open_window(window)
    stats, paused, frames = RunStats(), False, source.frames()
    with ExitStack() as stack:
        stack.callback(frames.close)
        outputs = Outputs(stack, args.save, getattr(args, "json", None), source.fps, schema, (args.source, args.model))
        t_read = time.perf_counter()
        try:
            for frame in frames:
                view, ms, record = step(frame, (time.perf_counter() - t_read) * 1e3, stats.fps)
                outputs.write(view, record)
                stats.add(ms, time.perf_counter() - t_read)
                if not args.headless:
                    action, paused = show(window, view, f"{window.split()[-1]}_{frame.index:05d}.png", paused)
                    if action == "quit":
                        print(stats.summary(), file=sys.stderr)
                        return stats, 0
                if args.max_frames and stats.frames >= args.max_frames:
                    break
                t_read = time.perf_counter()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        if stats.frames == 0:
            raise EdgeDinoError(f"{args.source} gave no frame")
    print(stats.summary(), file=sys.stderr)
    return stats, 1 if source.failure else 0


def run_main(name: str, parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
             argv: list[str] | None, headless_hint: str = "") -> int:
    """Parse the flags and run; a bad input (EdgeDinoError) becomes '<name>: error: ...' and exit status 2, and so
    does a window asked for where there is no display ('use --headless' and the app's `headless_hint`)."""
    from edgedino.flags import expand_key_values, store_once, warn_deprecated

    argv = expand_key_values(parser, list(sys.argv[1:] if argv is None else argv))
    args = store_once(parser).parse_args(argv)
    warn_deprecated(parser, argv, parser.prog)
    try:
        if not args.headless and not has_display():
            raise EdgeDinoError(f"no display: use --headless{headless_hint}")
        return run(args)
    except EdgeDinoError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
