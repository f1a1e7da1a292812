"""The progress line of commands that embed many images (`embed`, `eval`): count, rate and time left, on stderr."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """'embedded 12/40 images, 3.1 img/s, ETA 0:09': redrawn in place on a terminal; otherwise (a log, a pipe) a new
    line each time another tenth is done, and at the end."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream, self.t0, self.tenths = total, stream or sys.stderr, time.perf_counter(), 0

    def update(self, done: int) -> None:
        """Show that `done` of the total images are embedded."""
        tty, tenths = self.stream.isatty(), done * 10 // max(self.total, 1)
        if not tty and tenths <= self.tenths and done != self.total:
            return
        self.tenths = tenths
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        eta = int((self.total - done) / rate) if rate > 0 else 0
        line = f"embedded {done}/{self.total} images, {rate:.1f} img/s, ETA {eta // 60}:{eta % 60:02d}"
        self.stream.write(("\r" + line + "\033[K" + ("\n" if done == self.total else "")) if tty else line + "\n")
        self.stream.flush()
