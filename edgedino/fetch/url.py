"""Download links (Meta's emailed DINOv3 links): fetched once into a cache, resumed, checked, renamed into place.

The cache is torch.hub's checkpoints folder ($TORCH_HOME/hub/checkpoints), where torch.hub.load(..., weights=URL)
keeps the same files, so a file either tool fetched serves both. A download grows `<name>.partial` under an
exclusive lock; a dropped connection is resumed with an HTTP Range request (and so is a partial file left by an
interrupted run); the finished file is checked (not a web page, the size the server announced, the SHA-256 prefix
a release name carries) before it is renamed to its name. A file that fails a check is deleted: nothing
unchecked stays in the cache.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from edgedino.digest import check_name_hash
from edgedino.errors import CheckpointError

SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")
DOWNLOADS_PAGE = "https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/"
RETRIES = 3  # connections dropped mid-file are resumed this many times within one download
CHUNK = 1 << 20


def is_url(spec: str) -> bool:
    return urlparse(spec).scheme in ("http", "https")


def check_scheme(spec: str) -> None:
    """An error for a link of a scheme that is not downloaded (ftp://, file://): never read as a local path."""
    scheme = urlparse(spec).scheme
    if "://" in spec and scheme:
        raise CheckpointError(f"{spec}: {scheme}:// links are not supported: give an http(s) link or a local path")


def cache_dir() -> Path:
    """torch.hub's checkpoints folder, from $TORCH_HOME as torch.hub reads it."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def file_name(url: str) -> str:
    """The file name in the link's path (signed links carry their signature in the query, which is dropped)."""
    name = unquote(Path(urlparse(url).path).name)
    if not name.endswith(SUFFIXES):
        raise CheckpointError(f"{url}: the link does not name a weights file (expected a name ending in "
                              f"{', '.join(SUFFIXES)})")
    return name


def download(url: str, cache: Path | None = None) -> Path:
    """The cached file for `url`, downloaded first if it is not in the cache yet."""
    name = file_name(url)
    cache = cache or cache_dir()
    dest = cache / name
    if dest.is_file():
        check_name_hash(dest)
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"{name}.partial"
    with open(partial, "ab") as out:
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(f"another process is downloading {name} into {cache}: wait for it") from None
        if dest.is_file():  # it finished while we waited for the lock
            return dest
        try:
            _fetch(url, out, name)
        except CheckpointError as e:
            if out.tell() == 0 or "web page" in str(e):
                partial.unlink(missing_ok=True)
            raise
        _finish(partial, dest)
    return dest


def _fetch(url: str, out, name: str) -> None:
    """Append the rest of the file to `out`, resuming from its length; retried when a connection drops."""
    for attempt in range(RETRIES + 1):
        try:
            _stream(url, out, name)
            return
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, urllib.error.HTTPError) or attempt == RETRIES:
                raise _failure(e, url, name, out.tell()) from None
            print(f"\nconnection lost at {out.tell() / 1e6:.1f} MB ({type(e).__name__}); resuming", file=sys.stderr)
            time.sleep(0.5 * (attempt + 1))


def _stream(url: str, out, name: str) -> None:
    start = out.tell()
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=60) as r:
        if start and r.status != 206:  # the server ignored the range: start over
            out.seek(0)
            out.truncate()
            start = 0
        if "text/html" in r.headers.get("Content-Type", ""):
            raise CheckpointError(f"{url} returned a web page, not a weights file (an expired or mistyped link, or a "
                                  f"sign-in page): request a new link at {DOWNLOADS_PAGE}")
        length = r.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        shown = time.monotonic()
        while chunk := r.read(CHUNK):
            out.write(chunk)
            if time.monotonic() - shown > 0.5 or out.tell() == total:
                _progress(name, out.tell(), total)
                shown = time.monotonic()
        out.flush()
        if total is not None and out.tell() < total:
            raise ConnectionResetError(f"the server closed the connection at {out.tell()} of {total} bytes")
    print(file=sys.stderr)


def _progress(name: str, done: int, total: int | None) -> None:
    of = f" / {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else " MB"
    print(f"\rdownloading {name}: {done / 1e6:.1f}{of}", end="", file=sys.stderr, flush=True)


def _finish(partial: Path, dest: Path) -> None:
    """Check the finished download and rename it into place; a file that fails a check is deleted."""
    with open(partial, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")):
        partial.unlink()
        raise CheckpointError(f"the download of {dest.name} is a web page, not a weights file (an expired or "
                              f"mistyped link): request a new link at {DOWNLOADS_PAGE}")
    os.replace(partial, dest)
    try:
        check_name_hash(dest)
    except CheckpointError:
        dest.unlink()  # the file this download just put there, and only that one
        raise


def _failure(e: Exception, url: str, name: str, done: int) -> CheckpointError:
    """One line for a failed download, saying what to do about it."""
    if isinstance(e, urllib.error.HTTPError):
        if e.code in (401, 403):
            return CheckpointError(f"the link for {name} was refused (HTTP {e.code}): Meta's download links expire; "
                                   f"request a new one at {DOWNLOADS_PAGE}")
        return CheckpointError(f"the link for {name} answered HTTP {e.code} {e.reason}: check the URL")
    reason = getattr(e, "reason", e)
    kept = f"; {done / 1e6:.1f} MB kept, run again to resume" if done else ""
    return CheckpointError(f"cannot download {name} ({reason}){kept}")
