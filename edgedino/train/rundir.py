"""The run folder (--out): one run writes it at a time, staging folders that a killed run of ours left there are
removed, and a write that fails (a full disk) is a one-line error instead of a traceback."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgedino.atomic import remove_stale_staging
from edgedino.errors import ConfigError, RunError


def check_out(out: Path) -> None:
    """--out must be a folder or not exist yet (a file there is the user's, not ours to replace)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder: give a folder for the run's files")


@contextmanager
def run_folder(out: Path, names: list[str], main: bool = True) -> Iterator[Path]:
    """Create `out` and hold its lock for the run (rank 0); other processes only check it."""
    check_out(out)
    if not main:
        yield out
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise ConfigError(f"cannot create the run folder {out}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another run is writing {out} now: wait for it, or use another --out") from None
        for path in remove_stale_staging(out, names):
            print(f"removed {path.name}, left in {out} by a run that was killed while writing", file=sys.stderr)
        yield out
    finally:
        os.close(fd)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """A failed write to `path` (no space left, a size limit, a read-only disk) as a RunError naming it."""
    try:
        yield
    except OSError as e:
        raise RunError(f"cannot write {path}: {e.strerror or e}") from None
