"""The run folder (--out): one run writes it at a time, staging folders that a killed run of ours left there are
removed, and a write that fails (a full disk) is a one-line error instead of a traceback."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgedino.errors import ConfigError, RunError


def check_out(out: Path) -> None:
    """--out must be a folder or not exist yet (a file there is the user's, not ours to replace)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder: give a folder for the run's files")


def _staging(name: str) -> re.Pattern:
    """A staging folder edgedino.atomic.atomic_path makes beside `name`: tempfile.mkdtemp(prefix=f".{name}.")."""
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}")


def clean_staging(out: Path, names: list[str]) -> list[Path]:
    """Remove the staging folders of `names` in `out` that a killed run left: a folder named as atomic_path names
    them, holding nothing or only the file being written. Call it only while holding the folder's lock."""
    removed = []
    for entry in out.iterdir():
        name = next((n for n in names if _staging(n).fullmatch(entry.name)), None)
        if name is None or entry.is_symlink() or not entry.is_dir():
            continue
        inside = list(entry.iterdir())
        if all(p.name == name and p.is_file() and not p.is_symlink() for p in inside):
            shutil.rmtree(entry)
            removed.append(entry)
    return removed


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
        for path in clean_staging(out, names):
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
