"""Atomic writes that never destroy what the user had.

An output is built under a temporary name beside its target and published in one step. A file replaces a
file by rename(2). A folder replaces a folder only when `ours(path)` recognises the old one as an earlier
output of ours (an .mlpackage edgedino exported), and then by an atomic exchange, so that a reader sees the
old folder or the new one, never nothing. Anything else in the way (a folder where a file is to go, a folder
that is not ours, one of the command's own inputs) is refused with an EdgeDinoError before any work is done.
The staging folder (`.<name>.XXXXXXXX`) is locked while in use (flock; not on Windows), so what a killed process
left is told from what a running one still writes, and is removed by the next write of the same output.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edgedino.errors import EdgeDinoError

try:
    import fcntl
except ImportError:  # Windows: no flock, so a killed process's staging folder is left for the user to remove
    fcntl = None

Recogniser = Callable[[Path], bool]  # True when an existing folder is an earlier output of ours


def check_output(path: str | os.PathLike, is_dir: bool = False, ours: Recogniser | None = None,
                 inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """`path` as a Path, or an EdgeDinoError if writing it would delete a folder, replace a folder that is not
    ours, or overwrite one of the command's `inputs`. Commands call it before their work starts."""
    path = Path(path).expanduser()
    for given in inputs:
        if given is not None and os.path.lexists(path) and _same_file(path, Path(given)):
            raise EdgeDinoError(f"{path} is also an input of this command: write the output to another name")
    if not os.path.lexists(path):
        _check_parent(path)
        return path
    if path.is_dir() and not is_dir:
        raise EdgeDinoError(f"{path} is a folder: give a file name for the output (edgedino never deletes a folder "
                            "to write a file)")
    if is_dir and not path.is_dir():
        raise EdgeDinoError(f"{path} exists and is not a folder: remove it or choose another name")
    if is_dir and (path.is_symlink() or ours is None or not ours(path)):
        raise EdgeDinoError(f"{path} exists and was not written by edgedino: refusing to replace it (remove it or "
                            "choose another name)")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_parent(path: Path) -> None:
    for parent in path.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise EdgeDinoError(f"cannot write {path}: {parent} is not a folder")
            return


def make_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; the ones created, outermost first (to remove if nothing is
    written)."""
    missing = []
    for parent in path.parents:
        if os.path.lexists(parent):
            break
        missing.append(parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeDinoError(f"cannot create the folder for {path}: {e.strerror or e}") from None
    return missing[::-1]


def remove_if_empty(folders: list[Path]) -> None:
    """Remove folders this command created and left empty, innermost first."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def disk_full(folder: str | os.PathLike, slack: int = 1 << 20) -> bool:
    """True when the filesystem of `folder` has (almost) no space left for us: the cause to name when a write
    failed with a converter's vague error."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < slack


def publish(src: Path, dst: Path, ours: Recogniser | None = None) -> None:
    """Move the finished file or folder `src` to `dst` in one step (see the module docstring)."""
    is_dir = src.is_dir()
    check_output(dst, is_dir, ours)
    if not is_dir:
        try:
            os.replace(src, dst)
        except IsADirectoryError:
            raise EdgeDinoError(f"{dst} is a folder: give a file name for the output") from None
        return
    if not os.path.lexists(dst):
        os.rename(src, dst)
        return
    exchange(src, dst)  # src now holds the old folder; the caller's staging clean-up removes it


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically: renameat2(RENAME_EXCHANGE) on Linux, renamex_np(RENAME_SWAP) on macOS.
    Elsewhere (or on a filesystem without it) `b` is moved aside first, which leaves a moment without it."""
    libc = ctypes.CDLL(None, use_errno=True)
    a_, b_ = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_exchange = -100, 2
        if libc.renameat2(at_fdcwd, a_, at_fdcwd, b_, rename_exchange) == 0:
            return
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        if libc.renamex_np(a_, b_, 0x2) == 0:
            return
    else:
        ctypes.set_errno(errno.ENOSYS)
    err = ctypes.get_errno()
    if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        raise OSError(err, os.strerror(err), str(b))
    aside = a.with_name(a.name + ".old")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _staging_name(name: str) -> re.Pattern:
    """The names staging(folder, name) gives: tempfile.mkdtemp(prefix=f".{name}.")."""
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}")


def _lock_name(name: str) -> str:
    """The lock file inside a staging folder: never the output's own name."""
    return f"{name}.staging-lock"


@contextmanager
def staging(folder: Path, name: str) -> Iterator[Path]:
    """A hidden folder beside the output `name` to build it in, removed at the end. While it lives, a lock file in
    it is held under an flock (the kernel drops it when the process dies, however it dies); the file gets its
    name only once locked, so a folder with that file and no lock is a dead process's. Where flock is missing
    (Windows) or refused (some network filesystems), no lock file is named and the folder is never taken for
    debris."""
    path = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
    fd = None
    try:
        if fcntl is not None:
            fd = os.open(path / ".lock-pending", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(path / ".lock-pending", path / _lock_name(name))
            except OSError:
                pass  # unlocked: left alone by remove_stale_staging, removed below as always
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if fd is not None:
            os.close(fd)


def remove_stale_staging(folder: Path, names: Iterable[str]) -> list[Path]:
    """Remove the staging folders of `names` in `folder` that a killed process left: named as staging() names
    them, holding its lock file, and that lock held by no live process (a folder of the user's that happens to
    match the name has no such file and is kept). The removed ones, for the caller to say so."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir()) if fcntl is not None else []
    except OSError:  # missing or unreadable: nothing to clean
        return removed
    for entry in entries:
        name = next((n for n in names if _staging_name(n).fullmatch(entry.name)), None)
        if name is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            fd = os.open(entry / _lock_name(name), os.O_RDWR | os.O_NOFOLLOW)
        except OSError:  # no lock file: not ours, or still being set up
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(entry)
            removed.append(entry)
        except OSError:  # locked: a live process is writing it
            continue
        finally:
            os.close(fd)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False, ours: Recogniser | None = None) -> Iterator[Path]:
    """Yield a temporary path to write a file (or folder) to; it is published at `path` only if the block
    succeeds. Folders the write had to create are removed again if it fails."""
    path = check_output(path, is_dir, ours)
    created = make_parents(path)
    published = False
    try:
        with staging(path.parent, path.name) as tmp:
            target = tmp / path.name
            if is_dir:
                target.mkdir()
            yield target
            publish(target, path, ours)
            published = True
    finally:
        if not published:
            remove_if_empty(created)
