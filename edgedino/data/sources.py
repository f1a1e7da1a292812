"""Training data sources: image folders, videos sampled at a stride, list files; each with a mixing weight."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgedino.errors import EdgeDinoError
from edgedino.runtime.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES

LIST_SUFFIXES = {".txt", ".list"}
DEFAULT_VIDEO_STRIDE = 10
Item = tuple[str, int]  # (path, frame index in a video or -1 for an image file)


@dataclass(frozen=True)
class Source:
    """One data source: `weight` multiplies how often each of its items is drawn (2 = twice per epoch)."""

    path: Path
    kind: str  # "folder", "video" or "list"
    weight: float = 1.0
    video_stride: int = DEFAULT_VIDEO_STRIDE


def _options(text: str) -> tuple[str, dict[str, str]]:
    """'clip.mp4:stride=10:weight=2' -> ('clip.mp4', {'stride': '10', 'weight': '2'})."""
    parts = text.split(":")
    opts: dict[str, str] = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        opts[key.strip()] = value.strip()
    return ":".join(parts), opts


def parse_source(text: str) -> Source:
    """A source from 'PATH[:weight=W][:stride=S]'; a clear error for a missing path or an unknown option."""
    raw, opts = _options(str(text))
    unknown = set(opts) - {"weight", "stride"}
    if unknown:
        raise EdgeDinoError(f"data source {text!r}: unknown option {sorted(unknown)[0]!r} (use weight=W, stride=S)")
    try:
        weight, stride = float(opts.get("weight", 1.0)), int(opts.get("stride", DEFAULT_VIDEO_STRIDE))
    except ValueError as e:
        raise EdgeDinoError(f"data source {text!r}: {e}") from None
    if weight <= 0 or stride < 1:
        raise EdgeDinoError(f"data source {text!r}: weight must be > 0 and stride >= 1")
    path = Path(raw).expanduser()
    if path.is_dir():
        kind = "folder"
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        kind = "video"
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        kind = "list"
    elif not path.exists():
        raise EdgeDinoError(f"data source not found: {path}")
    else:
        raise EdgeDinoError(f"data source {path}: not an image folder, a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
                            f"or a list file ({', '.join(sorted(LIST_SUFFIXES))}, one image path a line)")
    if "stride" in opts and kind != "video":
        raise EdgeDinoError(f"data source {text!r}: stride= applies to videos only")
    return Source(path, kind, weight, stride)


def parse_sources(texts: list[str]) -> list[Source]:
    """Every source of a command line or config; at least one."""
    if not texts:
        raise EdgeDinoError("no data sources: give image folders, videos or list files (--data DIR clip.mp4 ...)")
    return [parse_source(t) for t in texts]


def _folder(path: Path) -> list[Item]:
    """Image files under `path`, recursively, in a stable (sorted) order."""
    found = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES]
    return [(p, -1) for p in found]


def _video(path: Path, stride: int) -> list[Item]:
    """Frame indices 0, stride, 2*stride, ... of a video."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    if total <= 0:
        raise EdgeDinoError(f"cannot read video {path} (corrupt, or a codec OpenCV lacks)")
    return [(str(path), i) for i in range(0, total, stride)]


def _list(path: Path) -> list[Item]:
    """Image paths of a list file, one a line (relative to the file's folder; blank lines and # comments skipped)."""
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    return [(str((path.parent / ln) if not os.path.isabs(ln) else Path(ln)), -1)
            for ln in lines if ln and not ln.startswith("#")]


def index_source(source: Source) -> list[Item]:
    """Every item of one source; an error when it has none."""
    items = {"folder": lambda: _folder(source.path), "video": lambda: _video(source.path, source.video_stride),
             "list": lambda: _list(source.path)}[source.kind]()
    if not items:
        raise EdgeDinoError(f"data source {source.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return items


def index(sources: list[Source]) -> list[Item]:
    """Every item of every source, in source order."""
    return [item for s in sources for item in index_source(s)]
