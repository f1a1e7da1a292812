"""Live frames from a camera, a video file, an RTSP/HTTP stream or an image folder. Torch-free.

Every read happens in a background thread and the caller waits on a queue with a timeout, so a camera that
unplugs or a stream that stalls gives a message, a few reopen attempts, then a clean end: never a hang.
"""

from __future__ import annotations

import atexit
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedino.errors import EdgeDinoError
from edgedino.runtime.frames import IMAGE_SUFFIXES
from edgedino.runtime.preprocess import check_image_file

_READERS: dict[threading.Thread, float] = {}  # reader threads still running -> how long to wait for them at exit


@atexit.register
def _join_readers() -> None:
    """Wait for reader threads still inside OpenCV before the interpreter ends: exiting under a thread that is in a
    capture call ends the process with SIGABRT ("terminate called without an active exception")."""
    for thread, limit in list(_READERS.items()):
        thread.join(limit)


@dataclass
class Frame:
    """One RGB uint8 (H, W, 3) frame; `t` is seconds into a video file, else seconds since the source opened."""

    rgb: np.ndarray
    t: float
    index: int


def source_kind(spec: str) -> str:
    """'camera' (an integer), 'stream' (a URL), 'folder' or 'video'; an error if it is none of them."""
    if spec.strip().isdigit():
        return "camera"
    if "://" in spec:
        return "stream"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "video"
    raise EdgeDinoError(f"source not found: {spec} (give a camera index, a video file, a URL or an image folder)")


def _open_capture(spec: str, kind: str, timeout: float):
    """A cv2.VideoCapture, with the backend's own open/read timeouts set for streams. OpenCV's own log is silenced
    while it probes its backends (a missing camera prints pages of warnings); our one-line message says what failed."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        if kind == "camera":
            return cv2.VideoCapture(int(spec))
        if kind == "stream":
            ms = int(timeout * 1000)
            return cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                            cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        return cv2.VideoCapture(spec)
    finally:
        cv2.utils.logging.setLogLevel(level)


class FrameSource:
    """Iterate `frames()`; `fps` is the source's nominal rate (0 when unknown), `failure` why it ended early."""

    def __init__(self, spec: str | int, timeout: float = 10.0, retries: int = 3,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0) or retries < 0:
            raise EdgeDinoError(f"timeout {timeout!r} must be a number of seconds > 0 and retries {retries!r} >= 0")
        self.spec, self.kind = str(spec), source_kind(str(spec))
        self.timeout, self.retries, self.log = timeout, retries, log
        self.fps = 0.0
        self.failure: str | None = None
        if self.kind == "folder":
            self._files = sorted(p for p in Path(self.spec).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise EdgeDinoError(f"{self.spec} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._stop = threading.Event()

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "stream")

    def frames(self) -> Iterator[Frame]:
        """Frames until the source ends, the caller stops, or it fails `retries` times in a row."""
        index, failures, start = 0, 0, time.monotonic()
        while not self._stop.is_set():
            items: queue.Queue = queue.Queue(maxsize=1 if self.live else 4)
            stop = threading.Event()
            reader = threading.Thread(target=self._read, args=(index, items, stop), daemon=True)
            _READERS[reader] = self.timeout + 5.0  # the backend's own timeouts free a stuck open or read
            reader.start()
            problem = None
            try:
                while problem is None:
                    try:
                        item = items.get(timeout=self.timeout)
                    except queue.Empty:
                        problem = f"no frame from {self.spec} for {self.timeout:g} s"
                        break
                    if item is None:
                        return
                    if isinstance(item, str):
                        problem = item
                        break
                    rgb, t_file = item
                    failures = 0
                    yield Frame(rgb, t_file if t_file is not None else time.monotonic() - start, index)
                    index += 1
            finally:
                stop.set()
                reader.join(self.timeout)  # bounded: the backend's own timeouts usually free a stuck read
            failures += 1
            retries = self.retries if self.live else 0  # a file or folder does not come back by reopening it
            if failures > retries:
                self.failure = problem + (f"; gave up after {retries} retries" if retries else "")
                if index == 0:
                    raise EdgeDinoError(f"cannot read {self.kind} {self.spec}: {self.failure}")
                self.log(f"source: {self.failure}")
                return
            self.log(f"source: {problem}; reopening ({failures}/{retries})")
            self._stop.wait(min(0.5 * failures, 2.0))

    def close(self) -> None:
        self._stop.set()

    def _read(self, start: int, items: queue.Queue, stop: threading.Event) -> None:
        """Reader thread: push (rgb, t) items from frame `start` on, then None at the end, or a str on failure."""
        try:
            reader = self._folder(start, stop) if self.kind == "folder" else self._capture(start, stop)
            for item in reader:
                self._put(items, item, stop)
                if isinstance(item, str):
                    return
            self._put(items, None, stop)
        except Exception as e:  # any reader failure becomes a message for the consumer, never a traceback
            self._put(items, f"{type(e).__name__}: {e}", stop)
        finally:
            _READERS.pop(threading.current_thread(), None)

    def _put(self, items: queue.Queue, item, stop: threading.Event) -> None:
        """Live sources keep only the newest frame (low latency); files and folders never drop one."""
        while not stop.is_set():
            if self.live and item is not None and not isinstance(item, str):
                try:
                    items.get_nowait()
                except queue.Empty:
                    pass
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _capture(self, start: int, stop: threading.Event):
        import cv2

        cap = _open_capture(self.spec, self.kind, self.timeout)
        try:
            if not cap.isOpened():
                yield f"cannot open {self.kind} {self.spec}"
                return
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            finite = self.kind == "video" or cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
            if start and finite:
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            while not stop.is_set():
                ok, bgr = cap.read()
                if not ok:
                    if not finite:
                        yield f"{self.kind} {self.spec} stopped sending frames"
                    return
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if finite else None
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t
        finally:
            cap.release()

    def _folder(self, start: int, stop: threading.Event):
        """Images in name order, each resized to the first one's size (trackers need one frame size)."""
        import cv2

        size = None
        for path in self._files[start:]:
            if stop.is_set():
                return
            try:
                check_image_file(path)
            except EdgeDinoError as e:
                self.log(f"source: skipping {e}")
                continue
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                self.log(f"source: skipping unreadable image {path}")
                continue
            size = size or (bgr.shape[1], bgr.shape[0])
            yield cv2.cvtColor(cv2.resize(bgr, size) if bgr.shape[1::-1] != size else bgr, cv2.COLOR_BGR2RGB), None
