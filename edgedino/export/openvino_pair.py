"""Publishing an OpenVINO IR (.xml + .bin) so that a reader sees the old model or the new one, never a mix.

OpenVINO's reader, given the .xml, opens it and then the .bin whose name it derives from the .xml's path (the
.xml names no .bin, and symlinks are not followed to find it). Two files cannot be renamed in one step, and
versioned folders or symlinks do not help such a reader: whatever the indirection, its two opens can straddle
a publish. So the new .bin is published first, and it is a superset: it keeps, at their offsets, the byte
ranges that the published .xml reads, and holds the new weights in a range that overlaps none of them (or in
exactly the same range when the bytes there are the same: a re-export of identical weights). The new .xml's
offsets are moved to that range, and it is renamed into place last. An old .xml then finds its own weights in
the old and in the new .bin; a new .xml only ever meets the new .bin.

The cost: after a re-export with different weights, the .bin also holds the previous export's weights (about
twice the size) until the next export to that name drops them. `ir_size` counts what the model itself reads.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from edgedino.atomic import check_output
from edgedino.errors import EdgeDinoError

# A constant's <data .../> in the IR: its byte range in the .bin (OpenVINO writes offset= before size=).
CONST = re.compile(r'(<layer\b[^>]*\btype="Const"[^>]*>\s*<data\b[^>]*?\boffset=")(\d+)("[^>]*?\bsize=")(\d+)(")')
ALIGN = 4096  # new weights start on a page boundary: every constant keeps its alignment within the file
CHUNK = 1 << 24


def weights_path(xml: Path) -> Path:
    return xml.with_suffix(".bin")


def ranges(xml_text: str) -> list[tuple[int, int]]:
    """The merged (start, end) byte ranges of the .bin that an IR's constants read."""
    spans = sorted((int(m[2]), int(m[2]) + int(m[4])) for m in CONST.finditer(xml_text))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return merged


def ir_size(xml: Path) -> int:
    """Bytes of the .xml plus the bytes of the .bin its constants read."""
    return xml.stat().st_size + sum(end - start for start, end in ranges(xml.read_text(errors="replace")))


def check_destination(xml: Path) -> None:
    """Neither the .xml nor the .bin may name a folder."""
    check_output(xml)
    check_output(weights_path(xml))


def publish(staged: Path, final: Path) -> None:
    """Publish the staged .xml and .bin at `final` (see the module docstring)."""
    check_destination(final)
    new_bin = weights_path(staged)
    with _locked(final.parent):
        live = _live_ranges(final)
        base = _placement(live, weights_path(final), new_bin)
        merged = staged.with_name(staged.stem + ".merged.bin")
        _write_bin(merged, live, weights_path(final), new_bin, base)
        text = staged.read_text()
        moved, count = CONST.subn(lambda m: f"{m[1]}{int(m[2]) + base}{m[3]}{m[4]}{m[5]}", text)
        if count != text.count('type="Const"'):
            raise EdgeDinoError(f"{staged.name}: could not read the offsets of every constant in the IR")
        staged.write_text(moved)
        os.replace(merged, weights_path(final))
        os.replace(staged, final)


def _live_ranges(final: Path) -> list[tuple[int, int]]:
    """The ranges the published .xml reads, or none when there is no whole published pair to keep readable."""
    bin_path = weights_path(final)
    try:
        live = ranges(final.read_text(errors="replace"))
        size = bin_path.stat().st_size
    except OSError:
        return []
    return live if live and live[-1][1] <= size else []


def _placement(live: list[tuple[int, int]], old_bin: Path, new_bin: Path) -> int:
    """Where the new weights go: where the live ones are if the bytes are the same, else the first free range."""
    length = new_bin.stat().st_size
    if live and _same_bytes(old_bin, live[0][0], new_bin, length):
        return live[0][0]
    end = max((e for _, e in live), default=0)
    if not live or live[0][0] >= length:
        return 0
    return -(-end // ALIGN) * ALIGN


def _same_bytes(a: Path, offset: int, b: Path, length: int) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        fa.seek(offset)
        while length > 0:
            chunk = fb.read(min(CHUNK, length))
            if not chunk or fa.read(len(chunk)) != chunk:
                return False
            length -= len(chunk)
    return True


def _write_bin(path: Path, live: list[tuple[int, int]], old_bin: Path, new_bin: Path, base: int) -> None:
    """The live ranges of the old .bin at their offsets, then the new weights at `base`; gaps stay holes."""
    with open(path, "wb") as out:
        if live:
            with open(old_bin, "rb") as old:
                for start, end in live:
                    old.seek(start)
                    out.seek(start)
                    _copy(old, out, end - start)
        out.seek(base)
        with open(new_bin, "rb") as new:
            shutil.copyfileobj(new, out, CHUNK)
        out.truncate(max([base + new_bin.stat().st_size] + [e for _, e in live]))


def _copy(src, dst, length: int) -> None:
    while length > 0:
        chunk = src.read(min(CHUNK, length))
        if not chunk:
            raise EdgeDinoError(f"{src.name} ended early while keeping the published weights readable")
        dst.write(chunk)
        length -= len(chunk)


@contextmanager
def _locked(folder: Path):
    """An exclusive lock on the output folder, so two exports publishing there do not interleave."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; publishing still orders the renames
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
